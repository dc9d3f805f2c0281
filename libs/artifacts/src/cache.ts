// The content-addressed artifact cache: <cache>/sha256/<sha256>/<filename>.

import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { sha256File, unlessMissing } from '@boxcar/kit';
import { artifactFilename, type ArtifactEntry } from './lock.ts';

/** $BOXCAR_ARTIFACT_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/boxcar/artifacts. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BOXCAR_ARTIFACT_CACHE !== undefined && env.BOXCAR_ARTIFACT_CACHE !== '') return env.BOXCAR_ARTIFACT_CACHE;
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'boxcar', 'artifacts');
}

/** The cacheDir option when given, else defaultCacheDir. */
export function resolveCacheDir(cacheDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  return cacheDir !== undefined && cacheDir !== '' ? cacheDir : defaultCacheDir(env);
}

/** Where the entry lives in the cache, whether or not it is there. */
export function cacheFilePath(entry: ArtifactEntry, cacheDir: string): string {
  return join(cacheDir, 'sha256', entry.sha256, artifactFilename(entry));
}

/**
 * The cached file of the entry, or undefined when it is absent or has the wrong size.
 * The size check is cheap; `verifySha256` re-reads the whole file.
 */
export async function cachedPath(entry: ArtifactEntry, cacheDir: string, options: { verifySha256?: boolean } = {}): Promise<string | undefined> {
  const path = cacheFilePath(entry, cacheDir);
  const stats = await unlessMissing(path, stat(path), undefined);
  if (stats === undefined || !stats.isFile() || (entry.size !== undefined && stats.size !== entry.size)) return undefined;
  if (options.verifySha256 === true && (await sha256File(path)).sha256 !== entry.sha256) return undefined;
  return path;
}
