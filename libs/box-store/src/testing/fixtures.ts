// Helpers for the box-store tests: temp dirs, box files, a snapshot of a directory tree.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { sha256Hex } from '@boxcar/kit';

export async function makeTempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `boxcar-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A file of random bytes standing in for a .box: the store treats boxes as opaque bytes. */
export async function randomFile(path: string, size = 64 * 1024): Promise<string> {
  await writeFile(path, randomBytes(size));
  return path;
}

/** Every file under `dir` with the sha256 of its content: equal snapshots mean an unchanged tree. */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        out[`${path}/`] = 'dir';
        await walk(path);
      } else out[path] = sha256Hex(await readFile(join(dir, path)));
    }
  };
  await walk('');
  return out;
}

/**
 * A real (tiny) libvirt box: metadata.json, a qcow2 box.img made by qemu-img, and a Vagrantfile,
 * packed as a gzipped tar the way Vagrant expects.
 */
export async function makeLibvirtBox(workDir: string, boxFile: string): Promise<string> {
  await writeFile(join(workDir, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 1 }));
  await writeFile(join(workDir, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(workDir, 'box.img'), '1G']);
  await execa('tar', ['-czf', boxFile, '-C', workDir, 'metadata.json', 'Vagrantfile', 'box.img']);
  return boxFile;
}
