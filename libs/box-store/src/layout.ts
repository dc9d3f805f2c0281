// Where things live inside a store, as paths relative to its root (joined to a directory or a base URL).

export const CATALOG_FILE = 'metadata.json';
export const LAYER_MANIFEST = 'layer.json';
export const INDEX_FILE = 'index.json';
export const LOCK_FILE = '.lock';
/** References of the clusters that run on the store's layers: refs/<host>/<cluster>/<node>.json. */
export const REFS_DIR = 'refs';
/** Private key of the bootstrap key pair (its public key sits beside it as `.pub`). */
export const BOOTSTRAP_KEY = 'keys/bootstrap_ed25519';
export const BOOTSTRAP_KEY_COMMENT = 'boxcar-bootstrap-key';

export const boxDir = (name: string): string => `boxes/${name}`;
export const catalogPath = (name: string): string => `boxes/${name}/${CATALOG_FILE}`;
export const versionDir = (name: string, version: string): string => `boxes/${name}/${version}`;
export const boxPath = (name: string, version: string, provider: string): string => `boxes/${name}/${version}/${provider}.box`;
export const layerDir = (profile: string, layer: string, key: string): string => `layers/${profile}/${layer}/${key}`;
export const layerManifestPath = (profile: string, layer: string, key: string): string =>
  `${layerDir(profile, layer, key)}/${LAYER_MANIFEST}`;

/** Joins a store URL (no trailing slash) and a relative path made of URL-safe segments. */
export function joinUrl(base: string, relative: string): string {
  return `${base}/${relative}`;
}
