// Sweeps what interrupted downloads left in an http store's local cache: `.tmp-` entries (partial layer
// directories, half-written keys and references) old enough that no live process still writes them.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_PREFIX } from '@boxcar/kit';
import { errorCode } from './errors.ts';
import { removeQuietly } from './verify.ts';

/** A day: far beyond the deadline of a layer download, so a download still in progress is never taken. */
export const DEFAULT_STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/** Deep enough for `layers/<profile>/<layer>/.tmp-*`, `keys/<hash>/.tmp-*` and `refs/<host>/<cluster>/.tmp-*`. */
const MAX_DEPTH = 4;

/** Newest modification time in a tree: a partial directory is alive while any file in it still grows. */
async function newestMtime(path: string): Promise<number> {
  const info = await lstat(path);
  let newest = info.mtimeMs;
  if (info.isDirectory()) {
    for (const name of await readdir(path)) newest = Math.max(newest, await newestMtime(join(path, name)).catch(() => 0));
  }
  return newest;
}

/**
 * Removes the `.tmp-` entries under `cacheDir` not modified for `maxAgeMs` and returns their paths.
 * Best effort: an entry that vanishes or cannot be read meanwhile is left to the next sweep.
 */
export async function sweepStaleTemps(cacheDir: string, maxAgeMs: number = DEFAULT_STALE_TEMP_MS, now: number = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  async function visit(dir: string, depth: number): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return [];
      throw error;
    });
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.name.startsWith(TEMP_PREFIX)) {
        const mtime = await newestMtime(path).catch(() => now);
        if (now - mtime > maxAgeMs) {
          await removeQuietly(path);
          removed.push(path);
        }
      } else if (entry.isDirectory() && depth < MAX_DEPTH) {
        await visit(path, depth + 1);
      }
    }
  }
  await visit(cacheDir, 1);
  return removed;
}
