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
  /** Every node's box: for providers whose one file describes the whole cluster (a Vagrantfile). */
  clusterBoxes(): Promise<Record<string, BoxRef>>;
  /** The private key the boxes accept before the cluster's own key replaces it. */
  bootstrapKey(): Promise<string>;
}

export interface BootedNode {
  /** Where the node answers SSH, as seen from where boxcar runs. */
  ssh: { host: string; port: number };
  /** The node's console output, when the provider keeps one: named in a boot failure. */
  serialLog?: string;
}

export type MachineState = 'running' | 'stopped' | 'absent';

export interface NodeProvider {
  readonly name: ProviderName;
  /** Boots one node from its box and returns once the machine runs (SSH may not answer yet). */
  up(context: ProviderContext, nodeName: string, boot: NodeBoot): Promise<BootedNode>;
  /** Stops one node and removes its disk; true if there was something to stop. The node need not be in the model. */
  down(context: ProviderContext, nodeName: string): Promise<boolean>;
  /** Every machine the provider has for this cluster, by node name. */
  status(context: ProviderContext): Promise<Record<string, MachineState>>;
  /** Everything of the cluster gone on this provider, verified; the names of the nodes it stopped. */
  cleanup(context: ProviderContext): Promise<string[]>;
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
