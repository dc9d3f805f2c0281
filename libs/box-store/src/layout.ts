// Where things live inside a store, as paths relative to its root (joined to a directory or a base URL).

export const CATALOG_FILE = 'metadata.json';
export const LAYER_MANIFEST = 'layer.json';
export const INDEX_FILE = 'index.json';
export const LOCK_FILE = '.lock';
/**
 * Where boxcar before 2026-11-30 kept the bake's bootstrap private key. Nothing reads or writes it now
 * (the key lives with the baker); a store that still holds it must not be served (see FileStore).
 */
export const LEGACY_BOOTSTRAP_KEY = 'keys/bootstrap_ed25519';
/** References of the clusters that run on the store's layers: refs/<host>/<cluster>/<node>.json. */
export const REFS_DIR = 'refs';

export const boxDir = (name: string): string => `boxes/${name}`;
export const catalogPath = (name: string): string => `boxes/${name}/${CATALOG_FILE}`;
export const versionDir = (name: string, version: string): string => `boxes/${name}/${version}`;
export const boxPath = (name: string, version: string, provider: string): string => `boxes/${name}/${version}/${provider}.box`;
export const layerDir = (profile: string, layer: string, key: string): string => `layers/${profile}/${layer}/${key}`;
export const layerManifestPath = (profile: string, layer: string, key: string): string =>
  `${layerDir(profile, layer, key)}/${LAYER_MANIFEST}`;
export const layerFilePath = (profile: string, layer: string, key: string, path: string): string => `${layerDir(profile, layer, key)}/${path}`;

/** Joins a store URL (no trailing slash) and a relative path made of URL-safe segments. */
export function joinUrl(base: string, relative: string): string {
  return `${base}/${relative}`;
}
