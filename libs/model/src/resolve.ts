import { createHash } from 'node:crypto';
import {
  cidrContainsIp,
  cidrRange,
  formatCidr,
  hostAt,
  intToIp,
  ipToInt,
  isCidr,
  isIpv4,
  offsetIn,
  parseCidr,
  rangeContains,
  rangesOverlap,
  splitRange,
  type Cidr,
  type IpRange,
} from './ip.ts';
import { DEFAULT_PROFILE, DEFAULT_PROFILES_DIR, listProfiles, loadProfile } from './profile.ts';
import {
  LIBVIRT_MANAGEMENT_MODES,
  PROVIDERS,
  ROLES,
  TERRAFORM_RESOURCES,
  type Cluster,
  type ClusterConfig,
  type ClusterNode,
  type LibvirtConfig,
  type NodeConfig,
  type Problem,
  type Profile,
  type ProviderName,
  type Role,
  type TerraformConfig,
  type TimeoutsConfig,
} from './types.ts';

export interface Resolution {
  cluster?: Cluster;
  problems: Problem[];
  warnings: Problem[];
}

export class ClusterConfigError extends Error {
  constructor(
    readonly problems: Problem[],
    source = 'cluster configuration',
  ) {
    super(`${source} has ${problems.length} problem(s):\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'ClusterConfigError';
  }
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const STORE_URL = /^(file|https?):\/\/\S+$/;
const LIBVIRT_URI = /^[a-z0-9+]+:\/\/\S*$/;

const ALLOWED_KEYS: Record<string, readonly string[]> = {
  '': ['name', 'profile', 'provider', 'boxStore', 'network', 'etcd', 'versions', 'workers', 'nodes', 'mirrors', 'libvirt', 'terraform', 'timeouts', '//'],
  network: [
    'subnet', 'clusterNic', 'serviceCidr', 'clusterDns', 'clusterDomain', 'apiSecurePort', 'apiInsecurePort',
    'containerRange', 'calicoPool', 'uplinkSubnet',
  ],
  'network.containerRange': ['start', 'end'],
  'network.calicoPool': ['cidr', 'ipip', 'natOutgoing'],
  etcd: ['node', 'clientPorts', 'peerPorts'],
  mirrors: ['artifacts', 'apt'],
  libvirt: ['uri', 'managementNetworkMode'],
  terraform: ['resource'],
  timeouts: ['remoteCommandSeconds', 'sshReadySeconds'],
  node: ['name', 'role', 'ip', 'memoryMb', 'cpus', 'mac'],
};

/** The profile's defaults, the user's overrides on top, validated, with every derived value filled in. */
export function resolveCluster(config: ClusterConfig = {}, profilesDir = DEFAULT_PROFILES_DIR): Resolution {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  checkShape(config, problems);

  const profileName = config.profile ?? DEFAULT_PROFILE;
  const profiles = listProfiles(profilesDir);
  if (typeof profileName !== 'string' || !profiles.includes(profileName)) {
    problems.push({ path: 'profile', message: `unknown profile ${JSON.stringify(profileName)}; allowed: ${profiles.join(', ')}` });
    return { problems, warnings };
  }
  const profile = loadProfile(profileName, profilesDir);
  const merged = mergeConfig(profile, config, problems);
  validateMerged(merged, profile, config, problems, warnings);
  if (problems.length > 0) return { problems, warnings };
  return { cluster: derive(merged, profile), problems, warnings };
}

export function resolveClusterOrThrow(config: ClusterConfig = {}, profilesDir = DEFAULT_PROFILES_DIR, source?: string): Cluster {
  const resolution = resolveCluster(config, profilesDir);
  if (!resolution.cluster) throw new ClusterConfigError(resolution.problems, source);
  return resolution.cluster;
}

type MergedNode = Required<Omit<NodeConfig, 'mac'>> & { mac?: string };

interface MergedConfig {
  name: string;
  provider: string;
  boxStore?: string;
  network: Required<NonNullable<ClusterConfig['network']>>;
  etcd: Required<NonNullable<ClusterConfig['etcd']>>;
  versions: Record<string, string>;
  nodes: MergedNode[];
  mirrors: { artifacts?: string; apt?: string };
  libvirt: LibvirtConfig;
  terraform: TerraformConfig;
  timeouts: TimeoutsConfig;
}

function checkShape(config: unknown, problems: Problem[]): void {
  if (!isObject(config)) {
    problems.push({ path: '(root)', message: 'must be a JSON object' });
    return;
  }
  checkKeys(config, '', problems);
  for (const key of ['network', 'etcd', 'mirrors', 'versions', 'libvirt', 'terraform', 'timeouts'] as const) {
    const value = config[key];
    if (value !== undefined && !isObject(value)) problems.push({ path: key, message: 'must be an object' });
  }
  const network = config.network;
  if (isObject(network)) {
    checkKeys(network, 'network', problems);
    for (const key of ['containerRange', 'calicoPool'] as const) {
      if (network[key] !== undefined) {
        if (isObject(network[key])) checkKeys(network[key], `network.${key}`, problems);
        else problems.push({ path: `network.${key}`, message: 'must be an object' });
      }
    }
  }
  if (isObject(config.etcd)) checkKeys(config.etcd, 'etcd', problems);
  if (isObject(config.mirrors)) checkKeys(config.mirrors, 'mirrors', problems);
  if (isObject(config.libvirt)) checkKeys(config.libvirt, 'libvirt', problems);
  if (isObject(config.terraform)) checkKeys(config.terraform, 'terraform', problems);
  if (isObject(config.timeouts)) checkKeys(config.timeouts, 'timeouts', problems);
  if (config.nodes !== undefined) {
    if (!Array.isArray(config.nodes)) problems.push({ path: 'nodes', message: 'must be a list of nodes' });
    else {
      const nodes: unknown[] = config.nodes;
      nodes.forEach((node, index) => {
        if (!isObject(node)) problems.push({ path: `nodes[${index}]`, message: 'must be an object with at least "name"' });
        else {
          checkKeys(node, 'node', problems, `nodes[${index}]`);
          if (typeof node.name !== 'string') problems.push({ path: `nodes[${index}].name`, message: 'is required: the node to change or add' });
          else if (nodes.slice(0, index).some((other) => isObject(other) && other.name === node.name)) {
            problems.push({ path: `nodes[${index}].name`, message: `duplicate node name "${node.name}": list each node once` });
          }
        }
      });
    }
  }
}

function checkKeys(object: Record<string, unknown>, schema: string, problems: Problem[], path = schema): void {
  const allowed = ALLOWED_KEYS[schema] ?? [];
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      problems.push({ path: path ? `${path}.${key}` : key, message: `unknown field; allowed: ${allowed.filter((k) => k !== '//').join(', ')}` });
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Profile defaults are written for the profile's subnet. When the user moves the cluster to another
 * subnet, every default address keeps its host offset, so that a one-line override moves everything.
 */
function rebase(address: string, from: Cidr, to: Cidr): string {
  return hostAt(to, offsetIn(from, address));
}

function mergeConfig(profile: Profile, config: ClusterConfig, problems: Problem[]): MergedConfig {
  const defaults = profile.cluster;
  const userNetwork = isObject(config.network) ? config.network : {};
  const defaultSubnet = parseCidr(defaults.network.subnet!);
  const userSubnet = typeof userNetwork.subnet === 'string' && isCidr(userNetwork.subnet) ? parseCidr(userNetwork.subnet) : undefined;
  const move = (address: string): string => (userSubnet ? rebase(address, defaultSubnet, userSubnet) : address);
  const moveCidr = (cidr: string): string => {
    if (!userSubnet) return cidr;
    const parsed = parseCidr(cidr);
    return `${move(intToIp(parsed.network))}/${parsed.prefix}`;
  };

  const dn = defaults.network;
  const network = {
    subnet: dn.subnet!,
    clusterNic: profile.nics.cluster.name,
    serviceCidr: moveCidr(dn.serviceCidr!),
    clusterDns: move(dn.clusterDns!),
    clusterDomain: dn.clusterDomain!,
    apiSecurePort: dn.apiSecurePort!,
    apiInsecurePort: dn.apiInsecurePort!,
    containerRange: { start: move(dn.containerRange!.start), end: move(dn.containerRange!.end) },
    calicoPool: dn.calicoPool!,
    uplinkSubnet: dn.uplinkSubnet!,
    ...userNetwork,
  };
  if (isObject(userNetwork.containerRange)) network.containerRange = { ...network.containerRange, ...userNetwork.containerRange };
  if (isObject(userNetwork.calicoPool)) network.calicoPool = { ...dn.calicoPool!, ...userNetwork.calicoPool };

  const nodes = mergeNodes(profile, config, move, problems);
  return {
    name: config.name ?? defaults.name,
    provider: config.provider ?? profile.defaultProvider,
    boxStore: config.boxStore,
    network,
    etcd: { ...(defaults.etcd as MergedConfig['etcd']), ...(isObject(config.etcd) ? config.etcd : {}) },
    versions: {
      ...Object.fromEntries(Object.entries(profile.versions).map(([component, v]) => [component, v.default])),
      ...(isObject(config.versions) ? config.versions : {}),
    },
    nodes,
    mirrors: isObject(config.mirrors) ? config.mirrors : {},
    libvirt: isObject(config.libvirt) ? config.libvirt : {},
    terraform: isObject(config.terraform) ? config.terraform : {},
    timeouts: isObject(config.timeouts) ? config.timeouts : {},
  };
}

function mergeNodes(profile: Profile, config: ClusterConfig, move: (ip: string) => string, problems: Problem[]): MergedConfig['nodes'] {
  const defaults = profile.cluster.nodes.map((node) => ({ ...node, ip: move(node.ip!) })) as MergedConfig['nodes'];
  let nodes = defaults;
  if (config.workers !== undefined) {
    if (!Number.isInteger(config.workers) || config.workers < 1 || config.workers > 64) {
      problems.push({ path: 'workers', message: `must be a whole number from 1 to 64, got ${JSON.stringify(config.workers)}` });
    } else {
      nodes = withWorkerCount(defaults, config.workers);
    }
  }
  for (const override of Array.isArray(config.nodes) ? config.nodes : []) {
    if (!isObject(override) || typeof override.name !== 'string') continue;
    const existing = nodes.find((node) => node.name === override.name);
    if (existing) Object.assign(existing, override);
    else {
      const role: Role = (override.role as Role) ?? 'worker';
      const template = [...nodes].reverse().find((node) => node.role === role) ?? nodes.at(-1)!;
      const ip = override.ip ?? nextFreeIp(nodes, template.ip);
      nodes.push({ ...template, ...override, role, ip });
    }
  }
  return nodes;
}

/** Workers beyond the profile's are named and addressed after the last default worker. */
function withWorkerCount(defaults: MergedConfig['nodes'], count: number): MergedConfig['nodes'] {
  const workers = defaults.filter((node) => node.role === 'worker');
  const others = defaults.filter((node) => node.role !== 'worker');
  const last = workers.at(-1)!;
  const [, stem = last.name, number = '0'] = /^(.*?)(\d+)$/.exec(last.name) ?? [];
  const extra = Array.from({ length: Math.max(0, count - workers.length) }, (_, index) => ({
    ...last,
    name: `${stem}${Number(number) + index + 1}`,
    ip: intToIp(ipToInt(last.ip) + index + 1),
  }));
  return [...others, ...workers.slice(0, count), ...extra];
}

function nextFreeIp(nodes: MergedConfig['nodes'], after: string): string {
  const taken = new Set(nodes.map((node) => node.ip));
  let candidate = ipToInt(after) + 1;
  while (taken.has(intToIp(candidate))) candidate += 1;
  return intToIp(candidate);
}

function validateMerged(merged: MergedConfig, profile: Profile, raw: ClusterConfig, problems: Problem[], warnings: Problem[]): void {
  const add = (path: string, message: string) => problems.push({ path, message });
  const net = merged.network;

  if (typeof merged.name !== 'string' || !HOSTNAME.test(merged.name)) {
    add('name', `must be a lowercase DNS label (a-z, 0-9, '-', at most 63 characters), got ${JSON.stringify(merged.name)}`);
  }
  if (!(PROVIDERS as readonly string[]).includes(merged.provider)) {
    add('provider', `unknown provider ${JSON.stringify(merged.provider)}; allowed: ${PROVIDERS.join(', ')}`);
  } else if (!profile.providers.includes(merged.provider as ProviderName)) {
    add('provider', `profile "${profile.name}" does not support provider "${merged.provider}"; allowed: ${profile.providers.join(', ')}`);
  }
  if (merged.boxStore !== undefined && (typeof merged.boxStore !== 'string' || !STORE_URL.test(merged.boxStore))) {
    add('boxStore', `must be a file://, http:// or https:// URL, got ${JSON.stringify(merged.boxStore)}`);
  }
  for (const key of ['artifacts', 'apt'] as const) {
    const url = merged.mirrors[key];
    if (url !== undefined && (typeof url !== 'string' || !STORE_URL.test(url))) {
      add(`mirrors.${key}`, `must be a file://, http:// or https:// URL, got ${JSON.stringify(url)}`);
    }
  }
  const { uri, managementNetworkMode } = merged.libvirt;
  if (uri !== undefined && (typeof uri !== 'string' || !LIBVIRT_URI.test(uri))) {
    add('libvirt.uri', `must be a libvirt URI such as qemu:///system or qemu+unix:///system?socket=/path, got ${JSON.stringify(uri)}`);
  }
  if (managementNetworkMode !== undefined && !(LIBVIRT_MANAGEMENT_MODES as readonly unknown[]).includes(managementNetworkMode)) {
    add('libvirt.managementNetworkMode', `must be one of ${LIBVIRT_MANAGEMENT_MODES.join(', ')}, got ${JSON.stringify(managementNetworkMode)}`);
  }
  const resource = merged.terraform.resource;
  if (resource !== undefined && !(TERRAFORM_RESOURCES as readonly unknown[]).includes(resource)) {
    add('terraform.resource', `must be one of ${TERRAFORM_RESOURCES.join(', ')}, got ${JSON.stringify(resource)}`);
  }
  for (const [key, value] of Object.entries(merged.timeouts)) {
    if (typeof value !== 'number') add(`timeouts.${key}`, `must be a number of seconds, got ${typeof value} ${JSON.stringify(value)}`);
    else if (!Number.isInteger(value) || value < 15 || value > 24 * 3600) add(`timeouts.${key}`, `must be a whole number of seconds from 15 to 86400, got ${value}`);
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
  if (typeof net.clusterDomain !== 'string' || !DNS_NAME.test(net.clusterDomain)) {
    add('network.clusterDomain', `must be a DNS domain such as "cluster.local", got ${JSON.stringify(net.clusterDomain)}`);
  }
  checkPort('network.apiSecurePort', net.apiSecurePort, add);
  checkPort('network.apiInsecurePort', net.apiInsecurePort, add);
  if (net.apiSecurePort === net.apiInsecurePort) add('network.apiInsecurePort', 'must differ from network.apiSecurePort');

  const rangeStart = checkIp('network.containerRange.start', net.containerRange.start, add);
  const rangeEnd = checkIp('network.containerRange.end', net.containerRange.end, add);
  let containerRange: IpRange | undefined;
  if (rangeStart !== undefined && rangeEnd !== undefined) {
    if (rangeStart > rangeEnd) add('network.containerRange', `start ${net.containerRange.start} is after end ${net.containerRange.end}`);
    else {
      containerRange = { first: rangeStart, last: rangeEnd };
      if (subnet && !rangeContains(cidrRange(subnet), containerRange)) {
        add('network.containerRange', `${net.containerRange.start}-${net.containerRange.end} must lie inside the cluster subnet ${net.subnet}`);
      }
      if (service && rangesOverlap(containerRange, cidrRange(service))) {
        add('network.containerRange', `${net.containerRange.start}-${net.containerRange.end} overlaps the service range ${net.serviceCidr}`);
      }
    }
  }

  const pool = net.calicoPool;
  const poolCidr = checkCidr('network.calicoPool.cidr', pool.cidr, add);
  if (typeof pool.ipip !== 'boolean') add('network.calicoPool.ipip', `must be true or false, got ${JSON.stringify(pool.ipip)}`);
  if (typeof pool.natOutgoing !== 'boolean') add('network.calicoPool.natOutgoing', `must be true or false, got ${JSON.stringify(pool.natOutgoing)}`);
  if (profile.features.calico && poolCidr && subnet && rangesOverlap(cidrRange(poolCidr), cidrRange(subnet))) {
    warnings.push({
      path: 'network.calicoPool.cidr',
      message: `${pool.cidr} contains the cluster subnet ${net.subnet}, as the 2016 setup did; Calico may hand pods addresses of the node network`,
    });
  }
  const uplink = checkCidr('network.uplinkSubnet', net.uplinkSubnet, add);
  if (uplink && subnet && rangesOverlap(cidrRange(uplink), cidrRange(subnet))) {
    add('network.uplinkSubnet', `${net.uplinkSubnet} overlaps the cluster subnet ${net.subnet}`);
  }

  // Nodes.
  const names = new Map<string, number>();
  const ips = new Map<string, number>();
  const macs = new Map<string, number>();
  merged.nodes.forEach((node, index) => {
    const path = nodePath(raw, node.name, index);
    if (typeof node.name !== 'string' || !HOSTNAME.test(node.name)) {
      add(`${path}.name`, `invalid hostname ${JSON.stringify(node.name)}: lowercase letters, digits and '-', not starting or ending with '-', at most 63 characters`);
    }
    if (names.has(node.name)) add(`${path}.name`, `duplicate node name "${node.name}"`);
    names.set(node.name, index);

    if (!(ROLES as readonly string[]).includes(node.role)) {
      add(`${path}.role`, `unknown role ${JSON.stringify(node.role)}; allowed: ${ROLES.join(', ')}`);
    } else {
      const minimum = profile.roleMinimums[node.role];
      if (!Number.isInteger(node.memoryMb) || node.memoryMb < minimum.memoryMb) {
        add(`${path}.memoryMb`, `a ${node.role} needs at least ${minimum.memoryMb} MB in profile "${profile.name}", got ${JSON.stringify(node.memoryMb)}`);
      }
      if (!Number.isInteger(node.cpus) || node.cpus < minimum.cpus) {
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
    if (node.mac !== undefined) {
      if (typeof node.mac !== 'string' || !MAC.test(node.mac)) add(`${path}.mac`, `must look like 52:54:00:12:34:56, got ${JSON.stringify(node.mac)}`);
      else if (parseInt(node.mac.slice(0, 2), 16) % 2 === 1) add(`${path}.mac`, `${node.mac} is a multicast address; the first octet must be even`);
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
  const portLists = { 'etcd.clientPorts': etcd.clientPorts, 'etcd.peerPorts': etcd.peerPorts };
  for (const [path, ports] of Object.entries(portLists)) {
    if (!Array.isArray(ports) || ports.length === 0) add(path, 'must be a non-empty list of TCP ports');
    else {
      ports.forEach((port, index) => checkPort(`${path}[${index}]`, port, add));
      if (new Set(ports).size !== ports.length) add(path, `lists a port twice: ${ports.join(', ')}`);
    }
  }
  if (Array.isArray(etcd.clientPorts) && Array.isArray(etcd.peerPorts)) {
    const shared = etcd.clientPorts.filter((port) => etcd.peerPorts.includes(port));
    if (shared.length) add('etcd.peerPorts', `port(s) ${shared.join(', ')} already used by etcd.clientPorts`);
  }
}

/** The path of a node in the user's words: its index in `nodes` if the user wrote it, else its name. */
function nodePath(raw: ClusterConfig, name: string, index: number): string {
  const userIndex = Array.isArray(raw.nodes) ? raw.nodes.findIndex((node) => isObject(node) && node.name === name) : -1;
  return userIndex >= 0 ? `nodes[${userIndex}]` : `nodes[${index}] (${name})`;
}

function checkIp(path: string, value: unknown, add: (path: string, message: string) => void): number | undefined {
  if (typeof value !== 'string' || !isIpv4(value)) {
    add(path, `must be an IPv4 address such as 192.168.10.10, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return ipToInt(value);
}

function checkCidr(path: string, value: unknown, add: (path: string, message: string) => void): Cidr | undefined {
  if (typeof value !== 'string' || !isCidr(value)) {
    add(path, `must be an IPv4 CIDR with its network address, such as 192.168.10.0/24, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return parseCidr(value);
}

function checkPort(path: string, value: unknown, add: (path: string, message: string) => void): void {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) {
    add(path, `must be a TCP port from 1 to 65535, got ${JSON.stringify(value)}`);
  }
}

/** Locally administered, stable per cluster and node (reboots keep names and leases), unique per NIC by construction. */
function macFor(clusterName: string, index: number, nicSlot: number): string {
  const clusterByte = createHash('sha256').update(clusterName).digest()[0]!;
  return ['52', '54', '00', clusterByte, nicSlot, index].map((part) => (typeof part === 'number' ? part.toString(16).padStart(2, '0') : part)).join(':');
}

function derive(merged: MergedConfig, profile: Profile): Cluster {
  const net = merged.network;
  const subnet = parseCidr(net.subnet);
  const service = parseCidr(net.serviceCidr);
  const uplinkSubnet = parseCidr(net.uplinkSubnet);
  const kubernetesServiceIp = intToIp(service.network + 1);
  const masterConfig = merged.nodes.find((node) => node.role === 'master')!;
  const workerConfigs = merged.nodes.filter((node) => node.role === 'worker');
  const ipamRanges = splitRange({ first: ipToInt(net.containerRange.start), last: ipToInt(net.containerRange.end) }, workerConfigs.length);
  const etcdNode = merged.nodes.find((node) => node.name === merged.etcd.node)!;

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
      macs: { cluster: (node.mac ?? macFor(merged.name, index, 8)).toLowerCase(), vpp: macFor(merged.name, index, 9) },
      etcd: node.name === merged.etcd.node,
      ...(workerIndex >= 0
        ? { ipamRange: { start: intToIp(ipamRanges[workerIndex]!.first), end: intToIp(ipamRanges[workerIndex]!.last) } }
        : {}),
      ...(workerIndex >= 0 && profile.features.vpp ? { uplink: `${hostAt(uplinkSubnet, workerIndex + 1)}/${uplinkSubnet.prefix}` } : {}),
      certificateSans: isMaster
        ? {
            dns: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${net.clusterDomain}`, node.name],
            ip: [node.ip, kubernetesServiceIp],
          }
        : { dns: [node.name], ip: [node.ip] },
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
      nics: profile.nics,
    },
    api: {
      host: masterConfig.ip,
      securePort: net.apiSecurePort,
      insecurePort: net.apiInsecurePort,
      url: `https://${masterConfig.ip}:${net.apiSecurePort}`,
    },
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
    timeouts: { remoteCommandSeconds: merged.timeouts.remoteCommandSeconds ?? 600, sshReadySeconds: merged.timeouts.sshReadySeconds ?? 600 },
  };
}
