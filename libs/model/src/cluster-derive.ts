import { createHash } from 'node:crypto';
import type { MergedConfig } from './cluster-merge.ts';
import { formatCidr, hostAt, intToIp, ipToInt, parseCidr, splitRange } from './ip.ts';
import type { Cluster, ClusterNode, Profile, ProviderName } from './types.ts';

// Everything downstream consumes, derived from a merged and valid configuration: netmask, the
// kubernetes service IP, MACs, per-worker IPAM ranges and uplinks, certificate SANs, etcd endpoints,
// the boxes, the defaults of terraform and timeouts.

/**
 * Locally administered, stable per cluster and node (reboots keep names and leases), unique per NIC by
 * construction, and apart from other clusters' on the same host: 24 bits of the cluster name's hash
 * (52:h1:h2:h0:<slot>:<node>). The profile's default cluster (cni-dev, lab) keeps the MACs it always
 * had, 52:54:00:h0:<slot>:<node>, so that its running nodes keep their addresses.
 */
function macFor(clusterName: string, profile: Profile, index: number, nicSlot: number): string {
  const [h0, h1, h2] = createHash('sha256').update(clusterName).digest();
  // 54:00 in the middle is the default clusters' form: never given to another name.
  const prefix = clusterName === profile.cluster.name ? [0x54, 0x00] : h1 === 0x54 && h2 === 0x00 ? [0x54, 0x01] : [h1!, h2!];
  return [0x52, ...prefix, h0!, nicSlot, index].map((part) => part.toString(16).padStart(2, '0')).join(':');
}

/**
 * The Vagrant network (libvirt network, VirtualBox internal network) of the cluster NIC: one per
 * cluster, so that two clusters on a host never share one. The profile's name is its default cluster's
 * (cni-dev-bridge, as in 2016); any other cluster's name is put in front of it (lab-cni-dev-bridge).
 */
function internalNetworkFor(clusterName: string, profile: Profile): string {
  const network = profile.nics.cluster.internalNetwork;
  return clusterName === profile.cluster.name && network.startsWith(`${clusterName}-`) ? network : `${clusterName}-${network}`;
}

export function deriveCluster(merged: MergedConfig, profile: Profile): Cluster {
  const net = merged.network;
  const subnet = parseCidr(net.subnet);
  const service = parseCidr(net.serviceCidr);
  const uplinkSubnet = parseCidr(net.uplinkSubnet);
  const kubernetesServiceIp = intToIp(service.network + 1);
  const masterConfig = merged.nodes.find((node) => node.role === 'master')!;
  const workerConfigs = merged.nodes.filter((node) => node.role === 'worker');
  const ipamRanges = splitRange({ first: ipToInt(net.containerRange.start), last: ipToInt(net.containerRange.end) }, workerConfigs.length);
  const etcdNode = merged.nodes.find((node) => node.name === merged.etcd.node)!;
  const podNetwork = profile.features.kubernetes ? profile.kubernetes?.podNetwork : undefined;
  const pool = parseCidr(net.calicoPool.cidr);
  /** The index-th block of the pool after `firstBlock` (validation checks that it fits). */
  const podCidr = (index: number): string | undefined =>
    podNetwork ? `${intToIp(pool.network + (podNetwork.firstBlock + index) * 2 ** (32 - podNetwork.blockPrefixLength))}/${podNetwork.blockPrefixLength}` : undefined;

  const nodes: ClusterNode[] = merged.nodes.map((node, index) => {
    const workerIndex = workerConfigs.indexOf(node);
    const isMaster = node.role === 'master';
    const kubeletComponent = profile.kubeletVersionComponent?.[node.role];
    return {
      name: node.name,
      index,
      role: node.role,
      ip: node.ip,
      memoryMb: node.memoryMb,
      cpus: node.cpus,
      macs: { cluster: (node.mac ?? macFor(merged.name, profile, index, 8)).toLowerCase(), vpp: macFor(merged.name, profile, index, 9) },
      etcd: node.name === merged.etcd.node,
      ...(workerIndex >= 0
        ? { ipamRange: { start: intToIp(ipamRanges[workerIndex]!.first), end: intToIp(ipamRanges[workerIndex]!.last) } }
        : {}),
      ...(workerIndex >= 0 && profile.features.vpp ? { uplink: `${hostAt(uplinkSubnet, workerIndex + 1)}/${uplinkSubnet.prefix}` } : {}),
      certificateSans: isMaster
        ? {
            dns: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${net.clusterDomain}`, node.name],
            // 127.0.0.1: kubectl on the host reaches the API through a port the provider forwards on the loopback.
            ip: profile.kubernetes ? [node.ip, kubernetesServiceIp, '127.0.0.1'] : [node.ip, kubernetesServiceIp],
          }
        : { dns: [node.name], ip: [node.ip] },
      ...(podCidr(index) ? { podCidr: podCidr(index) } : {}),
      ...(kubeletComponent ? { kubeletVersion: merged.versions[kubeletComponent] } : {}),
      box: profile.boxes[node.role],
    };
  });
  const master = nodes.find((node) => node.role === 'master')!;

  return {
    name: merged.name,
    profile,
    provider: merged.provider as ProviderName,
    ...(merged.boxStore ? { boxStore: merged.boxStore } : {}),
    network: {
      subnet: formatCidr(subnet),
      prefixLength: subnet.prefix,
      netmask: intToIp(2 ** 32 - 2 ** (32 - subnet.prefix)),
      serviceCidr: formatCidr(service),
      kubernetesServiceIp,
      clusterDns: net.clusterDns,
      clusterDomain: net.clusterDomain,
      containerRange: net.containerRange,
      calicoPool: net.calicoPool,
      uplinkSubnet: formatCidr(uplinkSubnet),
      nics: { ...profile.nics, cluster: { ...profile.nics.cluster, internalNetwork: internalNetworkFor(merged.name, profile) } },
    },
    api: {
      host: masterConfig.ip,
      securePort: net.apiSecurePort,
      insecurePort: net.apiInsecurePort,
      url: `https://${masterConfig.ip}:${net.apiSecurePort}`,
    },
    ...(profile.features.kubernetes && profile.kubernetes ? { kubernetes: profile.kubernetes } : {}),
    etcd: {
      node: etcdNode.name,
      ip: etcdNode.ip,
      clientPorts: merged.etcd.clientPorts,
      peerPorts: merged.etcd.peerPorts,
      endpoints: merged.etcd.clientPorts.map((port) => `http://${etcdNode.ip}:${port}`),
    },
    versions: merged.versions,
    nodes,
    master,
    workers: nodes.filter((node) => node.role === 'worker'),
    mirrors: merged.mirrors,
    libvirt: merged.libvirt,
    terraform: { resource: merged.terraform.resource ?? 'terraform_data' },
    timeouts: {
      remoteCommandSeconds: merged.timeouts.remoteCommandSeconds ?? 600,
      sshReadySeconds: merged.timeouts.sshReadySeconds ?? 600,
      kubernetesReadySeconds: merged.timeouts.kubernetesReadySeconds ?? 1200,
    },
  };
}
