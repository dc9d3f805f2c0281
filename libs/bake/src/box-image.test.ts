import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { compressDisk, packLibvirtBox } from './box-image.ts';

// Real qemu-img, tar and Vagrant on a small disk with known content.
const dir = mkdtempSync(join(tmpdir(), 'boxcar-box-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const disk = join(dir, 'disk.qcow2');
const original = join(dir, 'original.qcow2');
await execa('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '2G']);
// 8 MiB of a byte pattern at the start, 1 MiB at 1 GiB; the rest unallocated.
await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x41 0 8M', '-c', 'write -P 0x5a 1G 1M', disk]);
copyFileSync(disk, original);

const qemuInfo = async (file: string) => JSON.parse((await execa('qemu-img', ['info', '--output=json', file])).stdout) as Record<string, any>;

describe('compressDisk', () => {
  it('replaces the disk with a compressed qcow2 holding the same guest-visible bytes', async () => {
    await compressDisk(disk);
    const info = await qemuInfo(disk);
    expect(info['format-specific'].data['compression-type']).toBe('zstd');
    expect(info['actual-size']).toBeLessThan((await qemuInfo(original))['actual-size']);
    // qemu-img compare exits 0 only when the guest sees identical content.
    expect((await execa('qemu-img', ['compare', '-q', original, disk], { reject: false })).exitCode).toBe(0);
  });

  it('fails with qemu-img’s reason and leaves no temporary file', async () => {
    await expect(compressDisk(join(dir, 'missing.qcow2'))).rejects.toThrow(/compressing .*missing\.qcow2 failed \(qemu-img convert exited 1\): .*No such file/);
    expect(existsSync(join(dir, 'missing.qcow2.compressing'))).toBe(false);
  });
});

describe('packLibvirtBox', () => {
  const boxFile = join(dir, 'box', 'libvirt.box');

  it('packs metadata.json, a Vagrantfile and box.img in a plain tar', async () => {
    await packLibvirtBox(disk, boxFile);
    const entries = (await execa('tar', ['-tf', boxFile])).stdout.split('\n');
    expect(entries).toEqual(['metadata.json', 'Vagrantfile', 'box.img']);
    const metadata = JSON.parse((await execa('tar', ['-xOf', boxFile, 'metadata.json'])).stdout);
    expect(metadata).toEqual({ provider: 'libvirt', format: 'qcow2', virtual_size: 2 });
    expect((await execa('tar', ['-xOf', boxFile, 'Vagrantfile'])).stdout).toMatch(/^Vagrant\.configure\("2"\) do \|config\|/);
  });

  it('is a box the real `vagrant box add` accepts, with the disk inside unchanged', async () => {
    const home = join(dir, 'vagrant-home');
    const added = await execa('vagrant', ['box', 'add', '--name', 'boxcar/box-image-test', boxFile], {
      env: { VAGRANT_HOME: home, VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1' },
      reject: false,
    });
    expect(added.stdout).toContain("Successfully added box 'boxcar/box-image-test' (v0) for 'libvirt'");
    const unpacked = join(home, 'boxes', 'boxcar-VAGRANTSLASH-box-image-test', '0', 'libvirt', 'box.img');
    expect((await execa('qemu-img', ['compare', '-q', original, unpacked], { reject: false })).exitCode).toBe(0);
  }, 60_000);
});
