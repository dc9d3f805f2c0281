import { stat } from 'node:fs/promises';

/**
 * Whether something is at `path` (file, directory, socket). Only "nothing there" (ENOENT, or a path
 * through a file: ENOTDIR) is false; any other error (permissions, I/O) is thrown, not taken for absence.
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw error;
  }
}

/**
 * What `work` (a read of a path) gives, or `absent` when the path is not there (ENOENT, ENOTDIR). Any
 * other failure (permissions, I/O) is thrown with the path named: it is an error, not an absence.
 */
export async function unlessMissing<T, A>(path: string, work: Promise<T>, absent: A): Promise<T | A> {
  try {
    return await work;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return absent;
    throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
  }
}
