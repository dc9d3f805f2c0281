import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@boxcar/model';

// `cluster up` refuses before it synthesizes or runs terraform when nodes still run on another
// provider than the configuration names: it says which and what to run. Real CLI, empty store.
const BOXCAR = `${REPO_ROOT}/apps/cli/bin/boxcar.mjs`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-cli-cluster-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function boxcar(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BOXCAR_')));
  const result = await execa(process.execPath, [BOXCAR, ...args], { cwd: dir, env, extendEnv: false, reject: false });
  return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('cluster up after a provider change', () => {
  it('refuses while nodes run on the old provider, naming them and the commands to run', async () => {
    const state = join(dir, 'state');
    await mkdir(join(state, 'lab', 'nodes'), { recursive: true });
    const record = { name: 'cni-worker1', provider: 'qemu', box: { name: 'boxcar/lab-worker', version: '1.20261130.0', contentKey: 'k' }, ssh: { host: '127.0.0.1', port: 2222, user: 'vagrant' } };
    await writeFile(join(state, 'lab', 'nodes', 'cni-worker1.json'), JSON.stringify(record));
    const up = await boxcar('cluster', 'up', '--profile', 'lab', '--provider', 'libvirt', '--store', join(dir, 'store'), '--state-dir', state);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain('cluster lab: cni-worker1 run on qemu, but the configuration now says libvirt.');
    expect(up.stderr).toContain(`npx nx run cluster:down --profile lab --provider libvirt --store ${join(dir, 'store')} --state-dir ${state}`);
    // Nothing was synthesized: the refusal comes first.
    await expect(execa('test', ['-e', join(state, 'lab', 'cdktf.out')])).rejects.toThrow();
  });
});

describe('cluster snapshot, stop and start on a cluster that is not up', () => {
  const options = () => ['--profile', 'lab', '--store', join(dir, 'store'), '--state-dir', join(dir, 'snap-state')];

  it('refuses an unknown action and a missing or bad name, saying what is allowed', async () => {
    const unknown = await boxcar('cluster', 'snapshot', 'take', 'x', ...options());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('cluster snapshot: say save <name>, restore <name>, delete <name> or list, not "take"');
    const missing = await boxcar('cluster', 'snapshot', 'save', ...options());
    expect(missing.stderr).toContain('cluster snapshot save: a snapshot name is required');
    const bad = await boxcar('cluster', 'snapshot', 'save', 'Bad Name', ...options());
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`snapshot name "Bad Name": 1 to 63 characters, lowercase letters, digits`);
    const reserved = await boxcar('cluster', 'snapshot', 'save', 'boxcar-stopped', ...options());
    expect(reserved.stderr).toContain('reserved for cluster stop/start');
  });

  it('says which node is not up', async () => {
    const save = await boxcar('cluster', 'snapshot', 'save', 'monday', ...options());
    expect(save.code).toBe(1);
    expect(save.stderr).toContain('cluster lab: cannot take a snapshot: node cni-master1 is not up (bring the cluster up first: cluster up)');
    const stop = await boxcar('cluster', 'stop', ...options());
    expect(stop.stderr).toContain('cluster lab: cannot stop: node cni-master1 is not up');
  });

  it('has no snapshot to restore or list yet', async () => {
    const restore = await boxcar('cluster', 'snapshot', 'restore', 'monday', ...options());
    expect(restore.stderr).toContain('cluster lab has no snapshot "monday"; it has none (cluster snapshot save <name> takes one)');
    const list = await boxcar('cluster', 'snapshot', 'list', ...options());
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('cluster lab has no snapshots');
  });
});

describe('cluster up on a stopped cluster', () => {
  it('refuses, naming the nodes stopped with their state and the command that resumes them', async () => {
    const state = join(dir, 'stopped-state');
    const nodeDir = join(state, 'lab', 'qemu', 'nodes', 'cni-worker1');
    await mkdir(join(state, 'lab', 'nodes'), { recursive: true });
    await mkdir(nodeDir, { recursive: true });
    const record = { name: 'cni-worker1', provider: 'qemu', box: { name: 'boxcar/lab-worker', version: '1.20261130.0', contentKey: 'k' }, ssh: { host: '127.0.0.1', port: 2222, user: 'vagrant' } };
    await writeFile(join(state, 'lab', 'nodes', 'cni-worker1.json'), JSON.stringify(record));
    // What cluster stop leaves: an overlay holding the boxcar-stopped snapshot, no qemu.
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(nodeDir, 'disk.qcow2'), '16M']);
    await execa('qemu-img', ['snapshot', '-c', 'boxcar-stopped', join(nodeDir, 'disk.qcow2')]);
    const up = await boxcar('cluster', 'up', '--profile', 'lab', '--store', join(dir, 'store'), '--state-dir', state);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(`cluster lab: cni-worker1 stopped with their state saved (cluster stop); resume them first: npx nx run cluster:start --profile lab --store ${join(dir, 'store')} --state-dir ${state}`);
  });
});
