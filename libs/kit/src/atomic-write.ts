import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Starts the name of every temporary entry made here, so that whoever owns a directory can tell
 * abandoned writes from real content (the box store's gc removes them).
 */
export const TEMP_PREFIX = '.tmp-';

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/**
 * A fresh temporary name in `dir`. The hint comes before the random part, so that the name never ends
 * like the file it stands for (a reader listing `*.json` must not take a leftover for a record).
 */
export function tempPathIn(dir: string, hint = ''): string {
  return join(dir, `${TEMP_PREFIX}${hint ? `${hint}-` : ''}${randomSuffix()}`);
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the rename is still atomic there, only less durable.
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
}

export interface AtomicWriteOptions {
  /** Mode of a file this creates (before the umask), as for open(2); default 0o666. */
  mode?: number;
}

/**
 * Replaces `path` with `data` through a fsynced temporary file beside it and a rename: readers see the
 * old file or the new one, never half of one, even when the writer crashes.
 */
export async function atomicWriteFile(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const temp = tempPathIn(dir, basename(path));
  try {
    const handle = await open(temp, 'wx', options.mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dir);
}
