import { join } from 'node:path';
import { FileStore } from './file-store.ts';
import { HttpStore } from './http-store.ts';
import { boxcarCacheHome, defaultStoreUrl, parseStoreUrl } from './store-url.ts';
import type { BoxStore, OpenStoreOptions } from './types.ts';

/**
 * Opens the store at `url` (default: `defaultStoreUrl()`): file:///abs/path (or an absolute path) for a
 * writable directory store, http(s)://host/base for a read-only one. Nothing is touched until used.
 */
export function openStore(url: string = defaultStoreUrl(), options: OpenStoreOptions = {}): BoxStore {
  const location = parseStoreUrl(url);
  const publicUrl = options.publicUrl === undefined ? undefined : parseStoreUrl(options.publicUrl, 'publicUrl').url;
  const resolved = { ...options, ...(publicUrl !== undefined && { publicUrl }) };
  const openDefault = (): BoxStore => openStore(defaultStoreUrl(), { ...(options.lock && { lock: options.lock }) });
  if (location.kind === 'file') return new FileStore(location.url, location.root, resolved, openDefault);
  return new HttpStore(location.url, options.cacheDir ?? join(boxcarCacheHome(), 'layer-cache'), resolved, openDefault);
}
