import { link, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';

// What happens to a qemu layer's disk after Packer (which neither compacts nor compresses it):
// a layer that publishes a box gets its disk compressed, then packed as a libvirt box. A layer that
// only its children read is published as the VM left it (trimmed): its children copy it at the start
// of their own bake, and compressing it would only cost time on both sides.

/**
 * zstd clusters (qemu 5.1+) compress ~10x faster than zlib with a smaller result; an older qemu-img
 * gets zlib. Either way every core works (-W, -m 16): the conversion is the one CPU-bound step.
 */
async function compressionOptions(): Promise<string[]> {
  compressionSupport ??= execa('qemu-img', ['create', '-f', 'qcow2', '-o', 'help'], { reject: false, stdin: 'ignore' }).then((result) =>
    /compression_type/.test(String(result.stdout)) ? ['-o', 'compression_type=zstd'] : [],
  );
  return compressionSupport;
}
let compressionSupport: Promise<string[]> | undefined;

/** Replaces `disk` with a compressed copy of itself, atomically (a reader sees the old or the new file). */
export async function compressDisk(disk: string, signal?: AbortSignal): Promise<void> {
  const temp = `${disk}.compressing`;
  await rm(temp, { force: true });
  const result = await execa('qemu-img', ['convert', '-c', '-O', 'qcow2', ...(await compressionOptions()), '-m', '16', '-W', disk, temp], {
    reject: false,
    stdin: 'ignore',
    ...(signal ? { cancelSignal: signal } : {}),
  });
  if (result.exitCode !== 0) {
    await rm(temp, { force: true });
    throw new Error(`compressing ${disk} failed (qemu-img convert exited ${result.exitCode ?? result.signal}): ${String(result.stderr).trim()}`);
  }
  await rename(temp, disk);
}

async function virtualSizeGiB(disk: string): Promise<number> {
  const { stdout } = await execa('qemu-img', ['info', '--output=json', disk], { stdin: 'ignore' });
  return Math.ceil((JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'] / 2 ** 30);
}

/**
 * A libvirt box as `vagrant box add` reads it (vagrant-libvirt's box format v1): metadata.json,
 * a Vagrantfile and box.img in a plain tar. Not gzipped: box.img is already compressed, and gzip over
 * it took as long as the compression itself for a few percent.
 */
export async function packLibvirtBox(disk: string, boxFile: string): Promise<void> {
  const stage = `${boxFile}.stage`;
  const temp = `${boxFile}.tmp`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true });
  try {
    await writeFile(join(stage, 'metadata.json'), `${JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: await virtualSizeGiB(disk) })}\n`);
    // No driver here: boxcar's own Vagrantfile picks kvm or qemu on the host that runs the box.
    await writeFile(join(stage, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n');
    // A hard link, not a copy: the disk is in the same bake work dir.
    await link(disk, join(stage, 'box.img'));
    await mkdir(dirname(boxFile), { recursive: true });
    await execa('tar', ['-cf', temp, '-C', stage, 'metadata.json', 'Vagrantfile', 'box.img'], { stdin: 'ignore' });
    await rename(temp, boxFile);
  } finally {
    await rm(stage, { recursive: true, force: true });
    await rm(temp, { force: true });
  }
}
