import type { Cluster } from '@boxcar/model';
import { EXIT, table, type Group } from '../cli-kit.ts';
import { CLUSTER_OPTIONS, clusterFromOptions } from '../cluster-options.ts';

export const configGroup: Group = {
  name: 'config',
  summary: 'Show the resolved cluster: profile defaults, your overrides, derived values.',
  commands: [
    {
      name: 'show',
      summary: 'Print the resolved cluster as tables, or as JSON.',
      options: { ...CLUSTER_OPTIONS, json: { type: 'boolean', description: 'machine-readable output' } as never },
      async run(values) {
        const cluster = clusterFromOptions(values);
        process.stdout.write(values.json ? `${JSON.stringify(toJson(cluster), null, 2)}\n` : renderCluster(cluster));
        return EXIT.ok;
      },
    },
  ],
};

function toJson(cluster: Cluster) {
  const { profile, master: _master, workers: _workers, ...rest } = cluster;
  return { ...rest, profile: profile.name };
}

export function renderCluster(cluster: Cluster): string {
  const n = cluster.network;
  const settings = table([
    ['cluster', cluster.name],
    ['profile', `${cluster.profile.name} (${cluster.profile.os.distribution} ${cluster.profile.os.release})`],
    ['provider', cluster.provider],
    ['subnet', `${n.subnet} on ${n.nics.cluster.name}`],
    ['API server', `${cluster.api.url} (insecure :${cluster.api.insecurePort} on the master)`],
    ['service range', `${n.serviceCidr} (kubernetes service ${n.kubernetesServiceIp})`],
    ['cluster DNS', `${n.clusterDns}, domain ${n.clusterDomain}`],
    ['container range', `${n.containerRange.start} - ${n.containerRange.end} (old ipvlan demo, host-local IPAM)`],
    ['Calico pool', `${n.calicoPool.cidr}${n.calicoPool.ipip ? ' ipip' : ''}${n.calicoPool.natOutgoing ? ' nat-outgoing' : ''}`],
    ['Calico etcd', `${cluster.etcd.node}: clients ${cluster.etcd.endpoints.join(', ')}; peers :${cluster.etcd.peerPorts.join(', :')}`],
    ['VPP NIC', `${n.nics.vpp.name} ${n.nics.vpp.model} at ${n.nics.vpp.pciAddress} (${n.nics.vpp.vppInterface})`],
  ]);
  const nodes = table(
    cluster.nodes.map((node) => [
      node.name,
      node.role,
      node.ip,
      `${node.memoryMb} MB`,
      String(node.cpus),
      node.etcd ? 'yes' : '',
      node.ipamRange ? `${node.ipamRange.start}-${node.ipamRange.end}` : '',
      node.uplink ?? '',
      node.box,
    ]),
    ['node', 'role', 'ip', 'memory', 'cpus', 'etcd', 'ipam range', 'uplink', 'box'],
  );
  const versions = table(Object.entries(cluster.versions).map(([component, version]) => [component, version]), ['component', 'version']);
  return `${settings}\n${nodes}\n${versions}`;
}
