// What file and http stores share: everything that only reads, expressed over "read this relative path".
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { sha256Stream, tempPathIn } from '@boxcar/kit';
import type { Catalog, CatalogVersion } from './catalog.ts';
import { findVersion, findVersionByKey, newestFirst, parseCatalog } from './catalog.ts';
import { BoxStoreError } from './errors.ts';
import type { Expected } from './verify.ts';
import { mismatch, removeQuietly, writeStreamVerified } from './verify.ts';
import type { LayerFile, LayerManifest } from './layer-manifest.ts';
import { parseLayerManifest } from './layer-manifest.ts';
import { boxPath, catalogPath, joinUrl, layerFilePath, layerManifestPath } from './layout.ts';
import { checkBoxName, checkProvider, checkSegment } from './names.ts';
import type {
  BoxStore,
  BoxSummary,
  BoxVersionSummary,
  CopyOptions,
  CopyResult,
  GcOptions,
  GcResult,
  LayerRef,
  NewLayerRef,
  OpenStoreOptions,
  PublishBoxRequest,
  PublishBoxResult,
  PullResult,
  RefFilter,
  VerifiedBox,
} from './types.ts';

export interface RawBox {
  stream: Readable;
  /** Size known before reading (file size, Content-Length), for an early truncation error. */
  size?: number;
}

export function summarize(version: CatalogVersion): BoxVersionSummary {
  return {
    version: version.version,
    key: version.boxcar.key,
    layer: version.boxcar.layer,
    profile: version.boxcar.profile,
    createdAt: version.boxcar.createdAt,
    providers: version.providers.map((p) => ({ name: p.name, size: version.boxcar.sizes[p.name] ?? 0, checksum: p.checksum, url: p.url })),
  };
}

function verifying(raw: Readable, expected: Expected): Readable {
  return Readable.from(
    (async function* () {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of raw as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
      const problem = mismatch(expected, { sha256: hash.digest('hex'), size });
      if (problem) throw problem;
    })(),
    { objectMode: false },
  );
}

export abstract class BaseStore implements BoxStore {
  abstract readonly url: string;
  abstract readonly publicUrl: string;
  abstract readonly writable: boolean;

  constructor(
    protected readonly options: OpenStoreOptions,
    /** Opens the local default store for pull (injected: the store factory imports this module). */
    private readonly openDefaultStore: () => BoxStore,
  ) {}

  /** Text of a file of the layout, undefined when it does not exist. */
  protected abstract readText(relative: string): Promise<string | undefined>;
  /**
   * Opens a file of the layout for reading; not-found error naming it when absent. `expected` (from the
   * catalog) lets a reader refuse a wrong size early and stop a body that runs past it.
   */
  protected abstract openRaw(relative: string, expected?: Expected): Promise<RawBox>;
  /** The file path or URL of a layout path, as errors name it. */
  abstract locate(relative: string): string;
  protected abstract listBoxNames(): Promise<string[]>;
  abstract layerFiles(profile: string, layer: string, key: string): Promise<string>;
  abstract latestLayer(profile: string, layer: string): Promise<LayerManifest | undefined>;
  abstract publishLayer(profile: string, layer: string, key: string, srcDir: string, meta: Record<string, unknown>): Promise<LayerManifest>;
  abstract publishBox(request: PublishBoxRequest): Promise<PublishBoxResult>;
  abstract gc(options: GcOptions): Promise<GcResult>;
  abstract sweepIncomplete(): Promise<string[]>;
  abstract addRef(ref: NewLayerRef): Promise<LayerRef>;
  abstract listRefs(): Promise<LayerRef[]>;
  abstract dropRefs(filter: RefFilter): Promise<LayerRef[]>;
  /** Copies boxes from `source` into this store (the receiving half of copyTo). */
  abstract importFrom(source: BaseStore, options: CopyOptions): Promise<CopyResult>;

  catalogUrl(boxName: string): string {
    return joinUrl(this.publicUrl, catalogPath(checkBoxName('boxName', boxName)));
  }

  boxUrl(boxName: string, version: string, provider: string): string {
    return joinUrl(this.publicUrl, boxPath(checkBoxName('boxName', boxName), version, checkProvider('provider', provider)));
  }

  async readLayer(profile: string, layer: string, key: string): Promise<LayerManifest | undefined> {
    const relative = layerManifestPath(checkSegment('profile', profile), checkSegment('layer', layer), checkSegment('key', key));
    const text = await this.readText(relative);
    if (text === undefined) return undefined;
    const manifest = parseLayerManifest(text, this.locate(relative));
    if (manifest.profile !== profile || manifest.layer !== layer || manifest.key !== key) {
      const where = this.locate(relative);
      const described = `${manifest.profile}/${manifest.layer}/${manifest.key}`;
      throw new BoxStoreError('invalid-layer', `invalid layer manifest ${where}: it describes ${described}`, where);
    }
    return manifest;
  }

  async hasLayer(profile: string, layer: string, key: string): Promise<boolean> {
    return (await this.readLayer(profile, layer, key)) !== undefined;
  }

  protected async requireLayer(profile: string, layer: string, key: string): Promise<LayerManifest> {
    const manifest = await this.readLayer(profile, layer, key);
    if (!manifest) {
      const where = this.locate(layerManifestPath(profile, layer, key));
      throw new BoxStoreError('not-found', `layer ${profile}/${layer} with key ${key} is not in store ${this.url} (no ${where})`, where);
    }
    return manifest;
  }

  async readCatalogIfExists(boxName: string): Promise<Catalog | undefined> {
    const relative = catalogPath(checkBoxName('boxName', boxName));
    const text = await this.readText(relative);
    if (text === undefined) return undefined;
    const catalog = parseCatalog(text, this.locate(relative));
    if (catalog.name !== boxName) {
      const where = this.locate(relative);
      throw new BoxStoreError('invalid-catalog', `invalid catalog ${where}: name is "${catalog.name}", expected "${boxName}"`, where);
    }
    return catalog;
  }

  async readCatalog(boxName: string): Promise<Catalog> {
    const catalog = await this.readCatalogIfExists(boxName);
    if (!catalog) {
      const where = this.locate(catalogPath(boxName));
      throw new BoxStoreError('not-found', `box ${boxName} is not in store ${this.url} (no ${where})`, where);
    }
    return catalog;
  }

  async listBoxes(): Promise<BoxSummary[]> {
    const boxes: BoxSummary[] = [];
    for (const name of await this.listBoxNames()) {
      const catalog = await this.readCatalogIfExists(name);
      if (catalog) boxes.push({ name, description: catalog.description, versions: catalog.versions.map(summarize) });
    }
    return boxes;
  }

  async findBoxVersionByKey(boxName: string, key: string): Promise<BoxVersionSummary | undefined> {
    const catalog = await this.readCatalogIfExists(boxName);
    const version = catalog && findVersionByKey(catalog, checkSegment('key', key));
    return version && summarize(version);
  }

  /** The raw bytes of a box and what they must hash to; callers verify while they read. */
  async openBoxChecked(name: string, version: string, provider: string): Promise<{ raw: RawBox; expected: Expected }> {
    const catalog = await this.readCatalog(name);
    const where = this.locate(catalogPath(name));
    const entry = findVersion(catalog, version);
    if (!entry) throw new BoxStoreError('not-found', `box ${name} has no version ${version} in ${where}`, where);
    const listed = entry.providers.find((p) => p.name === provider);
    if (!listed) throw new BoxStoreError('not-found', `box ${name} ${version} has no ${provider} box in ${where}`, where);
    const relative = boxPath(name, version, provider);
    const expected: Expected = {
      sha256: listed.checksum,
      size: entry.boxcar.sizes[provider],
      source: this.locate(relative),
      authority: `catalog ${where}`,
    };
    const raw = await this.openRaw(relative, expected);
    if (raw.size !== undefined && expected.size !== undefined && raw.size !== expected.size) {
      raw.stream.destroy();
      throw mismatch(expected, { sha256: '', size: raw.size }) as BoxStoreError;
    }
    return { raw, expected };
  }

  /** The raw bytes of one file of a layer and what its manifest says they hash to; callers verify while they read. */
  async openLayerFileChecked(manifest: LayerManifest, file: LayerFile): Promise<{ raw: RawBox; expected: Expected }> {
    const { profile, layer, key } = manifest;
    const relative = layerFilePath(profile, layer, key, file.path);
    const expected: Expected = { sha256: file.sha256, size: file.size, source: this.locate(relative), authority: this.locate(layerManifestPath(profile, layer, key)) };
    const raw = await this.openRaw(relative, expected);
    if (raw.size !== undefined && raw.size !== file.size) {
      raw.stream.destroy();
      throw mismatch(expected, { sha256: '', size: raw.size }) as BoxStoreError;
    }
    return { raw, expected };
  }

  async openBox(name: string, version: string, provider: string): Promise<Readable> {
    const { raw, expected } = await this.openBoxChecked(name, version, provider);
    return verifying(raw.stream, expected);
  }

  async verifyBox(name: string, version: string, provider: string): Promise<VerifiedBox> {
    const { raw, expected } = await this.openBoxChecked(name, version, provider);
    const digest = await sha256Stream(raw.stream);
    const problem = mismatch(expected, digest);
    if (problem) throw problem;
    return { location: expected.source, ...digest };
  }

  async fetchBox(name: string, version: string, provider: string, destDir: string): Promise<string> {
    const { raw, expected } = await this.openBoxChecked(name, version, provider);
    await mkdir(destDir, { recursive: true });
    const dest = join(destDir, `${name.replace('/', '-')}-${version}-${provider}.box`);
    const temp = tempPathIn(destDir);
    try {
      await writeStreamVerified(raw.stream, temp, expected);
      await rename(temp, dest);
    } catch (error) {
      await removeQuietly(temp);
      throw error;
    }
    return dest;
  }

  async copyTo(target: BoxStore, options: CopyOptions = {}): Promise<CopyResult> {
    if (!(target instanceof BaseStore)) throw new BoxStoreError('invalid-argument', 'copyTo target must be a store from openStore()');
    if (target.url === this.url) throw new BoxStoreError('invalid-argument', `copyTo target is the source store itself (${this.url})`);
    return target.importFrom(this, options);
  }

  async pull(name: string, version?: string, options: { into?: BoxStore } = {}): Promise<PullResult> {
    const into = options.into ?? this.openDefaultStore();
    const catalog = await this.readCatalog(name);
    const chosen = version ?? newestFirst(catalog)[0]?.version;
    if (chosen === undefined || !findVersion(catalog, chosen)) {
      const where = this.locate(catalogPath(name));
      throw new BoxStoreError('not-found', `box ${name} has ${chosen === undefined ? 'no versions' : `no version ${chosen}`} in ${where}`, where);
    }
    const copy = into.url === this.url ? { copied: [], layers: { copied: [], present: [], missing: [] } } : await this.copyTo(into, { boxes: [name], versions: [chosen] });
    return { name, version: chosen, catalogUrl: into.catalogUrl(name), copied: copy.copied, layers: copy.layers };
  }
}
