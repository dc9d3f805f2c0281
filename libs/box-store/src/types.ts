import type { Readable } from 'node:stream';
import type { DeadlinePolicy } from '@boxcar/kit';
import type { Catalog } from './catalog.ts';
import type { LayerManifest } from './layer-manifest.ts';
import type { StoreLockOptions } from './lock.ts';

export interface BoxProviderSummary {
  name: string;
  size: number;
  checksum: string;
  url: string;
}

export interface BoxVersionSummary {
  version: string;
  key: string;
  layer: string;
  profile: string;
  createdAt: string;
  providers: BoxProviderSummary[];
}

export interface BoxSummary {
  name: string;
  description: string;
  /** Oldest first, as in the catalog. */
  versions: BoxVersionSummary[];
}

export interface PublishBoxRequest {
  /** "<org>/<name>", e.g. "boxcar/lab-worker". */
  boxName: string;
  /** The box's description in the catalog (the latest publish sets it). */
  description: string;
  provider: string;
  /** Local path of the .box to publish. */
  boxFile: string;
  /** Content key of what the box holds: a later publish with the same key reuses this version. */
  key: string;
  layer: string;
  profile: string;
  /** Day the version is numbered by (default now, UTC). */
  date?: Date;
  /** Major version (default: the box's highest, 1 for a new box). */
  major?: number;
  /** Description of this version in the catalog. */
  versionDescription?: string;
}

export interface PublishBoxResult {
  version: string;
  /** URL of the .box as written into the catalog. */
  url: string;
  sha256: string;
  size: number;
  /** False when the box with this key and provider was already there (nothing copied). */
  created: boolean;
}

export interface VerifiedBox {
  /** File or URL that was read. */
  location: string;
  sha256: string;
  size: number;
}

export interface GcOptions {
  /** Versions to keep per box (newest first), and unreferenced layer dirs per profile/layer. At least 1. */
  keep: number;
  /** Report what would be removed without removing it. */
  dryRun?: boolean;
}

export interface GcResult {
  boxVersions: { name: string; version: string }[];
  layers: { profile: string; layer: string; key: string }[];
  /** Box versions and layers gc would have removed but kept because a cluster's nodes run on them. */
  kept: KeptForRefs[];
  /** Every path removed, including leftovers of interrupted writers. */
  paths: string[];
}

/** One node of a cluster running on a layer of the store (its box names the version it came from). */
export interface LayerRef {
  /**
   * Whose cluster: unique on its host across users and checkouts (libs/nodes makes it from the cluster's
   * name and a hash of the user and the cluster's state directory), since each has its own nodes.
   */
  cluster: string;
  node: string;
  profile: string;
  layer: string;
  /** Content key of the layer. */
  key: string;
  box: { name: string; version: string };
  /** The machine the cluster runs on: its host name and a hash of its machine id (two machines may share a host name). */
  host: string;
  /** Who runs the cluster, for people reading `images refs`: the user and the cluster's state directory. */
  owner?: { user: string; stateDir: string };
  createdAt: string;
}

export type NewLayerRef = Omit<LayerRef, 'host' | 'createdAt'>;

export interface RefFilter {
  cluster: string;
  /** Only this node's reference (default: every node of the cluster). */
  node?: string;
  /** Default: this machine. */
  host?: string;
}

export interface KeptForRefs {
  /** Absent for a layer (the layer itself kept). */
  box?: { name: string; version: string };
  profile: string;
  layer: string;
  key: string;
  /** e.g. "used by cluster lab (cni-worker1, cni-worker2)". */
  reason: string;
  usedBy: LayerRef[];
}

export interface CopyOptions {
  /** Boxes to copy (default: all of the source). */
  boxes?: string[];
  /** Only these versions (default: all). */
  versions?: string[];
}

export interface CopiedBox {
  name: string;
  version: string;
  provider: string;
  /** URL of the box in the target's catalog. */
  url: string;
}

/** A layer of a store, by its address in the layout. */
export interface LayerId {
  profile: string;
  layer: string;
  key: string;
}

export interface CopiedLayers {
  copied: LayerId[];
  /** Already in the target with the same files, verified there. */
  present: LayerId[];
  /** Not in the source: the copied box serves Vagrant providers, but a qemu node cannot boot from it. */
  missing: LayerId[];
}

export interface CopyResult {
  copied: CopiedBox[];
  /** Already in the target with the same checksum: left as they were. */
  present: CopiedBox[];
  /** The layers of the box versions copied or present, in the order they were handled. */
  layers: CopiedLayers;
}

export interface PullResult {
  name: string;
  version: string;
  /** Where `vagrant box add` finds the box in the local store. */
  catalogUrl: string;
  copied: CopiedBox[];
  layers: CopiedLayers;
}

export type PublishStage = 'box-copied' | 'box-renamed' | 'layer-copied';

export interface HttpStoreLimits {
  /** Cap of index.json, catalogs, layer manifests and keys (read whole into memory); default 4 MiB. */
  maxTextBytes?: number;
  /** Total deadline of each request: baseMs plus its expected bytes at minBytesPerSecond; default 2 min + 256 KiB/s. */
  deadline?: DeadlinePolicy;
  /** Longest silence on a connection; default 60 s. */
  idleTimeoutMs?: number;
  /** Certificate authorities (PEM) trusted for https instead of Node's defaults. */
  ca?: string | Buffer;
  /** `.tmp-` leftovers in the layer cache untouched for this long are removed when the cache is opened; default a day. */
  staleTempMs?: number;
}

export interface OpenStoreOptions {
  /** Base URL written into catalogs (default: the store's own URL). For a file store served over http. */
  publicUrl?: string;
  /** Where an http store keeps downloaded layers (default `${XDG_CACHE_HOME:-~/.cache}/boxcar/layer-cache`). */
  cacheDir?: string;
  lock?: StoreLockOptions;
  /** Bounds of an http store's reads, so that a hostile or broken server cannot exhaust memory, disk or time. */
  http?: HttpStoreLimits;
  /**
   * Called after each step of a publish, before the catalog changes; throwing aborts the publish and
   * rolls it back. For progress reports and for tests that inject a failure.
   */
  onPublishStage?: (stage: PublishStage, path: string) => void | Promise<void>;
}

export interface BoxStore {
  /** file:///abs/path or http(s)://host/base, without a trailing slash. */
  readonly url: string;
  /** Base of the URLs written into catalogs. */
  readonly publicUrl: string;
  readonly writable: boolean;
  /** The URL to give `vagrant box add`. */
  catalogUrl(boxName: string): string;
  boxUrl(boxName: string, version: string, provider: string): string;

  readLayer(profile: string, layer: string, key: string): Promise<LayerManifest | undefined>;
  hasLayer(profile: string, layer: string, key: string): Promise<boolean>;
  /** The most recently published layer of that name (any key), e.g. to compare its recorded inputs. */
  latestLayer(profile: string, layer: string): Promise<LayerManifest | undefined>;
  /** Local directory with the layer's files, each verified against layer.json (http: downloaded into the cache). */
  layerFiles(profile: string, layer: string, key: string): Promise<string>;
  publishLayer(profile: string, layer: string, key: string, srcDir: string, meta: Record<string, unknown>): Promise<LayerManifest>;

  readCatalog(boxName: string): Promise<Catalog>;
  listBoxes(): Promise<BoxSummary[]>;
  findBoxVersionByKey(boxName: string, key: string): Promise<BoxVersionSummary | undefined>;
  publishBox(request: PublishBoxRequest): Promise<PublishBoxResult>;
  /** A stream of the box that fails at its end unless size and sha256 match the catalog. */
  openBox(name: string, version: string, provider: string): Promise<Readable>;
  verifyBox(name: string, version: string, provider: string): Promise<VerifiedBox>;
  /** Copies the verified box into destDir; returns its path. */
  fetchBox(name: string, version: string, provider: string, destDir: string): Promise<string>;
  /**
   * Keeps the newest `keep` versions of each box, and every box version and layer a reference names
   * (gc says which cluster keeps it). Http stores are read only and refuse.
   */
  gc(options: GcOptions): Promise<GcResult>;
  /**
   * Records, under the store lock, that a node of a cluster runs on this layer (its box version too),
   * so that gc keeps them until dropRefs; fails when the layer is no longer in the store. A file store
   * writes refs/ in the store; an http store, read only, writes them in the local layer cache, whose
   * refresh then never removes the layer.
   */
  addRef(ref: NewLayerRef): Promise<LayerRef>;
  /** Every reference: of every host for a file store, of this machine's cache for an http store. */
  listRefs(): Promise<LayerRef[]>;
  /** Removes the references of a cluster (or one of its nodes) and returns them: node down, cluster down, a dead cluster. */
  dropRefs(filter: RefFilter): Promise<LayerRef[]>;
  /**
   * Removes what interrupted writers left behind (temp entries, box versions and files no catalog
   * lists) and nothing that is published; returns the paths removed. It holds the store lock, so a
   * write in progress is never taken for a leftover.
   */
  sweepIncomplete(): Promise<string[]>;
  /**
   * Copies box files, catalogs and the layer each copied box version was baked from (a qemu node boots
   * the layer's disk) into a writable store, with URLs pointing into that store; every file is verified
   * against its catalog or manifest as it is read and read back at the target.
   */
  copyTo(target: BoxStore, options?: CopyOptions): Promise<CopyResult>;
  /** Copies one version (default: newest) into the local default store (or `into`). */
  pull(name: string, version?: string, options?: { into?: BoxStore }): Promise<PullResult>;
}
