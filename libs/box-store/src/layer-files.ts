// Files of a layer directory on local disk: collecting them for a publish, verifying them on read.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { diskImageHostReferences, sha256File } from '@boxcar/kit';
import { BoxStoreError, errorCode } from './errors.ts';
import { mismatch } from './verify.ts';
import type { LayerManifest } from './layer-manifest.ts';
import { LAYER_MANIFEST } from './layout.ts';
import { isLayerFilePath } from './layer-manifest.ts';

/** Relative "/"-separated paths of the regular files under `srcDir` (symlinks followed), sorted. */
export async function listSourceFiles(srcDir: string): Promise<string[]> {
  const top = await stat(srcDir).catch((error: unknown) => {
    if (errorCode(error) === 'ENOENT') throw new BoxStoreError('invalid-argument', `srcDir ${srcDir} does not exist`);
    throw error;
  });
  if (!top.isDirectory()) throw new BoxStoreError('invalid-argument', `srcDir ${srcDir} is not a directory`);
  const files: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(srcDir, relative))).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const info = await stat(join(srcDir, path));
      if (info.isDirectory()) await walk(path);
      else if (!info.isFile()) throw new BoxStoreError('invalid-argument', `${join(srcDir, path)} is neither a regular file nor a directory`);
      else if (!isLayerFilePath(path) || path === LAYER_MANIFEST) {
        const rule = `letters, digits, ".", "_" or "-", not starting with "." and not ${LAYER_MANIFEST}`;
        throw new BoxStoreError('invalid-argument', `${join(srcDir, path)}: layer file names must be ${rule}`);
      } else files.push(path);
    }
  };
  await walk('');
  if (files.length === 0) throw new BoxStoreError('invalid-argument', `srcDir ${srcDir} holds no files`);
  return files;
}

export function openSourceFile(srcDir: string, path: string): ReturnType<typeof createReadStream> {
  return createReadStream(join(srcDir, ...path.split('/')));
}

/**
 * Checks every file of `manifest` in `dir` (size and sha256), and that no disk image among them names a
 * host file (a qcow2 backing or data file, a VMDK parent or extent elsewhere); the error names the file.
 */
export async function verifyLayerDir(dir: string, manifest: LayerManifest, authority: string): Promise<void> {
  for (const file of manifest.files) {
    const path = join(dir, ...file.path.split('/'));
    const expected = { sha256: file.sha256, size: file.size, source: path, authority };
    const info = await stat(path).catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') throw new BoxStoreError('corrupt', `${path} is missing (listed in ${authority})`, path);
      throw error;
    });
    const early = mismatch(expected, { sha256: file.sha256, size: info.size });
    if (early) throw early;
    const problem = mismatch(expected, await sha256File(path));
    if (problem) throw problem;
    await refuseHostReferences(path, path, authority);
  }
}

/** A layer file that is a disk image naming host files is refused; `source` is where it came from (a file or URL). */
export async function refuseHostReferences(path: string, source: string, authority: string): Promise<void> {
  const references = await diskImageHostReferences(path);
  if (references.length === 0) return;
  throw new BoxStoreError(
    'unsafe-image',
    `${source} (listed in ${authority}) is a disk image that names files on this host, refused before any VM sees it: ${references.join('; ')}. ` +
      "A layer's disk must be self-contained: bake the layer again, or ask who publishes this store",
    source,
  );
}
