import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSshMaster, HostKeyMismatchError, sshArgs, sshRun, waitForSsh, type SshTarget } from './ssh.ts';

// boxcar's ssh against a real OpenSSH server on 127.0.0.1 (started here, with host keys made here):
// pinned host keys, a changed host key refused, one shared connection, and the user's own ssh config
// ignored. The guests' side of the same paths runs in the lab end-to-end test.

const SSHD = '/usr/sbin/sshd';
const dir = mkdtempSync(join(tmpdir(), 'boxcar-sshd-'));
const user = userInfo().username;
let sshd: ChildProcess | undefined;
let port = 0;

async function keygen(name: string): Promise<string> {
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir, name)]);
  return readFileSync(join(dir, `${name}.pub`), 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

/** (Re)starts sshd on the same port with the given host key. */
async function startSshd(hostKey: string): Promise<void> {
  if (sshd) {
    sshd.kill('SIGTERM');
    await new Promise((done) => sshd!.once('exit', done));
  }
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, hostKey)}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true });
  sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: 'ignore' });
  await waitForSsh({ ...target(), timeoutMs: 20_000, intervalMs: 200 });
}

function target(extra: Partial<SshTarget> = {}): SshTarget {
  return { host: '127.0.0.1', port, user, keyFile: join(dir, 'client'), ...extra };
}

const pinned = (firstContact?: 'record') => ({ hostKey: { knownHosts: join(dir, 'known_hosts'), alias: 'boxcar-test-node1', ...(firstContact ? { firstContact } : {}) } });

describe.skipIf(!existsSync(SSHD))(`boxcar's ssh against a real sshd on 127.0.0.1${existsSync(SSHD) ? '' : ' (skipped: no /usr/sbin/sshd; tools/install-prereqs.sh installs openssh-server)'}`, () => {
  let hostKeyA = '';
  let hostKeyB = '';

  beforeAll(async () => {
    hostKeyA = await keygen('host-a');
    hostKeyB = await keygen('host-b');
    writeFileSync(join(dir, 'authorized_keys'), `${await keygen('client')}\n`);
    const probe = await execa('python3', ['-c', 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()']);
    port = Number(probe.stdout);
    await startSshd('host-a');
  });

  afterAll(async () => {
    sshd?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a pinned host key is accepted', async () => {
    writeFileSync(join(dir, 'known_hosts'), `boxcar-test-node1 ${hostKeyA}\n`);
    expect((await sshRun(target(pinned()), 'echo pinned')).stdout).toBe('pinned\n');
  });

  it('a node presenting another host key than the one recorded is refused, with what to do, even where failure is allowed', async () => {
    writeFileSync(join(dir, 'known_hosts'), `boxcar-test-node1 ${hostKeyB}\n`);
    const error = await sshRun(target(pinned()), 'true', { allowFailure: true }).catch((failure: Error) => failure);
    expect(error).toBeInstanceOf(HostKeyMismatchError);
    expect((error as Error).message).toContain('presented an SSH host key other than the one boxcar recorded for it');
    expect((error as Error).message).toContain('cluster:down');
    // Waiting for SSH does not wait out a changed key: it fails at once.
    const started = Date.now();
    await expect(waitForSsh({ ...target(pinned()), timeoutMs: 30_000 })).rejects.toBeInstanceOf(HostKeyMismatchError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('an unknown host is refused when its key must come from a trusted channel', async () => {
    writeFileSync(join(dir, 'known_hosts'), '');
    await expect(sshRun(target(pinned()), 'true')).rejects.toBeInstanceOf(HostKeyMismatchError);
  });

  it('where there is no such channel, the first contact records the key, and a later change is refused', async () => {
    rmSync(join(dir, 'known_hosts'), { force: true });
    await sshRun(target(pinned('record')), 'true');
    expect(readFileSync(join(dir, 'known_hosts'), 'utf8')).toContain(`boxcar-test-node1 ${hostKeyA}`);
    await startSshd('host-b');
    await expect(sshRun(target(pinned('record')), 'true')).rejects.toBeInstanceOf(HostKeyMismatchError);
    await startSshd('host-a');
  });

  it('commands to one target share one connection; closing it ends the master', async () => {
    writeFileSync(join(dir, 'known_hosts'), `boxcar-test-node1 ${hostKeyA}\n`);
    const controlPath = join(dir, 'node1.cluster');
    const shared = target({ ...pinned(), controlPath });
    // The sshd sees one connection: every command reports the same client port.
    const ports = new Set<string>();
    for (let i = 0; i < 3; i += 1) ports.add((await sshRun(shared, 'echo "${SSH_CLIENT}" | cut -d" " -f2')).stdout.trim());
    expect(ports.size).toBe(1);
    expect(existsSync(controlPath)).toBe(true);
    await closeSshMaster(controlPath);
    for (let waited = 0; existsSync(controlPath) && waited < 5_000; waited += 100) await sleep(100);
    expect(existsSync(controlPath)).toBe(false);
  });

  it("the user's ~/.ssh/config (ControlMaster, ProxyJump, IdentityFile under Host *) changes nothing", async () => {
    // ssh reads the config of the user's passwd home, not $HOME: a private mount namespace puts a hostile
    // one there for this test alone.
    const hostile = join(dir, 'hostile-ssh');
    mkdirSync(hostile, { recursive: true });
    writeFileSync(
      join(hostile, 'config'),
      ['Host *', '  ProxyJump nobody@127.0.0.1:1', '  ControlMaster auto', '  ControlPath /nonexistent/boxcar/%C', '  IdentityFile /nonexistent/id_ed25519', '  Port 1', ''].join('\n'),
    );
    writeFileSync(join(dir, 'known_hosts'), `boxcar-test-node1 ${hostKeyA}\n`);
    const home = userInfo().homedir;
    mkdirSync(join(home, '.ssh'), { recursive: true });
    const inNamespace = (args: string[]) =>
      execa('unshare', ['--mount', 'sh', '-c', `mount --bind "$0" "$1/.ssh" && shift && exec ssh "$@"`, hostile, home, ...args], { reject: false, stdin: 'ignore' });
    const withBoxcarArgs = await inNamespace([...sshArgs(target(pinned())), 'echo fine']);
    expect(withBoxcarArgs.stdout, String(withBoxcarArgs.stderr)).toBe('fine');
    // The same command without -F /dev/null meets the hostile config and fails: the check can fail.
    const args = sshArgs(target(pinned()));
    const withoutF = args.filter((arg, index) => arg !== '-F' && args[index - 1] !== '-F');
    expect((await inNamespace([...withoutF, 'echo fine'])).exitCode).not.toBe(0);
  });
});

describe('the first-boot channel, host side', () => {
  it('hands over exactly one OpenSSH public key line, and refuses anything else', async () => {
    const { firstBootStrings } = await import('./provider.ts');
    expect(firstBootStrings({ authorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB boxcar-cluster-lab\n' })).toEqual(['boxcar.authorized_key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB boxcar-cluster-lab']);
    expect(() => firstBootStrings({ authorizedKey: '-----BEGIN OPENSSH PRIVATE KEY-----' })).toThrow(/must be one OpenSSH public key line/);
    expect(() => firstBootStrings({ authorizedKey: 'ssh-ed25519 AAAA\nssh-rsa BBBB' })).toThrow(/must be one OpenSSH public key line/);
  });

  it('reads the host key only from a whole console line', async () => {
    const { HOST_KEY_LINE } = await import('./provider.ts');
    const keys = (text: string) => [...text.matchAll(HOST_KEY_LINE)].map((match) => match[1]);
    expect(keys('boot...\r\nboxcar-host-key: ssh-ed25519 AAAAC3Nza+/=\r\nlogin: ')).toEqual(['ssh-ed25519 AAAAC3Nza+/=']);
    // Half a line (the console still printing it) is not a key yet.
    expect(keys('boxcar-host-key: ssh-ed25519 AAAAC3Nz')).toEqual([]);
  });
});
