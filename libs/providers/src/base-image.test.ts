import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEBOOTSTRAP_SCRIPT, buildDebootstrapImage, debootstrapImageArgs, debootstrapImageKey } from './base-image.ts';

// The real build (debootstrap, loop devices, grub) runs in qemu/provider.slow.test.ts. Here the real
// script runs too, but stops at its argument checks, before it touches anything.

let dir: string;
let publicKey: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-base-image-'));
  publicKey = join(dir, 'key.pub');
  await writeFile(publicKey, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7x1cW5ZsHqzQ2m5o1Yw0+JX0cIs5sYQ0bJcH8w8Ykq boxcar-test\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('debootstrapImageArgs', () => {
  it('passes every option to the script as a flag, with absolute paths', () => {
    expect(debootstrapImageArgs({ output: 'out/lab.qcow2', publicKeyFile: '/k.pub', suite: 'bookworm', mirror: 'http://127.0.0.1:3142/debian', diskSize: '6G', include: ['etcd-server', 'containernetworking-plugins'] })).toEqual([
      '--output', join(process.cwd(), 'out/lab.qcow2'), '--public-key', '/k.pub', '--suite', 'bookworm', '--mirror', 'http://127.0.0.1:3142/debian', '--size', '6G', '--include', 'etcd-server,containernetworking-plugins',
    ]);
    expect(debootstrapImageArgs({ output: '/o.qcow2', publicKeyFile: '/k.pub' })).toEqual(['--output', '/o.qcow2', '--public-key', '/k.pub']);
  });

  it('refuses an output that is not a .qcow2 and a missing key', () => {
    expect(() => debootstrapImageArgs({ output: '/o.img', publicKeyFile: '/k.pub' })).toThrow(/output must be a \.qcow2 path, got "\/o\.img"/);
    expect(() => debootstrapImageArgs({ output: '/o.qcow2', publicKeyFile: '' })).toThrow(/publicKeyFile must name the bootstrap public key file/);
  });
});

describe('debootstrapImageKey', () => {
  const inputs = { script: 'echo v1', publicKey: 'ssh-ed25519 AAAA k', suite: 'bookworm', mirror: 'http://m/debian', diskSize: '4G', include: ['a', 'b'] };
  it('changes with every input that changes the image, not with include order or key whitespace', () => {
    const key = debootstrapImageKey(inputs);
    expect(key).toMatch(/^[0-9a-f]{20}$/);
    expect(debootstrapImageKey({ ...inputs, include: ['b', 'a'], publicKey: `${inputs.publicKey}\n` })).toBe(key);
    for (const change of [{ script: 'echo v2' }, { publicKey: 'ssh-ed25519 BBBB k' }, { suite: 'trixie' }, { mirror: 'http://n/debian' }, { diskSize: '8G' }, { include: ['a'] }]) {
      expect(debootstrapImageKey({ ...inputs, ...change }), JSON.stringify(change)).not.toBe(key);
    }
  });
});

describe('debootstrap-image.sh', () => {
  it('is shellcheck-clean', async (context) => {
    const shellcheck = await execa('shellcheck', ['--version'], { reject: false });
    if (shellcheck.exitCode !== 0) context.skip('shellcheck is not installed (Debian package shellcheck)');
    const result = await execa('shellcheck', [DEBOOTSTRAP_SCRIPT], { reject: false });
    expect(result.stdout).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it.each([
    [['--public-key', 'KEY'], /--output \(BOXCAR_OUTPUT\) is required/],
    [['--output', 'OUT/x.img', '--public-key', 'KEY'], /--output must end in \.qcow2/],
    [['--output', 'OUT/x.qcow2'], /--public-key \(BOXCAR_PUBLIC_KEY\) is required/],
    [['--output', 'OUT/x.qcow2', '--public-key', 'OUT/missing.pub'], /--public-key: no such file/],
    [['--output', 'OUT/x.qcow2', '--public-key', 'KEY', '--suite', 'Bookworm 12'], /--suite must be a Debian codename/],
    [['--output', 'OUT/x.qcow2', '--public-key', 'KEY', '--mirror', 'ftp://x'], /--mirror must be an http\(s\):\/\/ or file:\/\/ URL/],
    [['--output', 'OUT/x.qcow2', '--public-key', 'KEY', '--size', '4T'], /--size must look like 4G or 2048M/],
    [['--output', 'OUT/x.qcow2', '--public-key', 'KEY', '--include', 'vim;reboot'], /--include must be a comma-separated list of Debian package names/],
    [['--output', 'OUT/x.qcow2', '--public-key', 'KEY', '--frobnicate'], /unknown argument '--frobnicate'/],
  ])('stops with a clear message on bad input: %j', async (args, message) => {
    const result = await execa('bash', [DEBOOTSTRAP_SCRIPT, ...args.map((arg) => arg.replace('OUT', dir).replace(/^KEY$/, publicKey))], { reject: false });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(await readdir(dir)).toEqual(['key.pub']);
  });

  it('refuses a public key file that holds something else', async () => {
    await writeFile(publicKey, '-----BEGIN OPENSSH PRIVATE KEY-----\n');
    const result = await execa('bash', [DEBOOTSTRAP_SCRIPT, '--output', join(dir, 'x.qcow2'), '--public-key', publicKey], { reject: false });
    expect(result.stderr).toMatch(/is not an OpenSSH public key/);
  });
});

describe('buildDebootstrapImage', () => {
  it('streams the script’s lines, keeps them in the log file and fails with the log path and the tail', async () => {
    const lines: string[] = [];
    const output = join(dir, 'x.qcow2');
    const error = (await buildDebootstrapImage({ output, publicKeyFile: publicKey, diskSize: '4X', onLine: (line) => lines.push(line) }).catch((caught: unknown) => caught)) as Error;
    const logFile = join(dir, 'x.build.log');
    expect(error.message).toMatch(new RegExp(`debootstrap image ${output}: the script exited with status \\d+; log: ${logFile}\\n[\\s\\S]*--size must look like 4G`));
    expect(lines.join('\n')).toMatch(/--size must look like 4G or 2048M, got '4X'/);
    expect(await readFile(logFile, 'utf8')).toMatch(/--size must look like 4G/);
    expect((await readdir(dir)).sort()).toEqual(['key.pub', 'x.build.log']);
  });
});
