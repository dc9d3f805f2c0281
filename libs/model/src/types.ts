// The cluster model: what the user may write (ClusterConfig, every field optional), what a profile
// provides (Profile), and what everything downstream consumes (Cluster, fully resolved and derived).

export const ROLES = ['master', 'worker'] as const;
export type Role = (typeof ROLES)[number];

export const PROVIDERS = ['virtualbox', 'libvirt', 'qemu'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export interface IpRangeText {
  start: string;
  end: string;
}

export interface CalicoPool {
  cidr: string;
  ipip: boolean;
  natOutgoing: boolean;
}

export interface NodeConfig {
  name: string;
  role?: Role;
  ip?: string;
  memoryMb?: number;
  cpus?: number;
  /** MAC of the cluster NIC; generated from the cluster name and node index when absent. */
  mac?: string;
}

/** The user's overrides (cluster.config.json) and a profile's defaults share this shape. */
export interface ClusterConfig {
  name?: string;
  profile?: string;
  provider?: string;
  boxStore?: string;
  /** The URL a web server serves the box store at: the base of the box URLs `images bake|publish` write into catalogs. */
  boxStorePublicUrl?: string;
  network?: {
    subnet?: string;
    clusterNic?: string;
    serviceCidr?: string;
    clusterDns?: string;
    clusterDomain?: string;
    apiSecurePort?: number;
    apiInsecurePort?: number;
    containerRange?: IpRangeText;
    calicoPool?: CalicoPool;
    uplinkSubnet?: string;
  };
  etcd?: {
    node?: string;
    clientPorts?: number[];
    peerPorts?: number[];
  };
  versions?: Record<string, string>;
  /** Number of workers; extra ones are named and addressed after the last default worker. */
  workers?: number;
  nodes?: NodeConfig[];
  mirrors?: {
    artifacts?: string;
    apt?: string;
  };
  /** Where the libvirt provider runs the nodes; ignored by the other providers. */
  libvirt?: LibvirtConfig;
  terraform?: TerraformConfig;
  timeouts?: TimeoutsConfig;
}

/**
 * The resource type of the stack's nodes: Terraform's built-in `terraform_data` (Terraform 1.4+,
 * OpenTofu 1.6+: no provider to download), or `null_resource` from the hashicorp/null provider.
 */
export const TERRAFORM_RESOURCES = ['terraform_data', 'null_resource'] as const;
export type TerraformResourceType = (typeof TERRAFORM_RESOURCES)[number];

export interface TerraformConfig {
  resource?: TerraformResourceType;
}

export interface TimeoutsConfig {
  /** Deadline of each remote command of `node configure`. */
  remoteCommandSeconds?: number;
  /** How long `node up` waits for a node to accept SSH. */
  sshReadySeconds?: number;
  /**
   * How long `cluster up` waits, after terraform's apply, for every node to be Ready in the Kubernetes API
   * (profiles with a KubernetesSpec only).
   */
  kubernetesReadySeconds?: number;
}

export const LIBVIRT_MANAGEMENT_MODES = ['nat', 'none', 'route', 'open'] as const;

export interface LibvirtConfig {
  /** libvirt connection URI (vagrant-libvirt's `uri`); default qemu:///system. */
  uri?: string;
  /** Forward mode of Vagrant's management network; `none` keeps the guests off the host's uplink. */
  managementNetworkMode?: (typeof LIBVIRT_MANAGEMENT_MODES)[number];
}

export interface NicSpec {
  /** Predictable interface name inside the guest (enp0s<slot>). */
  name: string;
  pciSlot: number;
  model: string;
}

export interface ComponentVersions {
  default: string;
  supported: string[];
  note?: string;
}

/**
 * How a profile runs Kubernetes when not the 2016 way (hyperkube static pods on docker, Calico): the lab's
 * Kubernetes, compiled by the bake, as systemd units on containerd, pods routed between nodes by a BIRD
 * mesh. Present only where `features.kubernetes` is true.
 */
export interface KubernetesSpec {
  /** What the compiled binaries report (`kubectl get nodes` shows it with the patches' mark). */
  version: string;
  runtime: 'containerd';
  controlPlane: 'systemd';
  /** Each node routes its own block of `network.calicoPool.cidr` to its pods; BIRD (iBGP, full mesh) tells the others. */
  podNetwork: { type: 'bird-mesh'; asn: number; blockPrefixLength: number; firstBlock: number };
  /** Local images the bake imported into containerd (nothing is ever pulled). */
  images: { pause: string; test: string };
}

export interface Profile {
  name: string;
  description: string;
  os: { distribution: string; release: string; codename: string };
  providers: ProviderName[];
  defaultProvider: ProviderName;
  features: {
    vpp: boolean;
    felix: boolean;
    kubernetes: boolean;
    calico: boolean;
    ipvlanDemo: boolean;
    /** The boxes read the cluster key at first boot (the boxcar-first-boot unit); absent: they do not. */
    firstBoot?: boolean;
  };
  roleMinimums: Record<Role, { memoryMb: number; cpus: number }>;
  boxes: Record<Role, string>;
  nics: {
    nat: NicSpec;
    cluster: NicSpec & { internalNetwork: string; promiscuous: string };
    vpp: NicSpec & { pciAddress: string; vppInterface: string; promiscuous: string; cableConnectedAtBoot: boolean };
  };
  vpp?: { hugepages: number; uplinkSwIfIndex: number };
  versions: Record<string, ComponentVersions>;
  kubernetes?: KubernetesSpec;
  /** Per-role kubelet version component names (the 2016 master and workers ran different kubelets). */
  kubeletVersionComponent?: Record<Role, string>;
  cluster: Required<Pick<ClusterConfig, 'name' | 'network' | 'etcd' | 'nodes'>> & ClusterConfig;
}

export interface ClusterNode {
  name: string;
  index: number;
  role: Role;
  ip: string;
  memoryMb: number;
  cpus: number;
  macs: { cluster: string; vpp: string };
  etcd: boolean;
  /** This node's share of the container range (old ipvlan demo, host-local IPAM); workers only. */
  ipamRange?: IpRangeText;
  /** Route-agent uplink address on VPP (CIDR notation); workers of VPP profiles only. */
  uplink?: string;
  certificateSans: { dns: string[]; ip: string[] };
  /** This node's pod range (CIDR) where the profile routes pods between nodes (KubernetesSpec.podNetwork). */
  podCidr?: string;
  kubeletVersion?: string;
  box: string;
}

export interface Cluster {
  name: string;
  profile: Profile;
  provider: ProviderName;
  boxStore?: string;
  network: {
    subnet: string;
    prefixLength: number;
    netmask: string;
    serviceCidr: string;
    kubernetesServiceIp: string;
    clusterDns: string;
    clusterDomain: string;
    containerRange: IpRangeText;
    calicoPool: CalicoPool;
    uplinkSubnet: string;
    nics: Profile['nics'];
  };
  api: { host: string; securePort: number; insecurePort: number; url: string };
  /** The profile's KubernetesSpec, where it has one. */
  kubernetes?: KubernetesSpec;
  etcd: {
    node: string;
    ip: string;
    clientPorts: number[];
    peerPorts: number[];
    /** Client URLs of the Calico etcd, first port first. */
    endpoints: string[];
  };
  versions: Record<string, string>;
  nodes: ClusterNode[];
  master: ClusterNode;
  workers: ClusterNode[];
  mirrors: { artifacts?: string; apt?: string };
  libvirt: LibvirtConfig;
  terraform: { resource: TerraformResourceType };
  timeouts: Required<TimeoutsConfig>;
}

export interface Problem {
  /** Field path in the config, e.g. `nodes[1].ip`. */
  path: string;
  message: string;
}
