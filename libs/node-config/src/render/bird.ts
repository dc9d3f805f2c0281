// Pod routing of the lab's Kubernetes (KubernetesSpec.podNetwork, type bird-mesh): each node announces its
// own pod range over iBGP to every other node and installs theirs in the kernel, so pods on different nodes
// reach each other by plain routing through the cluster NIC, with no overlay.

import type { Cluster, ClusterNode } from '@boxcar/model';
import { kubernetesSpec } from './kubernetes-units.ts';

/** Node names are DNS labels; BIRD protocol names are symbols (letters, digits, '_'), so '-' becomes '_'. */
const birdPeerName = (node: ClusterNode): string => `peer_${node.name.replaceAll('-', '_')}`;

/** /etc/bird/bird.conf for BIRD 2. */
export function renderBirdConfig(cluster: Cluster, node: ClusterNode): string {
  const { asn } = kubernetesSpec(cluster).podNetwork;
  if (!node.podCidr) throw new Error(`node ${node.name}: has no pod range (podCidr); profile "${cluster.profile.name}" derives none`);
  const peers = cluster.nodes.filter((other) => other.name !== node.name);
  return [
    `# Written by boxcar for cluster ${cluster.name}: ${node.name} announces ${node.podCidr} to ${peers.map((peer) => peer.name).join(', ')}.`,
    `router id ${node.ip};`,
    '',
    '# Interfaces and their addresses, which "direct" sessions need.',
    'protocol device {',
    '}',
    '',
    "# This node's pod range, for the peers only: the kernel protocol exports BGP routes, and the CNI bridge owns the local one.",
    'protocol static pods {',
    '  ipv4;',
    `  route ${node.podCidr} blackhole;`,
    '}',
    '',
    "# The other nodes' pod ranges, into the kernel's main table.",
    'protocol kernel {',
    '  ipv4 {',
    '    import none;',
    '    export where source = RTS_BGP;',
    '  };',
    '}',
    ...peers.flatMap((peer) => [
      '',
      `protocol bgp ${birdPeerName(peer)} {`,
      `  description "${peer.name}";`,
      `  local ${node.ip} as ${asn};`,
      `  neighbor ${peer.ip} as ${asn};`,
      '  direct;',
      '  ipv4 {',
      '    import all;',
      '    export where source = RTS_STATIC;',
      '    next hop self;',
      '  };',
      '}',
    ]),
    '',
  ].join('\n');
}
