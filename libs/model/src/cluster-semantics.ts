import { cidrContainsIp, cidrRange, ipToInt, isCidr, isIpv4, parseCidr, rangeContains, rangesOverlap, type Cidr, type IpRange } from './ip.ts';
import type { MergedConfig } from './cluster-merge.ts';
import { isObject } from './cluster-merge.ts';
import type { ProblemList } from './problems.ts';
import { PROVIDERS, ROLES, type ClusterConfig, type Problem, type Profile, type ProviderName } from './types.ts';

// What the values of a merged cluster mean together: addresses inside their subnets and ranges, no
// overlaps, no duplicates, the profile's providers, versions and minimums, one master. The shape of
// each value (types, enums, patterns, ranges of numbers) is the schema's; a path the shape check
// reported is skipped here (ProblemList), so each mistake is reported once.

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function validateCluster(merged: MergedConfig, profile: Profile, raw: ClusterConfig, problems: ProblemList, warnings: Problem[]): void {
  const add = (path: string, message: string) => problems.add(path, message);
  const net = merged.network;

  if ((PROVIDERS as readonly string[]).includes(merged.provider) && !profile.providers.includes(merged.provider as ProviderName)) {
    add('provider', `profile "${profile.name}" does not support provider "${merged.provider}"; allowed: ${profile.providers.join(', ')}`);
  }
  for (const [component, version] of Object.entries(merged.versions)) {
    const known = profile.versions[component];
    if (!known) add(`versions.${component}`, `unknown component for profile "${profile.name}"; allowed: ${Object.keys(profile.versions).join(', ')}`);
    else if (!known.supported.includes(version)) {
      add(`versions.${component}`, `unknown version ${JSON.stringify(version)}; the profile pins: ${known.supported.join(', ')}`);
    }
  }

  // Network.
  const subnet = checkCidr('network.subnet', net.subnet, add);
  if (subnet && subnet.prefix > 29) add('network.subnet', `prefix /${subnet.prefix} leaves no room for a cluster; use /29 or larger (smaller prefix)`);
  if (net.clusterNic !== profile.nics.cluster.name) {
    add('network.clusterNic', `must be "${profile.nics.cluster.name}": the boxes of profile "${profile.name}" name the cluster NIC so`);
  }
  const service = checkCidr('network.serviceCidr', net.serviceCidr, add);
  if (subnet && service && !rangeContains(cidrRange(subnet), cidrRange(service))) {
    add('network.serviceCidr', `${net.serviceCidr} must lie inside the cluster subnet ${net.subnet}`);
  }
  const dns = checkIp('network.clusterDns', net.clusterDns, add);
  if (dns !== undefined && subnet && !cidrContainsIp(subnet, dns)) add('network.clusterDns', `${net.clusterDns} must lie inside the cluster subnet ${net.subnet}`);
  if (dns !== undefined && service) {
    if (!cidrContainsIp(service, dns)) add('network.clusterDns', `${net.clusterDns} must lie inside the service range ${net.serviceCidr}`);
    else if (dns === service.network || dns === service.network + 1) {
      add('network.clusterDns', `${net.clusterDns} is the service range's network address or the kubernetes service IP; pick another address in ${net.serviceCidr}`);
    }
  }
  if (net.apiSecurePort === net.apiInsecurePort) add('network.apiInsecurePort', 'must differ from network.apiSecurePort');

  const containerRange = checkContainerRange(net, subnet, service, add);
  const pool = net.calicoPool;
  const poolCidr = checkCidr('network.calicoPool.cidr', pool.cidr, add);
  if (profile.features.calico && poolCidr && subnet && rangesOverlap(cidrRange(poolCidr), cidrRange(subnet))) {
    warnings.push({
      path: 'network.calicoPool.cidr',
      message: `${pool.cidr} contains the cluster subnet ${net.subnet}, as the 2016 setup did; Calico may hand pods addresses of the node network`,
    });
  }
  const podNetwork = profile.features.kubernetes ? profile.kubernetes?.podNetwork : undefined;
  if (podNetwork && poolCidr) {
    // Every node's block lies in the pool, and none may hold the node or service addresses.
    const blockSize = 2 ** (32 - podNetwork.blockPrefixLength);
    const first = poolCidr.network + podNetwork.firstBlock * blockSize;
    const last = first + merged.nodes.length * blockSize - 1;
    const blocks = { first, last };
    if (podNetwork.blockPrefixLength < poolCidr.prefix || last > cidrRange(poolCidr).last) {
      add('network.calicoPool.cidr', `${pool.cidr} has no room for ${merged.nodes.length} pod range(s) of /${podNetwork.blockPrefixLength} from block ${podNetwork.firstBlock} on (profile "${profile.name}")`);
    } else if (subnet && rangesOverlap(blocks, cidrRange(subnet))) {
      add('network.calicoPool.cidr', `the nodes' pod ranges (blocks ${podNetwork.firstBlock}.. of ${pool.cidr}) overlap the cluster subnet ${net.subnet}`);
    } else if (service && rangesOverlap(blocks, cidrRange(service))) {
      add('network.calicoPool.cidr', `the nodes' pod ranges (blocks ${podNetwork.firstBlock}.. of ${pool.cidr}) overlap the service range ${net.serviceCidr}`);
    }
  }
  const uplink = checkCidr('network.uplinkSubnet', net.uplinkSubnet, add);
  if (uplink && subnet && rangesOverlap(cidrRange(uplink), cidrRange(subnet))) {
    add('network.uplinkSubnet', `${net.uplinkSubnet} overlaps the cluster subnet ${net.subnet}`);
  }

  // Nodes.
  checkUserNodeNames(raw, add);
  const names = new Map<string, number>();
  const ips = new Map<string, number>();
  const macs = new Map<string, number>();
  merged.nodes.forEach((node, index) => {
    const path = nodePath(raw, node.name, index);
    if (names.has(node.name)) add(`${path}.name`, `duplicate node name "${node.name}"`);
    names.set(node.name, index);

    if ((ROLES as readonly string[]).includes(node.role)) {
      const minimum = profile.roleMinimums[node.role];
      if (node.memoryMb < minimum.memoryMb) {
        add(`${path}.memoryMb`, `a ${node.role} needs at least ${minimum.memoryMb} MB in profile "${profile.name}", got ${JSON.stringify(node.memoryMb)}`);
      }
      if (node.cpus < minimum.cpus) {
        add(`${path}.cpus`, `a ${node.role} needs at least ${minimum.cpus} CPU(s) in profile "${profile.name}", got ${JSON.stringify(node.cpus)}`);
      }
    }

    const ip = checkIp(`${path}.ip`, node.ip, add);
    if (ip !== undefined) {
      if (ips.has(node.ip)) add(`${path}.ip`, `duplicate address ${node.ip} (also ${merged.nodes[ips.get(node.ip)!]!.name})`);
      ips.set(node.ip, index);
      if (subnet) {
        if (!cidrContainsIp(subnet, ip)) add(`${path}.ip`, `${node.ip} is outside the cluster subnet ${net.subnet}`);
        else if (ip === subnet.network || ip === subnet.network + 2 ** (32 - subnet.prefix) - 1) {
          add(`${path}.ip`, `${node.ip} is the network or broadcast address of ${net.subnet}`);
        }
      }
      if (service && cidrContainsIp(service, ip)) add(`${path}.ip`, `${node.ip} lies inside the service range ${net.serviceCidr}`);
      if (containerRange && ip >= containerRange.first && ip <= containerRange.last) {
        add(`${path}.ip`, `${node.ip} lies inside the container range ${net.containerRange.start}-${net.containerRange.end}`);
      }
    }
    if (typeof node.mac === 'string' && MAC.test(node.mac)) {
      if (parseInt(node.mac.slice(0, 2), 16) % 2 === 1) add(`${path}.mac`, `${node.mac} is a multicast address; the first octet must be even`);
      else {
        const key = node.mac.toLowerCase();
        if (macs.has(key)) add(`${path}.mac`, `duplicate MAC ${node.mac}`);
        macs.set(key, index);
      }
    }
  });

  const masters = merged.nodes.filter((node) => node.role === 'master');
  if (masters.length !== 1) add('nodes', `exactly one node must have role "master", found ${masters.length}${masters.length ? ` (${masters.map((m) => m.name).join(', ')})` : ''}`);
  const workers = merged.nodes.filter((node) => node.role === 'worker');
  if (workers.length === 0) add('nodes', 'at least one node must have role "worker"');
  if (containerRange && workers.length > containerRange.last - containerRange.first + 1) {
    add('network.containerRange', `${workers.length} workers need at least one address each from the container range`);
  }
  if (uplink && profile.features.vpp && workers.length > 2 ** (32 - uplink.prefix) - 2) {
    add('network.uplinkSubnet', `${net.uplinkSubnet} has too few addresses for ${workers.length} worker uplinks`);
  }

  // Etcd.
  const etcd = merged.etcd;
  if (!merged.nodes.some((node) => node.name === etcd.node)) {
    add('etcd.node', `${JSON.stringify(etcd.node)} is not a node; allowed: ${merged.nodes.map((n) => n.name).join(', ')}`);
  }
  for (const [path, ports] of Object.entries({ 'etcd.clientPorts': etcd.clientPorts, 'etcd.peerPorts': etcd.peerPorts })) {
    if (Array.isArray(ports) && new Set(ports).size !== ports.length) add(path, `lists a port twice: ${ports.join(', ')}`);
  }
  if (Array.isArray(etcd.clientPorts) && Array.isArray(etcd.peerPorts)) {
    const shared = etcd.clientPorts.filter((port) => etcd.peerPorts.includes(port));
    if (shared.length) add('etcd.peerPorts', `port(s) ${shared.join(', ')} already used by etcd.clientPorts`);
  }

  // Libvirt.
  const libvirtUri = typeof merged.libvirt.uri === 'string' ? libvirtUriProblem(merged.libvirt.uri) : undefined;
  if (libvirtUri) add('libvirt.uri', libvirtUri);
}

/** Transports of a libvirt URI (`driver+transport://`) that run no program the URI names; none is a local socket. */
export const LIBVIRT_TRANSPORTS = ['unix', 'ssh', 'libssh', 'libssh2', 'tls', 'tcp'] as const;

/**
 * Why a libvirt URI is refused, or undefined. Vagrant and virsh hand it to libvirt, which for the
 * `ext` transport runs the program of its `command=` parameter on this host (and ssh would read a host
 * that starts with "-" as an option such as -oProxyCommand): the config file must not be a way to run
 * a program. The URI's shape (`scheme://...`) is the schema's.
 */
export function libvirtUriProblem(uri: string): string | undefined {
  const allowed = `allowed: a URI without a transport (qemu:///system) or with one of ${LIBVIRT_TRANSPORTS.map((t) => `+${t}`).join(', ')}, without a command= parameter`;
  const match = /^([a-z0-9]+)(?:\+([a-z0-9]+))?:\/\/([^/?#]*)[^?#]*(?:\?([^#]*))?/i.exec(uri);
  if (!match) return undefined;
  const [, , transport, authority = '', query = ''] = match;
  if (transport !== undefined && !(LIBVIRT_TRANSPORTS as readonly string[]).includes(transport.toLowerCase())) {
    return `transport "${transport}" ${transport.toLowerCase() === 'ext' ? 'runs the program named by command=' : 'is not a libvirt transport boxcar allows'}; ${allowed}`;
  }
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text.replace(/\+/g, ' '));
    } catch {
      return text;
    }
  };
  // libvirt unescapes parameter names and compares them without case.
  const names = query.split(/[&;]/).map((pair) => decode(pair.split('=')[0]!).trim().toLowerCase());
  if (names.includes('command')) return `the command= parameter names a program for libvirt to run; ${allowed}`;
  if (decode(authority.replace(/^[^@]*@/, '')).startsWith('-')) return `host ${JSON.stringify(authority)} starts with "-", which ssh reads as an option; ${allowed}`;
  return undefined;
}

type Add = (path: string, message: string) => void;

function checkContainerRange(net: MergedConfig['network'], subnet: Cidr | undefined, service: Cidr | undefined, add: Add): IpRange | undefined {
  const { start, end } = net.containerRange;
  const first = checkIp('network.containerRange.start', start, add);
  const last = checkIp('network.containerRange.end', end, add);
  if (first === undefined || last === undefined) return undefined;
  if (first > last) {
    add('network.containerRange', `start ${start} is after end ${end}`);
    return undefined;
  }
  const range = { first, last };
  if (subnet && !rangeContains(cidrRange(subnet), range)) add('network.containerRange', `${start}-${end} must lie inside the cluster subnet ${net.subnet}`);
  if (service && rangesOverlap(range, cidrRange(service))) add('network.containerRange', `${start}-${end} overlaps the service range ${net.serviceCidr}`);
  return range;
}

/** The user lists each node once: later entries would silently override earlier ones. */
function checkUserNodeNames(raw: ClusterConfig, add: Add): void {
  const nodes: unknown[] = Array.isArray(raw.nodes) ? raw.nodes : [];
  nodes.forEach((node, index) => {
    if (!isObject(node) || typeof node.name !== 'string') return;
    if (nodes.slice(0, index).some((other) => isObject(other) && other.name === node.name)) {
      add(`nodes[${index}].name`, `duplicate node name "${node.name}": list each node once`);
    }
  });
}

/** The path of a node in the user's words: its index in `nodes` if the user wrote it, else its name. */
function nodePath(raw: ClusterConfig, name: string, index: number): string {
  const userIndex = Array.isArray(raw.nodes) ? raw.nodes.findIndex((node) => isObject(node) && node.name === name) : -1;
  return userIndex >= 0 ? `nodes[${userIndex}]` : `nodes[${index}] (${name})`;
}

function checkIp(path: string, value: unknown, add: Add): number | undefined {
  if (typeof value !== 'string' || !isIpv4(value)) {
    add(path, `must be an IPv4 address such as 192.168.10.10, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return ipToInt(value);
}

function checkCidr(path: string, value: unknown, add: Add): Cidr | undefined {
  if (typeof value !== 'string' || !isCidr(value)) {
    add(path, `must be an IPv4 CIDR with its network address, such as 192.168.10.0/24, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return parseCidr(value);
}
