import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanImage, type Finding } from '../harness/image-scan.ts';

// Scenario "secrets in an image": the scanner the e2e runs on the real baked boxes, tried on small
// crafted images (ext4 made with mke2fs -d from a directory, converted to qcow2), one dirty and one
// clean, one as a whole-disk file system and one inside an MBR partition table. Needs root (losetup,
// mount).

let root: string;

function put(tree: string, path: string, content: string | Buffer, mode = 0o644): void {
  const file = join(tree, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

async function fileSystem(tree: string, file: string): Promise<void> {
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, file, '24M']);
}

async function toQcow2(raw: string): Promise<string> {
  await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, `${raw}.qcow2`]);
  return `${raw}.qcow2`;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function leftovers(): Promise<string[]> {
  const loops = (await execa('losetup', ['-a'])).stdout.split('\n').filter((line) => line.includes('boxcar-scan-'));
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes('boxcar-scan-'));
  return [...loops, ...mounts];
}

let dirtyImage: string;
let cleanImage: string;
let deletedKeyImage: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'boxcar-faults-scan-'));
  const keys = join(root, 'keys');
  mkdirSync(keys);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'host')]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'user')]);
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(keys, 'ca.pem')]);

  const dirty = join(root, 'dirty');
  put(dirty, 'etc/ssh/ssh_host_ed25519_key', readFileSync(join(keys, 'host')), 0o600);
  put(dirty, 'etc/ssh/ssh_host_ed25519_key.pub', readFileSync(join(keys, 'host.pub')));
  put(dirty, 'etc/kubernetes/pki/ca-key.pem', readFileSync(join(keys, 'ca.pem')), 0o600);
  put(dirty, 'home/vagrant/.ssh/id_ed25519', readFileSync(join(keys, 'user')), 0o600);
  put(dirty, 'root/.bash_history', 'sudo kubeadm join --token abcdef.0123456789abcdef\n');
  put(dirty, 'home/vagrant/.bash_history', '');
  put(dirty, 'etc/boxcar/join-token', 'abcdef.0123456789abcdef\n', 0o600);
  put(dirty, 'var/lib/boxcar/bootstrap.token', 'secret\n', 0o600);
  put(dirty, 'var/cache/apt/archives/etcd-client_3.4.23-4_amd64.deb', 'not really a deb');
  put(dirty, 'var/cache/apt/archives/lock', '');
  put(dirty, 'var/lib/apt/lists/lock', '');
  put(dirty, 'var/lib/apt/lists/partial/.keep', '');
  put(dirty, 'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease', 'Origin: Debian\n');
  put(dirty, 'tmp/boxcar/files/0/felix.patch', 'diff\n');
  put(dirty, 'var/cache/boxcar/artifacts/iptables_1.8.9-2_amd64.deb', 'deb');
  // Not findings: the marker string that ssh binaries carry, and prose about keys.
  put(dirty, 'usr/bin/fake-ssh', Buffer.concat([Buffer.from('\x7fELF\x02\x01'), Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\n\0\0openssh-key-v1\0')]), 0o755);
  // Nor a library's own test keys (libgnutls carries its self-test keys): a file over 1 MiB is not read.
  put(dirty, 'usr/lib/libfake-tls.so', Buffer.concat([Buffer.alloc(1024 * 1024), readFileSync(join(keys, 'user')), Buffer.alloc(4096)]));
  put(dirty, 'usr/share/doc/openssh/README', 'Keys start with -----BEGIN OPENSSH PRIVATE KEY----- and are never shipped.\n');
  const dirtyRaw = join(root, 'dirty.raw');
  await fileSystem(dirty, dirtyRaw);
  dirtyImage = await toQcow2(dirtyRaw);

  const clean = join(root, 'clean');
  put(clean, 'etc/hostname', 'debian\n');
  put(clean, 'etc/ssh/sshd_config', 'PermitRootLogin no\n');
  put(clean, 'home/vagrant/.bash_history', '');
  put(clean, 'var/lib/apt/lists/lock', '');
  put(clean, 'var/lib/apt/lists/partial/.keep', '');
  mkdirSync(join(clean, 'var/cache/boxcar'), { recursive: true });
  const fs = join(root, 'clean.fs');
  await fileSystem(clean, fs);
  // A disk with an MBR and the file system in partition 1 at 1 MiB, as debootstrap images are made.
  const disk = join(root, 'clean-disk.raw');
  await execa('truncate', ['-s', '32M', disk]);
  await execa('sfdisk', ['-q', disk], { input: 'label: dos\nstart=2048, type=83\n' });
  await execa('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
  cleanImage = await toQcow2(disk);

  // What a bake does with its VM's SSH host key: made on boot, deleted by the cleanup. The file is
  // gone, its blocks are not (rm frees them, nothing overwrites them).
  const deleted = join(root, 'deleted');
  put(deleted, 'etc/ssh/ssh_host_ed25519_key', readFileSync(join(keys, 'host')), 0o600);
  put(deleted, 'etc/hostname', 'debian\n');
  const deletedRaw = join(root, 'deleted.raw');
  await fileSystem(deleted, deletedRaw);
  await execa('debugfs', ['-w', '-R', 'rm /etc/ssh/ssh_host_ed25519_key', deletedRaw]);
  deletedKeyImage = await toQcow2(deletedRaw);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('scenario 9a: scanImage finds what must not ship in a box', () => {
  let findings: Finding[];
  let before: string;

  beforeAll(async () => {
    before = sha256(dirtyImage);
    findings = await scanImage(dirtyImage);
  });

  it('reports every secret and leftover of the dirty image, and nothing else', () => {
    expect(findings.map((finding) => `${finding.kind} ${finding.path}`).sort()).toEqual(
      [
        'apt-cache /var/cache/apt/archives/etcd-client_3.4.23-4_amd64.deb',
        'apt-cache /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease',
        'boxcar-leftover /tmp/boxcar',
        'boxcar-leftover /tmp/boxcar/files/0/felix.patch',
        'boxcar-leftover /var/cache/boxcar/artifacts',
        'boxcar-leftover /var/cache/boxcar/artifacts/iptables_1.8.9-2_amd64.deb',
        'ca-key /etc/kubernetes/pki/ca-key.pem',
        'private-key /home/vagrant/.ssh/id_ed25519',
        'shell-history /root/.bash_history',
        'ssh-host-key /etc/ssh/ssh_host_ed25519_key',
        'token /etc/boxcar/join-token',
        'token /var/lib/boxcar/bootstrap.token',
      ].sort(),
    );
    expect(new Set(findings.map((finding) => finding.partition))).toEqual(new Set([0]));
  });

  it('leaves the image unchanged and nothing attached or mounted', async () => {
    expect(sha256(dirtyImage)).toBe(before);
    expect(await leftovers()).toEqual([]);
  });
});

describe('scenario 9b: scanImage on a clean image and on images it cannot scan', () => {
  it('a clean image in partition 1 of an MBR disk: no findings', async () => {
    expect(await scanImage(cleanImage)).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });

  it("a key file deleted from the file system: its blocks are still found, at the key's offset", async () => {
    const findings = await scanImage(deletedKeyImage);
    expect(findings.map((finding) => finding.kind)).toEqual(['freed-key']);
    const offset = Number(findings[0]!.path.replace('disk byte ', ''));
    const raw = readFileSync(join(root, 'deleted.raw'));
    expect(raw.subarray(offset, offset + 35).toString()).toBe('-----BEGIN OPENSSH PRIVATE KEY-----');
    expect(await leftovers()).toEqual([]);
  });

  it('a disk without a file system: an error, not an empty (clean-looking) result', async () => {
    const blank = join(root, 'blank.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '16M']);
    await expect(scanImage(blank)).rejects.toThrow(`no file system found in disk image ${blank}`);
    expect(await leftovers()).toEqual([]);
  });

  it('a file that is not a disk image: an error naming it, nothing left behind', async () => {
    const missing = join(root, 'no-such.qcow2');
    await expect(scanImage(missing)).rejects.toThrow(`cannot read disk image ${missing}`);
    expect(await leftovers()).toEqual([]);
  });
});
