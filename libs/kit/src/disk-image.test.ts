import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diskImageHostReferences } from './disk-image.ts';

// Images made by the real qemu-img, the way a hostile store would make them: each pointing at a host
// file (here a file of the test's own directory standing for the baker's key).

let work: string;
let hostFile: string;
const img = async (name: string, ...args: string[]) => {
  const path = join(work, name);
  await execa('qemu-img', ['create', '-q', ...args, path, '16M']);
  return path;
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'boxcar-disk-'));
  hostFile = join(work, 'id_ed25519');
  await writeFile(hostFile, Buffer.alloc(16 * 1024 * 1024));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('diskImageHostReferences', () => {
  it('finds nothing in self-contained images: qcow2, monolithic and stream-optimized VMDK, raw, VDI', async () => {
    expect(await diskImageHostReferences(await img('plain.qcow2', '-f', 'qcow2'))).toEqual([]);
    expect(await diskImageHostReferences(await img('plain.vmdk', '-f', 'vmdk'))).toEqual([]);
    expect(await diskImageHostReferences(await img('stream.vmdk', '-f', 'vmdk', '-o', 'subformat=streamOptimized'))).toEqual([]);
    expect(await diskImageHostReferences(await img('plain.raw', '-f', 'raw'))).toEqual([]);
    expect(await diskImageHostReferences(await img('plain.vdi', '-f', 'vdi'))).toEqual([]);
  });

  it('names the backing file of a qcow2 (v3 and the old v2 header)', async () => {
    expect(await diskImageHostReferences(await img('backed.qcow2', '-f', 'qcow2', '-F', 'raw', '-b', hostFile))).toEqual([`a backing file: ${JSON.stringify(hostFile)}`]);
    expect(await diskImageHostReferences(await img('backed-v2.qcow2', '-f', 'qcow2', '-o', 'compat=0.10', '-F', 'raw', '-b', hostFile))).toEqual([`a backing file: ${JSON.stringify(hostFile)}`]);
  });

  it('names the external data file of a qcow2', async () => {
    const data = join(work, 'data.raw');
    expect(await diskImageHostReferences(await img('datafile.qcow2', '-f', 'qcow2', '-o', `data_file=${data}`))).toEqual([
      'an external data file (incompatible feature bit "data file")',
      `an external data file: ${JSON.stringify(data)}`,
    ]);
  });

  it('names the parent of a VMDK and the extents of a VMDK descriptor in other files', async () => {
    const parent = await img('parent.vmdk', '-f', 'vmdk');
    expect(await diskImageHostReferences(await img('child.vmdk', '-f', 'vmdk', '-F', 'vmdk', '-b', parent))).toEqual([`a parent disk: ${JSON.stringify(parent)}`]);
    const split = await img('split.vmdk', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentFlat');
    const found = await diskImageHostReferences(split);
    expect(found).toContain('an extent in another file: "split-f001.vmdk"');
    expect(found).toContain('a VMDK text descriptor (its disk is in other files)');
  });

  it('a hand-written descriptor pointing at a host file is refused however it is named', async () => {
    const descriptor = join(work, 'box-disk001.vmdk');
    await writeFile(descriptor, `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 32768 FLAT "${hostFile}" 0\n`);
    expect(await diskImageHostReferences(descriptor)).toEqual([`an extent in another file: ${JSON.stringify(hostFile)}`, 'a VMDK text descriptor (its disk is in other files)']);
  });
});
