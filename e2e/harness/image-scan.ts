import { lstat, mkdir, mkdtemp, open, readdir, readFile, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';

// Looks inside a baked disk image for what must never ship in a box: key material, tokens, shell
// histories, apt caches and boxcar's staging files. The image is never written: qemu-img copies it
// to a temporary raw file, each partition is attached read-only (losetup -r, with its offset and
// size, so no partition devices or nbd module are needed) and mounted read-only; everything is
// detached and removed again whatever happens. Besides the files, the disk's bytes are searched for
// private keys in blocks no file owns: a key file deleted by a bake leaves its blocks behind unless
// they were overwritten (a trim frees only whole qcow2 clusters), and a box ships those bytes to
// everyone who adds it. Keys inside files are the file scan's: a small file holding one is a finding,
// a large one (libgnutls carries its self-test keys) is not read, as there.
// Needs root, qemu-img, losetup, blkid, sfdisk (fdisk), debugfs (e2fsprogs).

export type FindingKind = 'private-key' | 'ssh-host-key' | 'ca-key' | 'freed-key' | 'token' | 'shell-history' | 'apt-cache' | 'boxcar-leftover';

export interface Finding {
  kind: FindingKind;
  /** Absolute path inside the image's file system; for freed-key, "disk byte <offset>". */
  path: string;
  /** 1-based partition number; 0 for a file system on the whole disk. */
  partition: number;
  detail: string;
}

/** A PEM private key with a body (not just the marker string that ssh and openssl binaries carry). */
const PEM_PRIVATE_KEY = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----\r?\n(?:[A-Za-z-]+:[^\n]*\r?\n)*\r?\n?[A-Za-z0-9+/=]{20,}/;
const MARKER = Buffer.from('PRIVATE KEY-----');
/** Key files are small; larger files are not read for their content. */
const MAX_CONTENT_BYTES = 1024 * 1024;

/** Scans every file system of a disk image (qcow2 or any format qemu-img reads). */
export async function scanImage(image: string): Promise<Finding[]> {
  const work = await mkdtemp(join(tmpdir(), 'boxcar-scan-'));
  const undo: { what: string; run: () => Promise<unknown> }[] = [];
  let failure: unknown;
  try {
    const raw = join(work, 'disk.raw');
    // -U: a running VM may hold the image's lock; reading is still safe.
    await run('qemu-img', ['convert', '-U', '-O', 'raw', image, raw], `cannot read disk image ${image}`);
    const findings: Finding[] = [];
    let fileSystems = 0;
    // Key bytes are placed per ext file system (which file owns their block); any outside one stay as found.
    let unplacedKeys = await privateKeysInBytes(raw);
    for (const part of await partitionsOf(raw)) {
      const device = (await run('losetup', ['-r', '-f', '--show', '-o', String(part.offset), '--sizelimit', String(part.size), raw], 'losetup')).trim();
      undo.push({ what: `losetup -d ${device}`, run: () => run('losetup', ['-d', device], `losetup -d ${device}`) });
      // -p probes the device itself: the blkid cache may remember what a reused loop device held before.
      const type = (await execa('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device], { reject: false })).stdout.trim();
      if (!type || type === 'swap') continue;
      const mountPoint = join(work, `partition-${part.number}`);
      await mkdir(mountPoint);
      const isExt = ['ext2', 'ext3', 'ext4'].includes(type);
      // noload: an unclean ext3/ext4 journal is not replayed (that would write).
      const options = isExt && type !== 'ext2' ? 'ro,noload' : 'ro';
      await run('mount', ['-t', type, '-o', options, device, mountPoint], `mount of partition ${part.number} (${type}) of ${image}`);
      undo.push({ what: `umount ${mountPoint}`, run: () => unmount(mountPoint) });
      fileSystems += 1;
      for (const finding of await scanTree(mountPoint)) findings.push({ ...finding, partition: part.number });
      if (!isExt) continue;
      const inside = unplacedKeys.filter((offset) => offset >= part.offset && offset < part.offset + part.size);
      unplacedKeys = unplacedKeys.filter((offset) => !inside.includes(offset));
      // The mounted file system's block size is the unit debugfs counts blocks in.
      for (const offset of await inFreedBlocks(device, part.offset, (await statfs(mountPoint)).bsize, inside)) {
        findings.push({ kind: 'freed-key', path: `disk byte ${offset}`, partition: part.number, detail: 'a PEM private key in blocks no file owns: a deleted key file left it' });
      }
    }
    if (fileSystems === 0) throw new Error(`no file system found in disk image ${image}: nothing was scanned`);
    for (const offset of unplacedKeys) {
      findings.push({ kind: 'freed-key', path: `disk byte ${offset}`, partition: 0, detail: 'a PEM private key outside every ext file system' });
    }
    return findings;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    const problems: string[] = [];
    for (const step of undo.reverse()) await step.run().catch((error: Error) => problems.push(`${step.what}: ${error.message}`));
    await rm(work, { recursive: true, force: true }).catch((error: Error) => problems.push(`rm ${work}: ${error.message}`));
    // A scan that cannot clean up must say so, but not hide why it failed.
    if (problems.length && !failure) throw new Error(`scanImage(${image}) could not clean up:\n  ${problems.join('\n  ')}`);
  }
}

/** The rules applied to a mounted file system (or any directory standing for one's root). */
export async function scanTree(root: string): Promise<Omit<Finding, 'partition'>[]> {
  const findings: Omit<Finding, 'partition'>[] = [];
  const add = (kind: FindingKind, path: string, detail: string) => findings.push({ kind, path, detail });
  for (const { path, isDir, size } of await walk(root)) {
    const name = path.split('/').at(-1)!;
    if (path === '/tmp/boxcar') add('boxcar-leftover', path, 'staging directory of the bake (the template removes it)');
    if (path.startsWith('/var/cache/boxcar/') || (path.startsWith('/tmp/boxcar/') && !isDir)) add('boxcar-leftover', path, 'left by the bake');
    if (isDir) continue;
    if (/^\.[\w.-]*_history$/.test(name) && size > 0) add('shell-history', path, `${size} bytes of shell history`);
    if (/^\/var\/cache\/apt\/archives\/[^/]+\.deb$/.test(path)) add('apt-cache', path, 'downloaded package');
    if (path.startsWith('/var/lib/apt/lists/') && !/^\/var\/lib\/apt\/lists\/(lock|partial(\/.*)?)$/.test(path)) add('apt-cache', path, 'apt package list');
    if ((path.startsWith('/etc/') || path.startsWith('/var/lib/boxcar/')) && /token/i.test(name)) add('token', path, 'file named like a token');
    if (size <= MAX_CONTENT_BYTES) {
      const content = await readFile(join(root, path));
      if (content.includes(MARKER)) {
        const match = PEM_PRIVATE_KEY.exec(content.toString('latin1'));
        if (match) add(keyKind(path), path, `PEM ${match[1] ?? ''}PRIVATE KEY`);
      }
    }
  }
  return findings;
}

function keyKind(path: string): FindingKind {
  if (/^\/etc\/ssh\/ssh_host_[^/]*_key$/.test(path)) return 'ssh-host-key';
  // ca.key, ca-key.pem, etcd-ca.key, front-proxy-ca.key
  const stem = path.split('/').at(-1)!.replace(/\.(pem|key)$/, '');
  return /(^|[-_.])ca([-_]key)?$/i.test(stem) ? 'ca-key' : 'private-key';
}

/** How far past its marker a key's body is looked for. */
const KEY_WINDOW = 4096;
const CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Offsets of PEM private keys with a body in a raw disk file, searched only in its data extents
 * (qemu-img map: a 40 GiB disk is mostly holes). Chunks overlap, so a key across a chunk's end is seen.
 */
async function privateKeysInBytes(raw: string): Promise<number[]> {
  const map = JSON.parse(await run('qemu-img', ['map', '--output=json', '-f', 'raw', raw], `qemu-img map of ${raw}`)) as { start: number; length: number; data: boolean }[];
  const offsets = new Set<number>();
  const file = await open(raw, 'r');
  try {
    const buffer = Buffer.alloc(CHUNK_BYTES + KEY_WINDOW);
    for (const extent of map.filter((entry) => entry.data)) {
      for (let position = extent.start; position < extent.start + extent.length; position += CHUNK_BYTES) {
        const length = Math.min(CHUNK_BYTES + KEY_WINDOW, extent.start + extent.length - position);
        const { bytesRead } = await file.read(buffer, 0, length, position);
        const chunk = buffer.subarray(0, bytesRead);
        for (let at = chunk.indexOf(MARKER); at >= 0; at = chunk.indexOf(MARKER, at + 1)) {
          const start = Math.max(0, at - 64);
          const match = PEM_PRIVATE_KEY.exec(chunk.subarray(start, at + KEY_WINDOW).toString('latin1'));
          if (match) offsets.add(position + start + match.index);
        }
      }
    }
  } finally {
    await file.close();
  }
  return [...offsets].sort((a, b) => a - b);
}

/** The offsets (in the disk) whose file system block no inode owns, asked of debugfs (read-only). */
async function inFreedBlocks(device: string, partitionOffset: number, blockSize: number, offsets: number[]): Promise<number[]> {
  if (!offsets.length) return [];
  const blockOf = (offset: number) => Math.floor((offset - partitionOffset) / blockSize);
  const listing = await run('debugfs', ['-R', `icheck ${offsets.map(blockOf).join(' ')}`, device], `debugfs icheck on ${device}`);
  const freed = new Set([...listing.matchAll(/^(\d+)\s+<block not found>$/gm)].map((match) => Number(match[1])));
  return offsets.filter((offset) => freed.has(blockOf(offset)));
}

/**
 * Files (relative to `dir`) whose content contains `text`, e.g. the logs of a bake and "PRIVATE KEY";
 * `include` picks the files read (a compressed disk's bytes say nothing either way: scanImage it).
 */
export async function filesContaining(dir: string, text: string, include: (path: string) => boolean = () => true): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await walk(dir)) {
    if (!entry.isDir && include(entry.path.slice(1)) && (await readFile(join(dir, entry.path))).includes(text)) found.push(entry.path.slice(1));
  }
  return found;
}

/** Every entry under `root` as an absolute path inside it ("/etc/x"); symlinks are not followed. */
async function walk(root: string): Promise<{ path: string; isDir: boolean; size: number }[]> {
  const entries: { path: string; isDir: boolean; size: number }[] = [];
  const visit = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const path = `/${relative(root, full)}`;
      if (entry.isDirectory()) {
        entries.push({ path, isDir: true, size: 0 });
        await visit(full);
      } else if (entry.isFile()) {
        entries.push({ path, isDir: false, size: (await lstat(full)).size });
      }
    }
  };
  await visit(root);
  return entries;
}

interface Partition {
  number: number;
  offset: number;
  size: number;
}

/** Partitions from the partition table (sfdisk reads the raw file), or the whole disk when there is none. */
async function partitionsOf(raw: string): Promise<Partition[]> {
  const table = await execa('sfdisk', ['--json', raw], { reject: false });
  const whole = Number((await execa('stat', ['-c', '%s', raw])).stdout);
  if (table.exitCode !== 0 || !table.stdout.trim()) return [{ number: 0, offset: 0, size: whole }];
  const parsed = JSON.parse(table.stdout) as { partitiontable: { sectorsize?: number; partitions?: { start: number; size: number }[] } };
  const sector = parsed.partitiontable.sectorsize ?? 512;
  return (parsed.partitiontable.partitions ?? []).map((part, index) => ({ number: index + 1, offset: part.start * sector, size: part.size * sector }));
}

async function unmount(mountPoint: string): Promise<void> {
  const result = await execa('umount', [mountPoint], { reject: false });
  if (result.exitCode === 0) return;
  // Busy (something still reads it): detach lazily, so the loop device can go too.
  await run('umount', ['-l', mountPoint], `umount ${mountPoint} (${result.stderr.trim()})`);
}

async function run(command: string, args: string[], what: string): Promise<string> {
  const result = await execa(command, args, { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    const hint = (result as { code?: string }).code === 'ENOENT' ? ` (${command} is not installed)` : '';
    throw new Error(`${what}: ${command} ${args.join(' ')} failed${hint}: ${String(result.stderr || result.message).trim()}`);
  }
  return String(result.stdout);
}
