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
