import type { Cluster, ClusterNode } from '@boxcar/model';
import { GUEST } from '../guest-layout.ts';

export function renderHostname(node: ClusterNode): string {
  return `${node.name}\n`;
}

/**
 * The whole /etc/hosts. No `127.0.1.1 <hostname>` line: the node name must resolve to its cluster address,
 * which etcd and the kubelet advertise.
 */
export function renderHosts(cluster: Cluster): string {
  const width = Math.max(...cluster.nodes.map((node) => node.ip.length));
  return [
    '127.0.0.1 localhost',
    '::1 localhost ip6-localhost ip6-loopback',
    'ff02::1 ip6-allnodes',
    'ff02::2 ip6-allrouters',
    '',
    `# cluster ${cluster.name}`,
    ...cluster.nodes.map((node) => `${node.ip.padEnd(width)} ${node.name}`),
    '',
  ].join('\n');
}

export type NetworkBackend = 'networkd' | 'ifupdown';

/** Debian images use systemd-networkd; Ubuntu xenial predates netplan and uses ifupdown. */
export function networkBackend(cluster: Cluster): NetworkBackend {
  const os = cluster.profile.os;
  if (os.distribution === 'debian') return 'networkd';
  if (os.distribution === 'ubuntu' && os.codename === 'xenial') return 'ifupdown';
  throw new Error(
    `profile "${cluster.profile.name}": no network configuration for os ${os.distribution} ${os.codename}; allowed: debian (systemd-networkd), ubuntu xenial (ifupdown)`,
  );
}

export interface ClusterIpConfig {
  path: string;
  content: string;
  /** Run when the file changed. */
  apply: string[];
}

export function clusterIpConfig(cluster: Cluster, node: ClusterNode): ClusterIpConfig {
  const nic = cluster.network.nics.cluster.name;
  if (networkBackend(cluster) === 'networkd') {
    return {
      path: `${GUEST.networkdDir}/10-boxcar-${nic}.network`,
      content: [
        '[Match]',
        `Name=${nic}`,
        '',
        '[Network]',
        `Address=${node.ip}/${cluster.network.prefixLength}`,
        'LinkLocalAddressing=no',
        'IPv6AcceptRA=no',
        '',
      ].join('\n'),
      apply: ['systemctl enable --now systemd-networkd', 'networkctl reload', `networkctl reconfigure ${nic}`],
    };
  }
  return {
    path: `${GUEST.ifupdownDir}/${nic}.cfg`,
    content: [`auto ${nic}`, `iface ${nic} inet static`, `    address ${node.ip}`, `    netmask ${cluster.network.netmask}`, ''].join('\n'),
    apply: [
      `if ifquery --state ${nic} >/dev/null 2>&1; then ifdown ${nic}; fi`,
      `ip address flush dev ${nic}`,
      `ifup ${nic}`,
    ],
  };
}
