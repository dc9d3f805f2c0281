import { hostAt, intToIp, ipToInt, isCidr, isIpv4, offsetIn, parseCidr, type Cidr } from './ip.ts';
import type { ClusterConfig, LibvirtConfig, NodeConfig, Profile, Role, TerraformConfig, TimeoutsConfig } from './types.ts';

// The user's overrides on top of the profile's defaults. Values of the wrong shape were reported by the
// shape check already: merging leaves them where they are (validation then skips their paths) or ignores
// them where they cannot be used (a `workers` count that is not one).

export type MergedNode = Required<Omit<NodeConfig, 'mac'>> & { mac?: string };

export interface MergedConfig {
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

export const MAX_WORKERS = 64;

export function mergeConfig(profile: Profile, config: ClusterConfig): MergedConfig {
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
    nodes: mergeNodes(profile, config, move),
    mirrors: isObject(config.mirrors) ? config.mirrors : {},
    libvirt: isObject(config.libvirt) ? config.libvirt : {},
    terraform: isObject(config.terraform) ? config.terraform : {},
    timeouts: isObject(config.timeouts) ? config.timeouts : {},
  };
}

/**
 * Profile defaults are written for the profile's subnet. When the user moves the cluster to another
 * subnet, every default address keeps its host offset, so that a one-line override moves everything.
 */
function rebase(address: string, from: Cidr, to: Cidr): string {
  return hostAt(to, offsetIn(from, address));
}

/** The profile's nodes (as many workers as asked), then the user's nodes merged by name; new names are added. */
function mergeNodes(profile: Profile, config: ClusterConfig, move: (ip: string) => string): MergedNode[] {
  const defaults = profile.cluster.nodes.map((node) => ({ ...node, ip: move(node.ip!) })) as MergedNode[];
  const workers = config.workers;
  const nodes = Number.isInteger(workers) && workers! >= 1 && workers! <= MAX_WORKERS ? withWorkerCount(defaults, workers!) : defaults;
  for (const override of Array.isArray(config.nodes) ? config.nodes : []) {
    if (!isObject(override) || typeof override.name !== 'string') continue;
    const existing = nodes.find((node) => node.name === override.name);
    if (existing) Object.assign(existing, override);
    else {
      const role: Role = (override.role as Role) ?? 'worker';
      // A new node copies the last node of its role (one with a usable address: it is counted on from there).
      const usable = nodes.filter((node) => typeof node.ip === 'string' && isIpv4(node.ip));
      const template = [...usable].reverse().find((node) => node.role === role) ?? usable.at(-1) ?? nodes.at(-1)!;
      const ip = override.ip ?? (usable.includes(template) ? nextFreeIp(nodes, template.ip) : template.ip);
      nodes.push({ ...template, ...override, role, ip });
    }
  }
  return nodes;
}

/** Workers beyond the profile's are named and addressed after the last default worker. */
function withWorkerCount(defaults: MergedNode[], count: number): MergedNode[] {
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

function nextFreeIp(nodes: MergedNode[], after: string): string {
  const taken = new Set(nodes.map((node) => node.ip));
  let candidate = ipToInt(after) + 1;
  while (taken.has(intToIp(candidate))) candidate += 1;
  return intToIp(candidate);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
