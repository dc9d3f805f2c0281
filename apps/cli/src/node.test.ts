import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@boxcar/model';

// The `node` steps as the stack's provisioners run them, through the installed entry point, on an
// empty store and state dir: what they print and their exit codes, up to where a VM would boot.
const BOXCAR = `${REPO_ROOT}/apps/cli/bin/boxcar.mjs`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-cli-node-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function node(...args: string[]) {
  // Nothing of the caller's boxcar settings may reach the CLI.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BOXCAR_')));
  const where = ['--profile', 'lab', '--store', join(dir, 'store'), '--state-dir', join(dir, 'state')];
  const result = await execa(process.execPath, [BOXCAR, 'node', ...args, ...where], { cwd: dir, env, extendEnv: false, reject: false });
  // An error prints its message only: its stack only with --verbose.
  return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('boxcar node up / configure / down', () => {
  it('down of a node that is not running reports it down', async () => {
    expect(await node('down', 'cni-worker1')).toEqual({ code: 0, stdout: 'cni-worker1 is down', stderr: '' });
  });

  // A user's mistake (a step run too early, a name that is no node) is said as it is, not as a crash.
  it('each step names what is missing, with exit 1', async () => {
    const [up, configure, down] = await Promise.all([node('up', 'cni-worker1'), node('configure', 'cni-worker1'), node('down', 'nosuch')]);
    expect(up).toEqual({ code: 1, stdout: '', stderr: `box boxcar/lab-worker (for cni-worker1) is not in the store file://${join(dir, 'store')}: bake it first (nx run images:bake --profile lab)` });
    expect(configure).toEqual({ code: 1, stdout: '', stderr: `node cni-worker1 has not been brought up (no ${join(dir, 'state', 'lab', 'nodes', 'cni-worker1.json')}): run node up first` });
    expect(down).toEqual({ code: 1, stdout: '', stderr: 'cluster lab has no node "nosuch"; nodes: cni-master1, cni-worker1, cni-worker2' });
  });

  it('--verbose, anywhere on the command line, adds the stack', async () => {
    const result = await node('down', '--verbose', 'nosuch');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^cluster lab has no node "nosuch"; nodes: cni-master1, cni-worker1, cni-worker2\n {4}at /);
  });

  it('a missing node name is a usage error (2), after a bad config (3) is reported', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"name": ');
    const [up, configure] = await Promise.all([node('up'), node('configure', '--config', bad)]);
    expect(up).toEqual({ code: 2, stdout: '', stderr: 'a node name is required' });
    expect(configure).toEqual({ code: 3, stdout: '', stderr: `${bad}:1:10: invalid JSON: expected a value, found end of input` });
  });

  it('a node name that is no hostname label is a usage error (2) for every step, and nothing outside the state folder is touched', async () => {
    const outside = join(dir, 'x.json');
    await writeFile(outside, '{}');
    const steps = await Promise.all(['up', 'start', 'configure', 'down'].map((verb) => node(verb, '../../x')));
    for (const step of steps) expect(step).toEqual({ code: 2, stdout: '', stderr: `node name "../../x": lowercase letters, digits and '-', not starting or ending with '-', at most 63 characters` });
    expect(await readFile(outside, 'utf8')).toBe('{}');
  });

  it('start of a node never brought up says cluster up makes it (exit 1)', async () => {
    expect(await node('start', 'cni-worker2')).toEqual({ code: 1, stdout: '', stderr: 'node cni-worker2: it has no record (it was taken down, or never brought up); nothing to start from: cluster up makes it again from its box (its VM is replaced)' });
  });

  it('up takes --box-version, down does not', async () => {
    const [up, down] = await Promise.all([node('up', '--help'), node('down', 'x', '--box-version', '1')]);
    expect(up).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Usage: boxcar node up <node> \[options\]\n[^]*--box-version <box-version> +box version to boot/) });
    expect(down).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining("Unknown option '--box-version'") });
  });
});
