import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from './resolve.ts';
import type { Cluster } from './types.ts';

// Two clusters on one host never share a network: the Vagrant network of the cluster NIC and every
// MAC address derive from the cluster's name.

const macsOf = (cluster: Cluster) => cluster.nodes.flatMap((node) => [node.macs.cluster, node.macs.vpp]);

describe('clusters on one host', () => {
  const clusters = [
    resolveClusterOrThrow({}),
    resolveClusterOrThrow({ name: 'cni-dev2' }),
    resolveClusterOrThrow({ name: 'cni' }),
    resolveClusterOrThrow({ profile: 'lab' }),
    resolveClusterOrThrow({ profile: 'lab', name: 'lab2' }),
    resolveClusterOrThrow({ profile: 'lab', name: 'cni-dev' }),
  ];

  it('each cluster name gets a network of its own', () => {
    const networks = clusters.map((cluster) => cluster.network.nics.cluster.internalNetwork);
    expect(networks).toEqual(['cni-dev-bridge', 'cni-dev2-cni-dev-bridge', 'cni-cni-dev-bridge', 'lab-cni-dev-bridge', 'lab2-cni-dev-bridge', 'cni-dev-cni-dev-bridge']);
    expect(new Set(networks).size).toBe(networks.length);
  });

  it('two clusters with different names share no MAC address', () => {
    const all = clusters.flatMap(macsOf);
    expect(new Set(all).size).toBe(all.length);
  });

  it('the default clusters keep the MACs they always had (52:54:00, then a byte of the name)', () => {
    for (const cluster of [clusters[0]!, clusters[3]!]) {
      const byte = createHash('sha256').update(cluster.name).digest()[0]!.toString(16).padStart(2, '0');
      expect(cluster.nodes.map((node) => node.macs.cluster)).toEqual(cluster.nodes.map((_, index) => `52:54:00:${byte}:08:0${index}`));
      expect(cluster.nodes.map((node) => node.macs.vpp)).toEqual(cluster.nodes.map((_, index) => `52:54:00:${byte}:09:0${index}`));
    }
    expect(clusters[0]!.nodes[0]!.macs.cluster).toBe('52:54:00:9f:08:00');
  });

  it('other names take three bytes of their hash: unicast, locally administered, stable', () => {
    for (const cluster of [clusters[1]!, clusters[4]!]) {
      for (const mac of macsOf(cluster)) {
        expect(mac).toMatch(/^52:([0-9a-f]{2}:){4}[0-9a-f]{2}$/);
        expect(mac.startsWith('52:54:00:')).toBe(false);
      }
    }
    expect(macsOf(resolveClusterOrThrow({ profile: 'lab', name: 'lab2' }))).toEqual(macsOf(clusters[4]!));
  });
});
