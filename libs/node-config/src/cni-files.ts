import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CniFile } from './types.ts';
import { unlessMissing } from '@boxcar/kit';

/**
 * The repository's cni/ folder as plan input: every file of cni/conf and cni/bin with its permission bits.
 * A missing cni/bin is an empty one (Debian profiles then use the distribution's plugins).
 */
export async function readCniDir(dir: string): Promise<{ conf: CniFile[]; bin: CniFile[] }> {
  const found = await unlessMissing(dir, stat(dir), undefined);
  if (!found) throw new Error(`${dir}: the CNI folder (with conf/ and bin/) does not exist`);
  if (!found.isDirectory()) throw new Error(`${dir}: the CNI folder (with conf/ and bin/) is not a directory`);
  return { conf: await readFolder(join(dir, 'conf')), bin: await readFolder(join(dir, 'bin')) };
}

async function readFolder(dir: string): Promise<CniFile[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const files = entries.filter((entry) => entry.isFile() && !entry.name.startsWith('.')).map((entry) => entry.name).sort();
  return Promise.all(
    files.map(async (name) => {
      const path = join(dir, name);
      const mode = ((await stat(path)).mode & 0o777).toString(8).padStart(4, '0');
      return { name, content: await readFile(path), mode };
    }),
  );
}
