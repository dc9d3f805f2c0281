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
