// A store in a local or shared (NFS, team drive) directory: the only kind that can be written.
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { atomicWriteFile, fsyncDir, pathExists, tempPathIn, TEMP_PREFIX } from '@boxcar/kit';
import { BaseStore } from './base-store.ts';
import type { RawBox } from './base-store.ts';
import type { Catalog, CatalogVersion } from './catalog.ts';
import { emptyCatalog, findVersion, findVersionByKey, newestFirst, serializeCatalog, withoutVersions, withProvider } from './catalog.ts';
import { BoxStoreError, errorCode } from './errors.ts';
import type { Expected } from './verify.ts';
import { removeQuietly, writeStreamVerified } from './verify.ts';
import { listSourceFiles, openSourceFile, verifyLayerDir } from './layer-files.ts';
import type { LayerFile, LayerManifest } from './layer-manifest.ts';
import { newestLayers } from './layer-manifest.ts';
import type { StoreIndex } from './store-index.ts';
import { boxDir, LEGACY_BOOTSTRAP_KEY, boxPath, catalogPath, INDEX_FILE, LAYER_MANIFEST, layerDir, layerManifestPath, versionDir } from './layout.ts';
import { withStoreLock } from './lock.ts';
import { describeUsers, layerId, readRefs, removeRefs, writeRef } from './refs.ts';
import { checkBoxName, checkProvider, checkSegment, isBoxName, isSegment } from './names.ts';
import type {
  BoxStore,
  CopiedBox,
  CopyOptions,
  CopyResult,
  GcOptions,
  LayerId,
  GcResult,
  LayerRef,
  NewLayerRef,
  OpenStoreOptions,
  PublishBoxRequest,
  PublishBoxResult,
  PublishStage,
  RefFilter,
} from './types.ts';
import { isBoxVersion, nextVersion } from './version.ts';

type VersionEntry = Parameters<typeof withProvider>[1];

function entryOf(version: CatalogVersion): VersionEntry {
  const { key, layer, profile, createdAt } = version.boxcar;
  return {
    version: version.version,
    ...(version.status !== undefined && { status: version.status }),
    ...(version.description !== undefined && { description: version.description }),
    boxcar: { key, layer, profile, createdAt },
  };
}

async function dirEntries(dir: string): Promise<{ name: string; isDir: boolean }[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.map((e) => ({ name: e.name, isDir: e.isDirectory() })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  }
}

interface Install {
  name: string;
  version: string;
  provider: string;
  input: Readable;
  expected?: Expected;
  catalog: Catalog;
  entry: VersionEntry;
}

export class FileStore extends BaseStore {
  readonly writable = true;
  readonly publicUrl: string;

  constructor(
    readonly url: string,
    readonly root: string,
    options: OpenStoreOptions,
    openDefaultStore: () => BoxStore,
  ) {
    super(options, openDefaultStore);
    this.publicUrl = options.publicUrl ?? url;
  }

  locate(relative: string): string {
    return join(this.root, ...relative.split('/'));
  }

  protected async readText(relative: string): Promise<string | undefined> {
    try {
      return await readFile(this.locate(relative), 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  protected async openRaw(relative: string, expected?: Expected): Promise<RawBox> {
    const path = this.locate(relative);
    const handle = await open(path, 'r').catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') throw new BoxStoreError('corrupt', `${path} is missing although ${expected?.authority ?? 'its catalog'} lists it`, path);
      throw error;
    });
    const { size } = await handle.stat();
    return { stream: handle.createReadStream(), size };
  }

  /** Every box directory, with or without a catalog (gc also looks at the ones without). */
  protected async listBoxNames(): Promise<string[]> {
    const names: string[] = [];
    for (const org of await dirEntries(join(this.root, 'boxes'))) {
      if (!org.isDir) continue;
      for (const box of await dirEntries(join(this.root, 'boxes', org.name))) {
        const name = `${org.name}/${box.name}`;
        if (box.isDir && isBoxName(name)) names.push(name);
      }
    }
    return names;
  }

  private async withLock<T>(purpose: string, fn: () => Promise<T>): Promise<T> {
    await this.refuseServedPrivateKey();
    await mkdir(this.root, { recursive: true });
    return withStoreLock(this.root, purpose, fn, this.options.lock);
  }

  /**
   * Every write into a store that a web server serves to other hosts (its public URL is http(s) and not
   * loopback) is refused while the store still holds the private key an older boxcar kept in it: that
   * key opens every fresh box with passwordless sudo, and whoever reads the boxes would read it too.
   */
  private async refuseServedPrivateKey(): Promise<void> {
    const served = /^https?:\/\/([^/:]+|\[[^\]]+\])/.exec(this.publicUrl)?.[1];
    if (served === undefined || /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i.test(served)) return;
    const key = this.locate(LEGACY_BOOTSTRAP_KEY);
    if (await pathExists(key)) {
      throw new BoxStoreError(
        'conflict',
        `store ${this.root} holds a private key (${key}, the bootstrap key older bakes kept in the store) and is served at ${this.publicUrl}: ` +
          `boxcar never serves a private key; remove ${dirname(key)} (bakes now keep the key with the baker, and the store needs none)`,
        key,
      );
    }
  }

  private async stage(stage: PublishStage, path: string): Promise<void> {
    await this.options.onPublishStage?.(stage, path);
  }

  /** index.json lists boxes and layers for readers that cannot list directories (http). */
  private async writeIndex(): Promise<void> {
    const layers: StoreIndex['layers'] = {};
    for (const [group, found] of await this.layerGroups(async () => undefined)) {
      layers[group] = found.map((m) => ({ key: m.key, createdAt: m.createdAt }));
    }
    const index: StoreIndex = { boxes: await this.listBoxNames(), layers };
    await atomicWriteFile(join(this.root, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
    await fsyncDir(this.root);
  }

  /**
   * Puts one provider's box in place and commits it to the catalog; caller holds the lock. The catalog
   * rename is the commit point: everything before it is undone on failure.
   */
  private async installBox(install: Install): Promise<{ url: string; sha256: string; size: number }> {
    const { name, version, provider } = install;
    const dir = this.locate(versionDir(name, version));
    const createdDir = !(await pathExists(dir));
    await mkdir(dir, { recursive: true });
    const temp = tempPathIn(dir);
    const final = this.locate(boxPath(name, version, provider));
    let placed = false;
    let committed = false;
    try {
      const digest = await writeStreamVerified(install.input, temp, install.expected);
      await this.stage('box-copied', temp);
      await rename(temp, final);
      placed = true;
      await fsyncDir(dir);
      await this.stage('box-renamed', final);
      const url = this.boxUrl(name, version, provider);
      const catalog = withProvider(install.catalog, install.entry, { name: provider, url, checksum_type: 'sha256', checksum: digest.sha256 }, digest.size);
      await this.writeIndex();
      await atomicWriteFile(this.locate(catalogPath(name)), serializeCatalog(catalog));
      committed = true;
      await fsyncDir(this.locate(boxDir(name)));
      return { url, ...digest };
    } catch (error) {
      if (!committed) {
        await removeQuietly(temp);
        if (placed) await removeQuietly(final);
        if (createdDir) await removeQuietly(dir);
      }
      throw error;
    }
  }

  async publishBox(request: PublishBoxRequest): Promise<PublishBoxResult> {
    const boxName = checkBoxName('boxName', request.boxName);
    const provider = checkProvider('provider', request.provider);
    const key = checkSegment('key', request.key);
    const layer = checkSegment('layer', request.layer);
    const profile = checkSegment('profile', request.profile);
    if (typeof request.description !== 'string') throw new BoxStoreError('invalid-argument', 'description must be a string');
    const date = request.date ?? new Date();
    const source = await stat(request.boxFile).catch((error: unknown) => {
      throw new BoxStoreError('invalid-argument', `boxFile ${request.boxFile}: ${(error as Error).message}`, request.boxFile, { cause: error });
    });
    if (!source.isFile()) throw new BoxStoreError('invalid-argument', `boxFile ${request.boxFile} is not a regular file`, request.boxFile);

    return this.withLock(`publish ${boxName} ${provider} (key ${key})`, async () => {
      const catalog = (await this.readCatalogIfExists(boxName)) ?? emptyCatalog(boxName, request.description);
      const same = findVersionByKey(catalog, key);
      const present = same?.providers.find((p) => p.name === provider);
      if (same && present) {
        return { version: same.version, url: present.url, sha256: present.checksum, size: same.boxcar.sizes[provider] ?? 0, created: false };
      }
      const onDisk = (await dirEntries(this.locate(boxDir(boxName)))).map((e) => e.name).filter(isBoxVersion);
      const version = same?.version ?? nextVersion([...catalog.versions.map((v) => v.version), ...onDisk], date, request.major);
      const entry: VersionEntry = same
        ? entryOf(same)
        : {
            version,
            status: 'active',
            ...(request.versionDescription !== undefined && { description: request.versionDescription }),
            boxcar: { key, layer, profile, createdAt: date.toISOString() },
          };
      const installed = await this.installBox({
        name: boxName,
        version,
        provider,
        input: createReadStream(request.boxFile),
        catalog: { ...catalog, description: request.description },
        entry,
      });
      return { version, ...installed, created: true };
    });
  }

  async publishLayer(profile: string, layer: string, key: string, srcDir: string, meta: Record<string, unknown>): Promise<LayerManifest> {
    checkSegment('profile', profile);
    checkSegment('layer', layer);
    checkSegment('key', key);
    let metaJson: Record<string, unknown>;
    try {
      metaJson = JSON.parse(JSON.stringify(meta)) as Record<string, unknown>;
    } catch (error) {
      throw new BoxStoreError('invalid-argument', `meta must be serializable as JSON: ${(error as Error).message}`);
    }
    if (typeof metaJson !== 'object' || metaJson === null || Array.isArray(metaJson)) throw new BoxStoreError('invalid-argument', 'meta must be a JSON object');
    const files = await listSourceFiles(srcDir);

    return this.withLock(`publish layer ${profile}/${layer} (key ${key})`, async () => {
      const existing = await this.readLayer(profile, layer, key);
      if (existing) return existing;
      return this.installLayer(
        { profile, layer, key },
        files.map((path) => ({ path, open: async () => ({ input: openSourceFile(srcDir, path) }) })),
        (entries) => ({ profile, layer, key, createdAt: new Date().toISOString(), meta: metaJson, files: entries }),
      );
    });
  }

  /**
   * Writes a layer directory under a temp name (every file verified, `expected` too when given), then
   * its manifest, and renames it into place; caller holds the lock and has checked it is not there.
   */
  private async installLayer(
    id: LayerId,
    files: { path: string; open: () => Promise<{ input: Readable; expected?: Expected }> }[],
    manifestFor: (entries: LayerFile[]) => LayerManifest,
  ): Promise<LayerManifest> {
    const final = this.locate(layerDir(id.profile, id.layer, id.key));
    if (await pathExists(final)) throw new BoxStoreError('conflict', `${final} exists without ${LAYER_MANIFEST}: not written by boxcar; remove it`, final);
    const parent = dirname(final);
    await mkdir(parent, { recursive: true });
    const temp = tempPathIn(parent);
    try {
      await mkdir(temp);
      const entries: LayerFile[] = [];
      const dirs = new Set([temp]);
      for (const file of files) {
        const dest = join(temp, ...file.path.split('/'));
        await mkdir(dirname(dest), { recursive: true });
        dirs.add(dirname(dest));
        const { input, expected } = await file.open();
        entries.push({ path: file.path, ...(await writeStreamVerified(input, dest, expected)) });
      }
      const manifest = manifestFor(entries);
      await atomicWriteFile(join(temp, LAYER_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
      for (const dir of dirs) await fsyncDir(dir);
      await this.stage('layer-copied', temp);
      await rename(temp, final);
      await fsyncDir(parent);
      await this.writeIndex();
      return manifest;
    } catch (error) {
      await removeQuietly(temp);
      throw error;
    }
  }

  /**
   * The layer a box version was baked from, copied from `source` (its manifest kept as it is, so that
   * readers and caches see the same layer.json) or, when already here, checked to hold the same files
   * and verified on disk: a damaged copy is refused, never taken for a good one.
   */
  private async importLayer(source: BaseStore, id: LayerId): Promise<'copied' | 'present' | 'missing'> {
    const manifest = await source.readLayer(id.profile, id.layer, id.key);
    if (!manifest) return 'missing';
    return this.withLock(`copy layer ${id.profile}/${id.layer} (key ${id.key}) from ${source.url}`, async () => {
      const here = this.locate(layerManifestPath(id.profile, id.layer, id.key));
      const existing = await this.readLayer(id.profile, id.layer, id.key);
      if (existing) {
        const files = (m: LayerManifest) => JSON.stringify([...m.files].sort((a, b) => a.path.localeCompare(b.path)));
        if (files(existing) !== files(manifest)) {
          throw new BoxStoreError(
            'conflict',
            `layer ${id.profile}/${id.layer} ${id.key} holds other files in ${here} than in ${source.locate(layerManifestPath(id.profile, id.layer, id.key))}: a key is never reused for other content`,
            here,
          );
        }
        await verifyLayerDir(this.locate(layerDir(id.profile, id.layer, id.key)), existing, here);
        return 'present';
      }
      await this.installLayer(
        id,
        manifest.files.map((file) => ({
          path: file.path,
          open: async () => {
            const { raw, expected } = await source.openLayerFileChecked(manifest, file);
            return { input: raw.stream, expected };
          },
        })),
        () => manifest,
      );
      return 'copied';
    });
  }

  async layerFiles(profile: string, layer: string, key: string): Promise<string> {
    const manifest = await this.requireLayer(profile, layer, key);
    const dir = this.locate(layerDir(profile, layer, key));
    await verifyLayerDir(dir, manifest, this.locate(layerManifestPath(profile, layer, key)));
    return dir;
  }

  async importFrom(source: BaseStore, options: CopyOptions): Promise<CopyResult> {
    const names = options.boxes?.map((n) => checkBoxName('boxes[]', n)) ?? (await source.listBoxes()).map((b) => b.name);
    const result: CopyResult = { copied: [], present: [], layers: { copied: [], present: [], missing: [] } };
    const layersDone = new Set<string>();
    for (const name of names) {
      const catalog = await source.readCatalog(name);
      const missing = (options.versions ?? []).filter((v) => !findVersion(catalog, v));
      if (missing.length > 0) {
        const where = source.locate(catalogPath(name));
        throw new BoxStoreError('not-found', `box ${name} has no version ${missing.join(', ')} in ${where}`, where);
      }
      const versions = options.versions ? catalog.versions.filter((v) => options.versions?.includes(v.version)) : catalog.versions;
      for (const version of versions) {
        // The layer first: a box the target's catalog lists always finds its layer there.
        const id = { profile: version.boxcar.profile, layer: version.boxcar.layer, key: version.boxcar.key };
        if (!layersDone.has(layerId(id))) {
          layersDone.add(layerId(id));
          result.layers[await this.importLayer(source, id)].push(id);
        }
        for (const { name: provider } of version.providers) {
          const outcome = await this.withLock(`copy ${name} ${version.version} ${provider} from ${source.url}`, () =>
            this.importOne(source, catalog, version, provider),
          );
          result[outcome.kind].push(outcome.box);
        }
      }
    }
    return result;
  }

  private async importOne(
    source: BaseStore,
    sourceCatalog: Catalog,
    version: CatalogVersion,
    provider: string,
  ): Promise<{ kind: 'copied' | 'present'; box: CopiedBox }> {
    const name = sourceCatalog.name;
    const box = { name, version: version.version, provider };
    const catalog = (await this.readCatalogIfExists(name)) ?? emptyCatalog(name, sourceCatalog.description);
    const there = findVersion(catalog, version.version);
    if (there && there.boxcar.key !== version.boxcar.key) {
      throw new BoxStoreError(
        'conflict',
        `box ${name} ${version.version} has key ${there.boxcar.key} in ${this.url} but ${version.boxcar.key} in ${source.url}: ` +
          'a version is never reused for other content',
        this.locate(catalogPath(name)),
      );
    }
    const present = there?.providers.find((p) => p.name === provider);
    const wanted = version.providers.find((p) => p.name === provider);
    if (present && wanted) {
      if (present.checksum !== wanted.checksum) {
        throw new BoxStoreError(
          'conflict',
          `box ${name} ${version.version} ${provider} differs between ${this.url} and ${source.url} (sha256 ${present.checksum} vs ${wanted.checksum})`,
          this.locate(catalogPath(name)),
        );
      }
      return { kind: 'present', box: { ...box, url: present.url } };
    }
    const { raw, expected } = await source.openBoxChecked(name, version.version, provider);
    const installed = await this.installBox({ ...box, input: raw.stream, expected, catalog, entry: there ? entryOf(there) : entryOf(version) });
    return { kind: 'copied', box: { ...box, url: installed.url } };
  }

  async gc(options: GcOptions): Promise<GcResult> {
    const { keep, dryRun = false } = options;
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new BoxStoreError('invalid-argument', `keep must be an integer of at least 1 (got ${JSON.stringify(keep)})`);
    }
    return this.collect(keep, dryRun, dryRun ? 'gc (dry run)' : 'gc');
  }

  async sweepIncomplete(): Promise<string[]> {
    // Keeping every version and layer leaves exactly what no catalog or layer.json has committed.
    return (await this.collect(Infinity, false, 'sweep leftovers of interrupted writes')).paths;
  }

  async addRef(ref: NewLayerRef): Promise<LayerRef> {
    return this.withLock(`reference of ${ref.cluster}/${ref.node} to layer ${ref.profile}/${ref.layer}`, async () => {
      // Under the lock: a gc that removed the layer has finished, and a later one sees the reference.
      await this.requireLayer(ref.profile, ref.layer, ref.key);
      return writeRef(this.root, ref);
    });
  }

  listRefs(): Promise<LayerRef[]> {
    return readRefs(this.root);
  }

  dropRefs(filter: RefFilter): Promise<LayerRef[]> {
    return this.withLock(`drop references of cluster ${filter.cluster}`, () => removeRefs(this.root, filter));
  }

  /** gc's work under the lock; `keep` may be Infinity (then references do not matter, and are not read). */
  private collect(keep: number, dryRun: boolean, purpose: string): Promise<GcResult> {
    return this.withLock(purpose, async () => {
      const result: GcResult = { boxVersions: [], layers: [], kept: [], paths: [] };
      const users = new Map<string, LayerRef[]>();
      for (const ref of Number.isFinite(keep) ? await readRefs(this.root) : []) users.set(layerId(ref), [...(users.get(layerId(ref)) ?? []), ref]);
      // Renamed to a temp name first so that a half-deleted directory never looks like a complete one.
      const remove = async (path: string): Promise<void> => {
        result.paths.push(path);
        if (dryRun) return;
        const base = path.slice(dirname(path).length + 1);
        if (base.startsWith(TEMP_PREFIX)) return removeQuietly(path);
        const aside = tempPathIn(dirname(path), 'gc');
        await rename(path, aside);
        await removeQuietly(aside);
      };
      const referenced = new Set<string>();
      for (const name of await this.listBoxNames()) {
        await this.gcBox(name, keep, dryRun, remove, referenced, users, result);
      }
      await this.gcLayers(keep, remove, referenced, users, result);
      if (!dryRun) await this.writeIndex();
      return result;
    });
  }

  private async gcBox(
    name: string,
    keep: number,
    dryRun: boolean,
    remove: (path: string) => Promise<void>,
    referenced: Set<string>,
    users: ReadonlyMap<string, LayerRef[]>,
    result: GcResult,
  ): Promise<void> {
    const dir = this.locate(boxDir(name));
    // An invalid catalog stops gc: deleting on a guess could lose boxes.
    const catalog = await this.readCatalogIfExists(name);
    const newest = catalog ? newestFirst(catalog).slice(0, keep) : [];
    for (const v of newest) referenced.add(layerId(v.boxcar));
    // Versions a running cluster was built from stay as well: the nodes run on their layer.
    const used = catalog ? newestFirst(catalog).filter((v) => !newest.includes(v) && users.has(layerId(v.boxcar))) : [];
    for (const v of used) {
      const usedBy = users.get(layerId(v.boxcar))!;
      const { profile, layer, key } = v.boxcar;
      result.kept.push({ box: { name, version: v.version }, profile, layer, key, reason: describeUsers(usedBy), usedBy });
    }
    const kept = [...newest, ...used];
    const dropped = new Set((catalog?.versions ?? []).map((v) => v.version).filter((v) => !kept.some((k) => k.version === v)));
    if (catalog && dropped.size > 0) {
      result.boxVersions.push(...[...dropped].map((version) => ({ name, version })));
      // Catalog first: it never lists a box that is gone; a crash afterwards leaves only orphans for the next gc.
      if (!dryRun) {
        await atomicWriteFile(this.locate(catalogPath(name)), serializeCatalog(withoutVersions(catalog, dropped)));
        await fsyncDir(dir);
      }
    }
    for (const entry of await dirEntries(dir)) {
      const path = join(dir, entry.name);
      const keptVersion = kept.find((v) => v.version === entry.name);
      if (entry.name.startsWith(TEMP_PREFIX) || (entry.isDir && isBoxVersion(entry.name) && !keptVersion)) await remove(path);
      else if (keptVersion) {
        const listed = new Set(keptVersion.providers.map((p) => `${p.name}.box`));
        for (const file of await dirEntries(path)) if (!listed.has(file.name)) await remove(join(path, file.name));
      }
    }
  }

  /**
   * Every published layer, grouped by "<profile>/<layer>" (in directory order); `onTemp` gets each
   * leftover temp entry on the way.
   */
  private async layerGroups(onTemp: (path: string) => Promise<void>): Promise<Map<string, LayerManifest[]>> {
    const groups = new Map<string, LayerManifest[]>();
    const layersRoot = join(this.root, 'layers');
    for (const profile of await dirEntries(layersRoot)) {
      if (profile.name.startsWith(TEMP_PREFIX)) await onTemp(join(layersRoot, profile.name));
      if (!profile.isDir || !isSegment(profile.name)) continue;
      for (const layer of await dirEntries(join(layersRoot, profile.name))) {
        const layerRoot = join(layersRoot, profile.name, layer.name);
        if (layer.name.startsWith(TEMP_PREFIX)) await onTemp(layerRoot);
        if (!layer.isDir || !isSegment(layer.name)) continue;
        const found: LayerManifest[] = [];
        for (const entry of await dirEntries(layerRoot)) {
          if (entry.name.startsWith(TEMP_PREFIX)) await onTemp(join(layerRoot, entry.name));
          else if (entry.isDir && isSegment(entry.name)) {
            const manifest = await this.readLayer(profile.name, layer.name, entry.name);
            if (manifest) found.push(manifest);
          }
        }
        if (found.length > 0) groups.set(`${profile.name}/${layer.name}`, found);
      }
    }
    return groups;
  }

  async latestLayer(profile: string, layer: string): Promise<LayerManifest | undefined> {
    const group = (await this.layerGroups(async () => undefined)).get(`${checkSegment('profile', profile)}/${checkSegment('layer', layer)}`);
    return group && newestLayers(group)[0];
  }

  private async gcLayers(
    keep: number,
    remove: (path: string) => Promise<void>,
    referenced: Set<string>,
    users: ReadonlyMap<string, LayerRef[]>,
    result: GcResult,
  ): Promise<void> {
    for (const found of (await this.layerGroups(remove)).values()) {
      const newest = newestLayers(found).slice(0, keep);
      for (const m of found) {
        if (newest.includes(m) || referenced.has(layerId(m))) continue;
        const usedBy = users.get(layerId(m));
        if (usedBy) {
          result.kept.push({ profile: m.profile, layer: m.layer, key: m.key, reason: describeUsers(usedBy), usedBy });
          continue;
        }
        result.layers.push({ profile: m.profile, layer: m.layer, key: m.key });
        await remove(this.locate(layerDir(m.profile, m.layer, m.key)));
      }
    }
  }
}
