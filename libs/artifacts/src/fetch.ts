// Puts locked artifacts into the host cache, verified, and says where they are.

import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sha256File, SizeMismatchError } from '@boxcar/kit';
import { cacheFilePath, cachedPath, resolveCacheDir } from './cache.ts';
import { acquire, fileSize, sourceLabel, type RetryEvent, type RetryPolicy } from './download.ts';
import { ArtifactFetchError, ArtifactIntegrityError } from './errors.ts';
import { requirePinned, type ArtifactEntry, type LockEntry } from './lock.ts';
import { artifactSource, resolveMirror } from './mirror.ts';

export interface ProgressEvent {
  id: string;
  receivedBytes: number;
  totalBytes?: number;
}

export interface FetchOptions {
  /** Default: $BOXCAR_ARTIFACT_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/boxcar/artifacts. */
  cacheDir?: string;
  /** http(s):// or file:/// base (see README.md); default $BOXCAR_ARTIFACT_MIRROR. Replaces upstream when set. */
  mirror?: string;
  /** Attempts after the first; default 4. */
  retries?: number;
  /** First backoff delay, doubling per failed attempt; default 500. */
  backoffMs?: number;
  /** Upper bound of the backoff delay; default 30000. */
  maxBackoffMs?: number;
  /** Longest silence on a connection before the attempt fails; default 60000. */
  timeoutMs?: number;
  /** Re-hash a cached file before trusting it (otherwise only its size is checked). */
  verifyCached?: boolean;
  onProgress?: (event: ProgressEvent) => void;
  onRetry?: (event: RetryEvent) => void;
  signal?: AbortSignal;
  /** Where BOXCAR_ARTIFACT_CACHE, BOXCAR_ARTIFACT_MIRROR and XDG_CACHE_HOME are read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface FetchAllOptions extends FetchOptions {
  /** Downloads running at once; default 2. */
  concurrency?: number;
}

// Two fetches of the same cache file in one process would write the same .partial.
const inFlight = new Map<string, Promise<string>>();

/** The verified cache path of the entry, downloading it (or copying it from a file mirror) when absent. */
export async function fetchArtifact(lockEntry: LockEntry, options: FetchOptions = {}): Promise<string> {
  const entry = requirePinned(lockEntry);
  const cacheDir = resolveCacheDir(options.cacheDir, options.env);
  const finalPath = cacheFilePath(entry, cacheDir);
  const running = inFlight.get(finalPath);
  if (running !== undefined) return running;
  const fetching = fetchIntoCache(entry, cacheDir, finalPath, options).finally(() => inFlight.delete(finalPath));
  inFlight.set(finalPath, fetching);
  return fetching;
}

async function fetchIntoCache(entry: ArtifactEntry, cacheDir: string, finalPath: string, options: FetchOptions): Promise<string> {
  const hit = await cachedPath(entry, cacheDir, { verifySha256: options.verifyCached });
  if (hit !== undefined) return hit;
  const mirror = resolveMirror(options.mirror, options.env);
  if (entry.upstreamGone && mirror === undefined) {
    throw new ArtifactFetchError(
      entry.id,
      entry.url,
      0,
      false,
      `upstream ${entry.url} is gone (upstreamGone: true) and the file is not in the cache at ${finalPath}; ` +
        'set BOXCAR_ARTIFACT_MIRROR (or the mirror option) to a mirror that has it',
    );
  }
  const source = artifactSource(entry.url, mirror);
  const policy = retryPolicy(options);
  const partialPath = `${finalPath}.partial`;
  await mkdir(dirname(finalPath), { recursive: true });
  const expected = { sha256: entry.sha256, size: entry.size };
  for (let freshStart = false; ; freshStart = true) {
    const resumed = source.type === 'http' && (await fileSize(partialPath)) > 0;
    try {
      await acquire(
        {
          id: entry.id,
          source,
          partialPath,
          expectedSize: entry.size,
          onBytes: (receivedBytes) => options.onProgress?.({ id: entry.id, receivedBytes, totalBytes: entry.size }),
        },
        policy,
      );
    } catch (error) {
      if (error instanceof SizeMismatchError) {
        throw new ArtifactIntegrityError(entry.id, sourceLabel(source), expected, { size: error.actualSize });
      }
      throw error;
    }
    const actual = await sha256File(partialPath);
    if (actual.sha256 === entry.sha256 && (entry.size === undefined || actual.size === entry.size)) {
      await rename(partialPath, finalPath);
      return finalPath;
    }
    await rm(partialPath, { force: true });
    // Bytes kept from an earlier run may have come from a server with other content: one fresh try.
    if (!resumed || freshStart) throw new ArtifactIntegrityError(entry.id, sourceLabel(source), expected, actual);
  }
}

/** Fetches the entries, `concurrency` at a time; stops starting new ones after a failure. */
export async function fetchAll(entries: readonly LockEntry[], options: FetchAllOptions = {}): Promise<Map<string, string>> {
  // Every entry must be pinned before any download starts: a half-fetched set helps nobody.
  entries.forEach(requirePinned);
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  const paths = new Map<string, string>();
  const failures: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (failures.length === 0 && next < entries.length) {
      const entry = entries[next++] as LockEntry;
      try {
        paths.set(entry.id, await fetchArtifact(entry, options));
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, entries.length) }, worker));
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    const lines = failures.map((f) => `  ${f instanceof Error ? f.message : String(f)}`);
    throw new AggregateError(failures, `${failures.length} artifacts failed:\n${lines.join('\n')}`);
  }
  return new Map(entries.map((entry) => [entry.id, paths.get(entry.id) as string]));
}

export function retryPolicy(options: FetchOptions): RetryPolicy {
  const policy = {
    retries: options.retries ?? 4,
    backoffMs: options.backoffMs ?? 500,
    maxBackoffMs: options.maxBackoffMs ?? 30_000,
    idleTimeoutMs: options.timeoutMs ?? 60_000,
  };
  for (const [name, value] of Object.entries(policy)) {
    const minimum = name === 'idleTimeoutMs' ? 1 : 0;
    if (!Number.isFinite(value) || value < minimum || (name === 'retries' && !Number.isInteger(value))) {
      const option = name === 'idleTimeoutMs' ? 'timeoutMs' : name;
      throw new Error(`fetch option ${option} must be ${name === 'retries' ? 'an integer' : 'a number'} >= ${minimum}, got ${value}`);
    }
  }
  return { ...policy, signal: options.signal, onRetry: options.onRetry };
}
