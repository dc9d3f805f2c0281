import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { ensureKeyPair } from '../keys.ts';
import { acquireLock, processIdentity } from '@boxcar/kit';
import {
  PROJECT_LOCK,
  parseMachineReadable,
  parseSshConfig,
  parseVagrantStatus,
  vagrantCommand,
  VagrantError,
  vagrantNodeDown,
  vagrantNodeUp,
  vagrantSshConfig,
  vagrantStatus,
} from './runner.ts';
import { vagrantfile } from './vagrantfile.ts';

// Output of Vagrant 2.3.4 + vagrant-libvirt 0.11.2 on this machine, kept verbatim.
const STATUS = `1795885490,cni-master1,metadata,provider,libvirt
1795885490,cni-worker1,metadata,provider,libvirt
1795885491,cni-worker2,metadata,provider,libvirt
1795885491,cni-master1,provider-name,libvirt
1795885491,cni-master1,state,not_created
1795885491,cni-master1,state-human-short,not created
1795885491,cni-master1,state-human-long,The Libvirt domain is not created. Run \`vagrant up\` to create it.
1795885491,cni-worker1,provider-name,libvirt
1795885491,cni-worker1,state,running
1795885491,cni-worker1,state-human-short,running
1795885491,cni-worker2,provider-name,libvirt
1795885491,cni-worker2,state,shutoff
1795885491,,ui,info,Current machine states:\\n\\ncni-master1               not created (libvirt)\\n\\nVM%!(VAGRANT_COMMA) run \`vagrant status NAME\`.
`;

const SSH_CONFIG = `Host cni-worker1
  HostName 192.168.121.80
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /root/.cache/boxcar/e2e/bootstrap_ed25519
  IdentitiesOnly yes
  LogLevel FATAL
`;

describe('parsers (pure)', () => {
  it('reads machine-readable rows and undoes the comma and newline escapes', () => {
    const rows = parseMachineReadable(STATUS);
    expect(rows).toHaveLength(13);
    expect(rows[0]).toEqual({ timestamp: 1795885490, target: 'cni-master1', type: 'metadata', data: ['provider', 'libvirt'] });
    const ui = rows.at(-1)!;
    expect(ui.target).toBe('');
    expect(ui.data[1]).toContain('\n\ncni-master1');
    expect(ui.data[1]).toContain('VM, run');
  });

  it('reads each machine\'s state and provider from vagrant status', () => {
    expect(parseVagrantStatus(STATUS)).toEqual({
      'cni-master1': { state: 'not_created', provider: 'libvirt' },
      'cni-worker1': { state: 'running', provider: 'libvirt' },
      'cni-worker2': { state: 'shutoff', provider: 'libvirt' },
    });
    expect(() => parseVagrantStatus('1,cni-x,provider-name,libvirt\n')).toThrow(/no state line for machine cni-x/);
  });

  it('reads host, port, user and key from vagrant ssh-config', () => {
    expect(parseSshConfig(SSH_CONFIG, 'cni-worker1')).toEqual({
      host: '192.168.121.80',
      port: 22,
      user: 'vagrant',
      keyFile: '/root/.cache/boxcar/e2e/bootstrap_ed25519',
    });
  });

  it('takes the block of the asked node and unquotes a key path with spaces', () => {
    const two = `Host other\n  HostName 127.0.0.1\n  User x\n  Port 2200\n  IdentityFile /k\nHost cni-master1\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  IdentityFile "/my keys/id"\n  IdentityFile /second\n`;
    expect(parseSshConfig(two, 'cni-master1')).toEqual({ host: '127.0.0.1', port: 2222, user: 'vagrant', keyFile: '/my keys/id' });
    expect(() => parseSshConfig(two, 'cni-worker9')).toThrow(/no hostname, port, user, identityfile/);
    expect(() => parseSshConfig(SSH_CONFIG.replace('Port 22', 'Port 0'), 'cni-worker1')).toThrow(/Port 0 is not a TCP port/);
  });

  it('runs vagrant directly or inside a network namespace', () => {
    expect(vagrantCommand(['status'])).toEqual(['vagrant', ['status']]);
    expect(vagrantCommand(['up', 'n1'], 'boxcar-e2e-1')).toEqual(['ip', ['netns', 'exec', 'boxcar-e2e-1', 'vagrant', 'up', 'n1']]);
    expect(() => vagrantCommand(['up'], 'a b')).toThrow(/netns: must be 1-64 characters/);
  });
});

// Real vagrant, no VM: machines that do not exist and a libvirt that is not there.
describe('runner against the real vagrant', () => {
  const cluster = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });
  let dir: string;
  let text: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'boxcar-vagrant-runner-test-'));
    const key = await ensureKeyPair(join(dir, 'key'), 'boxcar-test');
    const boxes = Object.fromEntries(cluster.nodes.map((node) => [node.name, { name: node.box, version: '1.0.1', catalogUrl: `file://${dir}/missing/metadata.json` }]));
    // A socket nobody listens on: whatever needs libvirtd fails at once instead of finding a host libvirtd.
    // The lab runs Kubernetes: its Vagrantfile forwards the master's API on 127.0.0.1 (a port the test never opens).
    const api = cluster.kubernetes ? { apiPort: 46_443 } : {};
    text = vagrantfile(cluster, { boxes, privateKeyPath: key.privateKey, ...api, libvirt: { driver: 'qemu', uri: `qemu+unix:///system?socket=${dir}/no-libvirt-sock` } });
    env = { VAGRANT_HOME: join(dir, 'vagrant-home') };
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the Vagrantfile into the state dir and reports every node not created', async () => {
    const stateDir = join(dir, 'state-status');
    expect(await vagrantStatus(cluster, { stateDir, vagrantfileText: text, env })).toEqual({
      'cni-master1': { state: 'not_created', provider: 'libvirt' },
      'cni-worker1': { state: 'not_created', provider: 'libvirt' },
      'cni-worker2': { state: 'not_created', provider: 'libvirt' },
    });
    expect(await readFile(join(stateDir, 'Vagrantfile'), 'utf8')).toBe(text);
    expect(await readFile(join(stateDir, 'logs', 'status.log'), 'utf8')).toMatch(/vagrant status --machine-readable[\s\S]*cni-worker1,state,not_created[\s\S]*=== exit 0/);
  });

  it('leaves a node that was never created alone on down', async () => {
    const stateDir = join(dir, 'state-down');
    expect(await vagrantNodeDown(cluster, 'cni-worker1', { stateDir, vagrantfileText: text, env })).toMatchObject({ destroyed: false });
  });

  it('fails up with the log file and its tail when libvirt cannot be reached', async () => {
    const stateDir = join(dir, 'state-up');
    const lines: string[] = [];
    const error = await vagrantNodeUp(cluster, 'cni-worker1', { stateDir, vagrantfileText: text, env, onLine: (line) => lines.push(line) }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VagrantError);
    const logFile = join(stateDir, 'logs', 'up-cni-worker1.log');
    expect((error as VagrantError).logFile).toBe(logFile);
    expect((error as VagrantError).message).toMatch(/vagrant up cni-worker1 failed \(exit 1\)/);
    const log = await readFile(logFile, 'utf8');
    expect(log).toContain('vagrant --no-tty up cni-worker1 --provider libvirt');
    expect(log).toMatch(/no-libvirt-sock/);
    expect(log).toMatch(/=== exit 1 after/);
    expect(lines.join('\n')).toMatch(/no-libvirt-sock/);
  });

  it('runs two ups of one project one after the other, the waiting one saying what it waits for', async () => {
    const stateDir = join(dir, 'state-two-ups');
    const nodes = ['cni-worker1', 'cni-worker2'];
    const seen = Object.fromEntries(nodes.map((node) => [node, { waits: [] as string[], firstLine: 0, lastLine: 0 }]));
    const results = await Promise.allSettled(
      nodes.map((node) =>
        vagrantNodeUp(cluster, node, {
          stateDir,
          vagrantfileText: text,
          env,
          onLine: (line) => {
            const mine = seen[node]!;
            if (line.startsWith('waiting for the Vagrant project')) mine.waits.push(line);
            else {
              mine.firstLine ||= Date.now();
              mine.lastLine = Date.now();
            }
          },
        }),
      ),
    );
    // Both fail (no libvirtd), each on its own; whichever took the lock second ran only after the other.
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    const [winner, waiter] = [...nodes].sort((a, b) => seen[a]!.firstLine - seen[b]!.firstLine);
    expect(seen[waiter!]!.waits).toEqual([expect.stringMatching(new RegExp(`^waiting for the Vagrant project \\(held by pid \\d+: vagrant up ${winner}\\)$`))]);
    expect(seen[winner!]!.waits).toEqual([]);
    expect(seen[waiter!]!.firstLine).toBeGreaterThanOrEqual(seen[winner!]!.lastLine);
    await expect(stat(join(stateDir, PROJECT_LOCK))).rejects.toThrow(/ENOENT/);
  });

  it('takes over the project lock of a process that is gone', async () => {
    const stateDir = join(dir, 'state-stale-lock');
    const lockFile = join(stateDir, PROJECT_LOCK);
    await mkdir(stateDir, { recursive: true });
    const gone = execa('true');
    await gone;
    // As a process of this machine writes it (host, boot, pid namespace), its pid gone.
    await writeFile(lockFile, JSON.stringify({ ...(await processIdentity(process.pid)), startTicks: undefined, pid: gone.pid, createdAt: new Date().toISOString(), purpose: 'vagrant up cni-worker1' }));
    const release = await acquireLock(lockFile, { purpose: 'test' });
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toMatchObject({ pid: process.pid, purpose: 'test' });
    await release();
    await expect(stat(lockFile)).rejects.toThrow(/ENOENT/);
  });

  it('fails ssh-config for a machine that is not running', async () => {
    const stateDir = join(dir, 'state-ssh');
    await expect(vagrantSshConfig(cluster, 'cni-worker1', { stateDir, vagrantfileText: text, env })).rejects.toThrow(/vagrant --no-tty ssh-config cni-worker1 failed/);
  });

  it('refuses unknown nodes, non-Vagrant providers and a state dir without a Vagrantfile', async () => {
    await expect(vagrantNodeUp(cluster, 'cni-worker9', { stateDir: dir, vagrantfileText: text })).rejects.toThrow(/has no node "cni-worker9"/);
    await expect(vagrantStatus(resolveClusterOrThrow({ profile: 'lab' }), { stateDir: dir })).rejects.toThrow(/provider "qemu" is not run through Vagrant/);
    await expect(vagrantStatus(cluster, { stateDir: join(dir, 'empty') })).rejects.toThrow(/Vagrantfile does not exist: pass vagrantfileText/);
  });
});
