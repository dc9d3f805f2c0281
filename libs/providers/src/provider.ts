import type { Cluster, ProviderName } from '@boxcar/model';

// The entry points every provider implements, one folder each (qemu/, vagrant/), the way
// kubernetes-sigs/image-builder gives every provider the same targets. libs/nodes calls only these:
// adding a provider means a folder that implements NodeProvider and its line in registry.ts.

/** Where and how a provider works for one cluster. */
export interface ProviderContext {
  cluster: Cluster;
  /** The provider's own directory of this cluster: .cluster/<name>/<provider>. */
  stateDir: string;
  onProgress?: (node: string, message: string) => void;
  /** Aborts a boot that is under way (SIGINT/SIGTERM of the CLI). */
  signal?: AbortSignal;
}

/** A box as a catalog names it. */
export interface BoxRef {
  name: string;
  version: string;
  /** The store's Vagrant catalog (metadata.json) of the box. */
  catalogUrl: string;
}

/** What a node boots from; asked for lazily, since each provider needs a different part of it. */
export interface NodeBoot {
  box: BoxRef;
  /** The box's disk (qcow2) as the store keeps it: for providers that boot the disk directly. */
  disk(): Promise<string>;
  /**
   * The sha256 of that disk, as the store's layer manifest records it: a provider that keeps an overlay
   * on the disk refuses to reuse it once the bytes behind the same path have changed.
   */
  diskSha256(): Promise<string>;
  /** Every node's box: for providers whose one file describes the whole cluster (a Vagrantfile). */
  clusterBoxes(): Promise<Record<string, BoxRef>>;
  /**
   * The private key the boxes accept before the cluster's own key replaces it; undefined when the node
   * gets the cluster key at first boot (the provider has the channel and the profile's boxes read it),
   * so that nothing tries, or needs, the bootstrap key.
   */
  bootstrapKey(): Promise<string | undefined>;
  /** The cluster's own SSH key: its public half is handed to the node at first boot where the provider can. */
  clusterKey(): Promise<{ publicKey: string; privateKeyPath: string }>;
}

/**
 * The host's half of the first-boot channel: public data a node reads at every boot as SMBIOS OEM
 * strings (type 11), read by the image's boxcar-first-boot unit before sshd starts. Only public data
 * goes here: a hypervisor's command line is readable by every local user.
 */
export function firstBootStrings(data: { authorizedKey: string }): string[] {
  const key = data.authorizedKey.trim();
  if (!/^ssh-[\w-]+ [A-Za-z0-9+/=]+( [\x20-\x7e]*)?$/.test(key)) throw new Error(`first-boot channel: authorizedKey must be one OpenSSH public key line, got ${JSON.stringify(key.slice(0, 40))}`);
  return [`boxcar.authorized_key=${key}`];
}

/**
 * Whether a provider forwards a port on 127.0.0.1 to this node's Kubernetes API: the master of a cluster
 * whose profile runs Kubernetes as the lab does (`cluster.kubernetes`). Every provider asks this one question.
 */
export function forwardsKubernetesApi(cluster: Cluster, nodeName: string): boolean {
  return cluster.kubernetes !== undefined && nodeName === cluster.master.name;
}

/** The line the image's first-boot unit prints on the serial console: the node's SSH host key (whole lines only). */
export const HOST_KEY_LINE = /^boxcar-host-key: (ssh-ed25519 [A-Za-z0-9+/=]+)\r?\n/gm;

export interface BootedNode {
  /** Where the node answers SSH, as seen from where boxcar runs. */
  ssh: { host: string; port: number };
  /**
   * Where the node's Kubernetes API answers, as seen from where boxcar runs: a port the provider forwards
   * on 127.0.0.1 to the guest's `cluster.api.securePort` (the host never reaches the cluster network).
   * Only for the master of a cluster that runs Kubernetes as the lab does (forwardsKubernetesApi).
   */
  api?: { host: string; port: number };
  /**
   * The node's serial console output, when the provider keeps it in a file the host alone writes: named
   * in a boot failure, and where the node's host key is learned (HOST_KEY_LINE).
   */
  serialLog?: string;
}

/**
 * A node's machine: running, paused (CPUs stopped, memory kept), stopped-with-state (its running state
 * saved by `cluster stop`, its process gone: `cluster start` resumes it), stopped (no saved state), or
 * absent.
 */
export type NodeRunState = 'running' | 'paused' | 'stopped-with-state' | 'stopped' | 'absent';

/** One snapshot of one node, as the provider keeps it. */
export interface SnapshotInfo {
  name: string;
  /** What the snapshot costs on disk beyond the node's own disk (its saved memory); undefined where the provider cannot tell. */
  sizeBytes?: number;
  createdAt?: string;
}

/**
 * Whole-node snapshots and stop/start with the running state kept, per node; libs/nodes orders the
 * calls so that the cluster is paused, saved and resumed together.
 */
export interface NodeSnapshots {
  /** Stops the node's CPUs; memory and devices stay as they are. */
  pause(context: ProviderContext, nodeName: string): Promise<void>;
  resume(context: ProviderContext, nodeName: string): Promise<void>;
  /** Disk and memory of a paused node under `name` (replacing one of that name); it stays paused. */
  save(context: ProviderContext, nodeName: string, name: string): Promise<void>;
  /** A paused node back to snapshot `name`; it stays paused, or stopped with its state (VirtualBox), until `resume`. */
  restore(context: ProviderContext, nodeName: string, name: string): Promise<void>;
  /** Removes snapshot `name` of the node; one that is not there is fine. */
  remove(context: ProviderContext, nodeName: string, name: string): Promise<void>;
  list(context: ProviderContext, nodeName: string): Promise<SnapshotInfo[]>;
  /** Saves a paused node's running state and stops it (`cluster stop`). */
  suspend(context: ProviderContext, nodeName: string): Promise<void>;
  /**
   * Starts a node stopped with its state (by `suspend`) from that state (`cluster start`), left paused
   * until `resume` where the provider can start a machine paused (not VirtualBox); where it answers SSH
   * now, or undefined when that did not change.
   */
  wake(context: ProviderContext, nodeName: string): Promise<BootedNode | undefined>;
}

/**
 * A program a provider runs on the host, as `doctor` checks it: `command` must exit 0; where the output
 * must say more (a plugin in a list), `expect` must match it, its first group being the version.
 */
export interface Prerequisite {
  name: string;
  command: readonly [string, ...string[]];
  /** How to get it on Debian (or where from). */
  howToGet: string;
  /** What the provider uses it for. */
  detail?: string;
  expect?: RegExp;
}

/** Installing a Debian package (tools/install-prereqs.sh installs every one boxcar needs). */
export const aptInstall = (pkg: string): string => `apt-get install ${pkg} (or tools/install-prereqs.sh)`;

export interface NodeProvider {
  readonly name: ProviderName;
  /** What the provider runs on the host; `doctor` checks each for cluster:up on this provider. */
  readonly prerequisites: readonly Prerequisite[];
  /** Whether the provider hands a node the cluster's public key at its first boot (firstBootStrings). */
  readonly firstBootChannel: boolean;
  /** Boots one node from its box and returns once the machine runs (SSH may not answer yet). */
  up(context: ProviderContext, nodeName: string, boot: NodeBoot): Promise<BootedNode>;
  /** Stops one node and removes its disk; true if there was something to stop. The node need not be in the model. */
  down(context: ProviderContext, nodeName: string): Promise<boolean>;
  /** Every machine the provider has for this cluster, by node name, as far as the provider can tell (absent ones left out). */
  status(context: ProviderContext): Promise<Record<string, NodeRunState>>;
  /** Everything of the cluster gone on this provider, verified; the names of the nodes it stopped. */
  cleanup(context: ProviderContext): Promise<string[]>;
  /** Snapshots and stop/start of the running state (cluster snapshot, stop, start). */
  readonly snapshots: NodeSnapshots;
}

/** A node that did not come up, with the console log that usually says why. */
export class NodeBootError extends Error {
  constructor(
    readonly node: string,
    readonly step: string,
    readonly serialLog: string,
    detail: string,
  ) {
    super(`node ${node}: ${step} failed: ${detail}\n  serial log: ${serialLog}`);
    this.name = 'NodeBootError';
  }
}
