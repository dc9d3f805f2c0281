// Store addresses: file:///abs/path (read/write) or http(s)://host/base (read only).
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BoxStoreError } from './errors.ts';

export type StoreLocation =
  | { kind: 'file'; url: string; root: string }
  | { kind: 'http'; url: string };

const ALLOWED = 'file:///absolute/path, http(s)://host/base, or an absolute path';

/** `${XDG_CACHE_HOME:-~/.cache}/boxcar`; a relative XDG_CACHE_HOME is ignored, as the XDG spec says. */
export function boxcarCacheHome(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'boxcar');
}

/** `$BOXCAR_STORE` when set, else file:// of `${XDG_CACHE_HOME:-~/.cache}/boxcar/store`. */
export function defaultStoreUrl(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.BOXCAR_STORE?.trim();
  if (override) return parseStoreUrl(override, 'BOXCAR_STORE').url;
  return pathToFileURL(join(boxcarCacheHome(env), 'store')).href;
}

function stripTrailingSlashes(text: string): string {
  return text.replace(/\/+$/, '');
}

/** Normalizes a store address; `field` names where it came from in errors. */
export function parseStoreUrl(text: string, field = 'store URL'): StoreLocation {
  if (isAbsolute(text)) {
    const root = resolve(text);
    return { kind: 'file', root, url: stripTrailingSlashes(pathToFileURL(root).href) };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BoxStoreError('invalid-argument', `${field} must be ${ALLOWED} (got ${JSON.stringify(text)})`);
  }
  if (url.protocol === 'file:') {
    let root: string;
    try {
      root = resolve(fileURLToPath(url));
    } catch (error) {
      throw new BoxStoreError('invalid-argument', `${field} ${JSON.stringify(text)}: ${(error as Error).message}; use ${ALLOWED}`);
    }
    return { kind: 'file', root, url: stripTrailingSlashes(pathToFileURL(root).href) };
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (url.search || url.hash) throw new BoxStoreError('invalid-argument', `${field} must not have a query or fragment (got ${JSON.stringify(text)})`);
    return { kind: 'http', url: stripTrailingSlashes(url.href) };
  }
  throw new BoxStoreError('invalid-argument', `${field} must be ${ALLOWED} (got ${JSON.stringify(text)})`);
}
