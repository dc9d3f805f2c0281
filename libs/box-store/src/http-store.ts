// A store read over http(s) from any static web server that serves a store directory. Read only.
import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  atomicWriteFile,
  BodyTooLargeError,
  ConnectionLostError,
  DeadlineExceededError,
  DEFAULT_MAX_TEXT_BYTES,
  fsyncDir,
  httpGet,
  httpGetText,
  HttpStatusError,
  IdleTimeoutError,
  SizeMismatchError,
  tempPathIn,
  type HttpGetOptions,
  type HttpGetResponse,
} from '@boxcar/kit';
import { BaseStore } from './base-store.ts';
import { DEFAULT_STALE_TEMP_MS, sweepStaleTemps } from './cache-sweep.ts';
import type { RawBox } from './base-store.ts';
import { BoxStoreError, errorCode } from './errors.ts';
import { refuseHostReferences, verifyLayerDir } from './layer-files.ts';
import type { LayerManifest } from './layer-manifest.ts';
import { newestLayers } from './layer-manifest.ts';
import type { StoreIndex } from './store-index.ts';
import { parseStoreIndex } from './store-index.ts';
import { INDEX_FILE, joinUrl, LAYER_MANIFEST, layerDir, layerManifestPath } from './layout.ts';
import { withStoreLock } from './lock.ts';
import { checkSegment } from './names.ts';
import { describeUsers, layerId, readRefs, removeRefs, writeRef } from './refs.ts';
import type { BoxStore, CopyResult, GcResult, LayerRef, NewLayerRef, OpenStoreOptions, PublishBoxResult, RefFilter } from './types.ts';
import { mismatch, removeQuietly, writeStreamVerified, type Expected } from './verify.ts';

function isMissing(error: unknown): boolean {
  return error instanceof HttpStatusError && (error.status === 404 || error.status === 410);
}

/** A body the client cut short (its errors name the URL); file system errors are not. */
function cutShort(error: unknown): boolean {
  return [SizeMismatchError, BodyTooLargeError, DeadlineExceededError, IdleTimeoutError, ConnectionLostError].some((type) => error instanceof type);
}

/**
 * A failed GET as BoxStoreError naming the URL: a size announced against the catalog or manifest is
 * `corrupt`, like a wrong digest; the rest (status, cap, deadline, redirect, connection) is `http`.
 */
function storeError(error: unknown, url: string, expected?: Expected): BoxStoreError {
  if (error instanceof BoxStoreError) return error;
  if (expected && error instanceof SizeMismatchError && error.actualSize !== undefined) {
    const problem = mismatch(expected, { sha256: '', size: error.actualSize });
    if (problem) return problem;
  }
  const message = (error as Error).message;
  // The client's own errors name the URL already.
  const reason = error instanceof HttpStatusError ? `GET ${url}: HTTP ${error.status} ${error.statusText ?? ''}`.trim() : message.includes(url) ? message : `GET ${url}: ${message}`;
  return new BoxStoreError('http', reason, url, { cause: error });
}

export class HttpStore extends BaseStore {
  readonly writable = false;
  readonly publicUrl: string;

  constructor(
    readonly url: string,
    /** Where downloaded layers are kept, by profile/layer/key. */
    readonly cacheDir: string,
    options: OpenStoreOptions,
    openDefaultStore: () => BoxStore,
  ) {
    super(options, openDefaultStore);
    this.publicUrl = options.publicUrl ?? url;
  }

  locate(relative: string): string {
    return joinUrl(this.url, relative);
  }

  private swept: Promise<void> | undefined;

  /** Once per store object, when the cache is first used: removes `.tmp-` leftovers of interrupted downloads. */
  private openCache(): Promise<void> {
    // Best effort: a leftover that cannot be removed now is retried by the next process.
    this.swept ??= sweepStaleTemps(this.cacheDir, this.options.http?.staleTempMs ?? DEFAULT_STALE_TEMP_MS).then(
      () => undefined,
      () => undefined,
    );
    return this.swept;
  }

  /** Deadline, idle timeout and CA of every request of this store. */
  private requestOptions(): HttpGetOptions {
    const limits = this.options.http ?? {};
    return {
      ...(limits.deadline !== undefined && { deadlinePolicy: limits.deadline }),
      ...(limits.idleTimeoutMs !== undefined && { idleTimeoutMs: limits.idleTimeoutMs }),
      ...(limits.ca !== undefined && { ca: limits.ca }),
    };
  }

  /** GET of a box or layer file, held to the size `expected` records (the body stops past it). */
  private async get(url: string, expected?: Expected): Promise<HttpGetResponse> {
    try {
      return await httpGet(url, { ...this.requestOptions(), ...(expected?.size !== undefined && { expectedSize: expected.size }) });
    } catch (error) {
      if (isMissing(error)) throw new BoxStoreError('not-found', `GET ${url}: not found (HTTP 404)`, url);
      throw storeError(error, url, expected);
    }
  }

  private readOnly(): BoxStoreError {
    return new BoxStoreError('read-only', `http stores are read-only; publish to a file:// store and serve it (store: ${this.url})`, this.url);
  }

  /** index.json, catalogs, manifests and keys: read whole, so capped (maxTextBytes). */
  protected async readText(relative: string): Promise<string | undefined> {
    const url = this.locate(relative);
    try {
      return await httpGetText(url, { ...this.requestOptions(), maxBytes: this.options.http?.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES });
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw storeError(error, url);
    }
  }

  protected async openRaw(relative: string, expected?: Expected): Promise<RawBox> {
    const response = await this.get(this.locate(relative), expected);
    return { stream: response.body, ...(response.totalBytes !== undefined && { size: response.totalBytes }) };
  }

  private async readIndex(): Promise<StoreIndex> {
    const where = this.locate(INDEX_FILE);
    const text = await this.readText(INDEX_FILE);
    if (text === undefined) throw new BoxStoreError('not-found', `${where} not found: is ${this.url} a boxcar store?`, where);
    return parseStoreIndex(text, where);
  }

  protected async listBoxNames(): Promise<string[]> {
    return (await this.readIndex()).boxes;
  }

  async latestLayer(profile: string, layer: string): Promise<LayerManifest | undefined> {
    const group = (await this.readIndex()).layers[`${checkSegment('profile', profile)}/${checkSegment('layer', layer)}`];
    const newest = group && newestLayers(group)[0];
    return newest && this.readLayer(profile, layer, newest.key);
  }

  /** Downloads the layer once into the cache (verified, then renamed into place); later calls re-verify the copy. */
  async layerFiles(profile: string, layer: string, key: string): Promise<string> {
    const manifest = await this.requireLayer(profile, layer, key);
    await this.openCache();
    const local = join(this.cacheDir, ...layerDir(profile, layer, key).split('/'));
    const localManifest = join(local, LAYER_MANIFEST);
    const cached = await readFile(localManifest, 'utf8').catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    });
    if (cached !== undefined) {
      if (cached === JSON.stringify(manifest)) {
        await verifyLayerDir(local, manifest, localManifest);
        return local;
      }
      // Same key, different manifest: the cache predates a rebuilt store; fetch again, unless nodes run on the copy.
      await this.withCacheLock(`refresh cached layer ${profile}/${layer}/${key}`, async () => {
        const usedBy = (await readRefs(this.cacheDir)).filter((ref) => layerId(ref) === layerId(manifest));
        if (usedBy.length > 0) {
          throw new BoxStoreError(
            'conflict',
            `layer ${profile}/${layer} ${key} in the cache ${local} differs from ${this.locate(layerManifestPath(profile, layer, key))}, ` +
              `but it is ${describeUsers(usedBy)}: take those nodes down first (cluster down, or node down <node>), or drop dead references (boxcar images refs --drop <cluster>)`,
            local,
          );
        }
        await removeQuietly(local);
      });
    }
    await this.download(manifest, local, localManifest);
    return local;
  }

  private async download(manifest: LayerManifest, local: string, localManifest: string): Promise<void> {
    const { profile, layer, key } = manifest;
    const parent = dirname(local);
    await mkdir(parent, { recursive: true });
    const temp = tempPathIn(parent);
    try {
      await mkdir(temp);
      const authority = this.locate(layerManifestPath(profile, layer, key));
      for (const file of manifest.files) {
        const dest = join(temp, ...file.path.split('/'));
        await mkdir(dirname(dest), { recursive: true });
        const url = joinUrl(this.url, `${layerDir(profile, layer, key)}/${file.path}`);
        const expected: Expected = { sha256: file.sha256, size: file.size, source: url, authority };
        // The body stops at the manifest's size, and the request at a deadline scaled by it.
        await writeStreamVerified((await this.get(url, expected)).body, dest, expected).catch((error: unknown) => {
          throw cutShort(error) ? storeError(error, url, expected) : error;
        });
        await refuseHostReferences(dest, url, authority);
      }
      await atomicWriteFile(join(temp, LAYER_MANIFEST), JSON.stringify(manifest));
      await rename(temp, local).catch(async (error: unknown) => {
        // Another process filled the cache first: keep its copy.
        if (errorCode(error) !== 'ENOTEMPTY' && errorCode(error) !== 'EEXIST') throw error;
        await removeQuietly(temp);
        await verifyLayerDir(local, manifest, localManifest);
      });
      await fsyncDir(parent);
    } catch (error) {
      await removeQuietly(temp);
      throw error;
    }
  }

  /** The cache's own lock: several processes of this machine share the cache. */
  private async withCacheLock<T>(purpose: string, fn: () => Promise<T>): Promise<T> {
    await mkdir(this.cacheDir, { recursive: true });
    return withStoreLock(this.cacheDir, purpose, fn, this.options.lock);
  }

  async addRef(ref: NewLayerRef): Promise<LayerRef> {
    await this.requireLayer(ref.profile, ref.layer, ref.key);
    return this.withCacheLock(`reference of ${ref.cluster}/${ref.node} to layer ${ref.profile}/${ref.layer}`, () => writeRef(this.cacheDir, ref));
  }

  listRefs(): Promise<LayerRef[]> {
    return readRefs(this.cacheDir);
  }

  dropRefs(filter: RefFilter): Promise<LayerRef[]> {
    return this.withCacheLock(`drop references of cluster ${filter.cluster}`, () => removeRefs(this.cacheDir, filter));
  }

  publishLayer(): Promise<LayerManifest> {
    return Promise.reject(this.readOnly());
  }

  publishBox(): Promise<PublishBoxResult> {
    return Promise.reject(this.readOnly());
  }

  gc(): Promise<GcResult> {
    return Promise.reject(this.readOnly());
  }

  sweepIncomplete(): Promise<string[]> {
    return Promise.reject(this.readOnly());
  }


  importFrom(): Promise<CopyResult> {
    return Promise.reject(this.readOnly());
  }
}
