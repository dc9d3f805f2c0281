import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

describe('cluster status on nodes whose machines stopped', () => {
  it('says per node what cluster up will do: resume the state cluster stop saved, boot a disk whose machine ended, make again a node whose disk is gone', async () => {
    const state = join(dir, 'stopped-state');
    await mkdir(join(state, 'lab', 'nodes'), { recursive: true });
    for (const name of ['cni-master1', 'cni-worker1', 'cni-worker2']) {
      const record = { name, provider: 'qemu', box: { name: 'boxcar/lab-worker', version: '1.20261130.0', contentKey: 'k' }, ssh: { host: '127.0.0.1', port: 2222, user: 'vagrant' } };
      await writeFile(join(state, 'lab', 'nodes', `${name}.json`), JSON.stringify(record));
    }
    // What cluster stop leaves (cni-worker1): an overlay holding the boxcar-stopped snapshot, no qemu;
    // what a crash leaves (cni-worker2): an overlay, no qemu, no saved state; cni-master1: nothing at all.
    for (const name of ['cni-worker1', 'cni-worker2']) {
      await mkdir(join(state, 'lab', 'qemu', 'nodes', name), { recursive: true });
      await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(state, 'lab', 'qemu', 'nodes', name, 'disk.qcow2'), '16M']);
    }
    await execa('qemu-img', ['snapshot', '-c', 'boxcar-stopped', join(state, 'lab', 'qemu', 'nodes', 'cni-worker1', 'disk.qcow2')]);
    const status = await boxcar('cluster', 'status', '--profile', 'lab', '--store', join(dir, 'store'), '--state-dir', state, '--json');
    expect(status.code).toBe(1);
    const rows = (JSON.parse(status.stdout) as { name: string; state: string; detail: string }[]).map((row) => [row.name, row.state, row.detail]);
    expect(rows).toEqual([
      ['cni-master1', 'absent', 'its disk is gone (cluster up makes it again from its box)'],
      ['cni-worker1', 'stopped-with-state', 'stopped with its state saved (cluster start or cluster up resumes it)'],
      ['cni-worker2', 'stopped', 'its machine is not running (cluster up boots it from its disk, files kept)'],
    ]);
  });
});

describe("a state directory that is not this user's own", () => {
  it('is refused, every problem named with what to do: writable by everyone, or owned by another user', async () => {
    const root = join(dir, 'shared-state');
    await mkdir(join(root, 'lab'), { recursive: true });
    await chmod(root, 0o777);
    const isRoot = process.getuid?.() === 0;
    // Giving a directory away takes root; as another user only the mode is checked here.
    if (isRoot) await chown(join(root, 'lab'), 65534, 65534);
    const status = await boxcar('cluster', 'status', '--profile', 'lab', '--store', join(dir, 'store'), '--state-dir', root);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain(`the cluster's state directory is not safe to use:\n  ${root} is writable by every user (mode 777): anyone could put sockets or keys in it; chmod o-w ${root}, or use a state directory of your own`);
    if (isRoot) expect(status.stderr).toContain(`\n  ${join(root, 'lab')} belongs to uid 65534, not to you (uid 0): its sockets and logs would be another user's; use a state directory of your own (BOXCAR_STATE_DIR or --state-dir)`);
  });
});
