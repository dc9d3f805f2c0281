// The maintainers' command: download locked artifacts again and record their current sha256
// and size. The lock is rewritten only when every chosen artifact was downloaded.

import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { atomicWriteFile, sha256File } from '@boxcar/kit';
import { cacheFilePath, resolveCacheDir } from './cache.ts';
import { acquire } from './download.ts';
import { retryPolicy, type FetchOptions } from './fetch.ts';
import { loadLock, serializeLock, type LockEntry } from './lock.ts';
import { artifactSource, resolveMirror } from './mirror.ts';

export interface RefreshChange {
  id: string;
  /** null for an entry that was pending. */
  oldSha256: string | null;
  newSha256: string;
  oldSize?: number;
  newSize: number;
}

export interface RefreshResult {
  changed: RefreshChange[];
  /** Downloaded and identical to the lock. */
  unchanged: string[];
  /** Entries with upstreamGone: true that 'all' left alone (their lock entry is the only record of the bytes). */
  skipped: string[];
}

export async function refreshLock(lockPath: string, ids: string[] | 'all', options: FetchOptions = {}): Promise<RefreshResult> {
  const lock = await loadLock(lockPath);
  const chosen = chooseEntries(lock.artifacts, ids, lockPath);
  const cacheDir = resolveCacheDir(options.cacheDir, options.env);
  const mirror = resolveMirror(options.mirror, options.env);
  const policy = retryPolicy(options);
  const result: RefreshResult = { changed: [], unchanged: [], skipped: chosen.skipped.map((e) => e.id) };
  const updated = new Map<string, { sha256: string; size: number }>();

  for (const entry of chosen.refresh) {
    const tmpDir = join(cacheDir, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const partialPath = join(tmpDir, `refresh-${entry.id}-${process.pid}-${randomBytes(4).toString('hex')}.partial`);
    try {
      await acquire(
        {
          id: entry.id,
          source: artifactSource(entry.url, mirror),
          partialPath,
          onBytes: (receivedBytes, totalBytes) => options.onProgress?.({ id: entry.id, receivedBytes, totalBytes }),
        },
        policy,
      );
      const fresh = await sha256File(partialPath);
      const finalPath = cacheFilePath({ ...entry, ...fresh, sha256: fresh.sha256 }, cacheDir);
      await mkdir(dirname(finalPath), { recursive: true });
      await rename(partialPath, finalPath);
      updated.set(entry.id, fresh);
      if (fresh.sha256 === entry.sha256 && fresh.size === entry.size) result.unchanged.push(entry.id);
      else result.changed.push({ id: entry.id, oldSha256: entry.sha256, newSha256: fresh.sha256, oldSize: entry.size, newSize: fresh.size });
    } finally {
      await rm(partialPath, { force: true });
    }
  }

  if (result.changed.length > 0) {
    const artifacts = lock.artifacts.map((entry) => (updated.has(entry.id) ? { ...entry, ...updated.get(entry.id)!, pending: undefined } : entry)) as LockEntry[];
    await atomicWriteFile(lockPath, serializeLock({ ...lock, artifacts }));
  }
  return result;
}

function chooseEntries(artifacts: LockEntry[], ids: string[] | 'all', lockPath: string): { refresh: LockEntry[]; skipped: LockEntry[] } {
  if (ids === 'all') {
    return { refresh: artifacts.filter((e) => !e.upstreamGone), skipped: artifacts.filter((e) => e.upstreamGone) };
  }
  const byId = new Map(artifacts.map((e) => [e.id, e]));
  const unknown = ids.filter((id) => !byId.has(id));
  if (unknown.length > 0) {
    throw new Error(`${lockPath}: no artifact with id ${unknown.map((id) => `"${id}"`).join(', ')}; known ids: ${[...byId.keys()].join(', ')}`);
  }
  const chosen = [...new Set(ids)].map((id) => byId.get(id) as LockEntry);
  const gone = chosen.filter((e) => e.upstreamGone);
  if (gone.length > 0) {
    throw new Error(
      `${lockPath}: ${gone.map((e) => `"${e.id}"`).join(', ')} ${gone.length === 1 ? 'is' : 'are'} marked upstreamGone: true, so the lock is ` +
        'the only record of the right bytes and is not refreshed; set upstreamGone to false first if the url serves the file again',
    );
  }
  return { refresh: chosen, skipped: [] };
}
