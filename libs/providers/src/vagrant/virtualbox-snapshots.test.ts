import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { resolveClusterOrThrow } from '@boxcar/model';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProviderContext } from '../provider.ts';
import { vagrantProvider } from './node-provider.ts';
import { parseSnapshotList, virtualboxRunState } from './virtualbox-snapshots.ts';

// VirtualBox cannot run here. What the virtualbox provider asks Vagrant and VirtualBox is checked
// against a stand-in `vagrant` and `VBoxManage` on PATH (a TEST DOUBLE of both, at the VirtualBox
// boundary) that record their arguments and keep each machine's state and snapshots in a JSON file,
// the way VirtualBox changes them; and every option boxcar passes is checked against the help of the
// real Vagrant installed here (the last test), so a flag Vagrant does not have fails.

const cluster = resolveClusterOrThrow({ profile: 'xenial-2016', provider: 'virtualbox' });
const nodes = cluster.nodes.map((node) => node.name);
let dir: string;
let context: ProviderContext;
let path: string | undefined;

const DOUBLE = `#!${process.execPath}
// TEST DOUBLE of vagrant (argv[1] ends in /vagrant) and VBoxManage: records argv, changes state.json as VirtualBox would.
const { appendFileSync, readFileSync, writeFileSync } = require('node:fs');
const dir = "DIR";
const program = process.argv[1].split('/').pop();
const args = process.argv.slice(2).filter((arg) => arg !== '--no-tty' && arg !== '--machine-readable');
appendFileSync(dir + '/calls', JSON.stringify([program, ...process.argv.slice(2)]) + '\\n');
const state = JSON.parse(readFileSync(dir + '/state.json', 'utf8'));
const fail = (message) => { process.stderr.write(message + '\\n'); process.exit(1); };
const save = () => writeFileSync(dir + '/state.json', JSON.stringify(state));
const row = (node, ...data) => console.log(['1700000000', node, ...data].join(','));
if (state.fail && args.join(' ').startsWith(state.fail)) fail('The VM failed: ' + state.fail);
if (program === 'VBoxManage') {
  const [verb, id, action] = args;
  const name = Object.keys(state.machines).find((node) => state.machines[node].id === id);
  if (verb !== 'controlvm' || !name) fail('VBoxManage: error: Could not find a registered machine with UUID {' + id + '}');
  const machine = state.machines[name];
  if (action === 'pause') { if (machine.state !== 'running') fail('VBoxManage: error: Machine in invalid state ' + machine.state); machine.state = 'paused'; }
  else if (action === 'savestate') { if (!['running', 'paused'].includes(machine.state)) fail('VBoxManage: error: Machine in invalid state ' + machine.state); machine.state = 'saved'; }
  else fail('VBoxManage double: unknown ' + action);
  save(); process.exit(0);
}
const [verb, ...rest] = args;
if (verb === 'status') { for (const [node, machine] of Object.entries(state.machines)) { row(node, 'provider-name', 'virtualbox'); row(node, 'state', machine.state); } process.exit(0); }
const positional = rest.filter((arg) => !arg.startsWith('-'));
if (verb === 'resume') {
  const machine = state.machines[positional[0]];
  if (machine.state === 'paused' || machine.state === 'saved') machine.state = 'running';
  save(); process.exit(0);
}
if (verb === 'snapshot') {
  const [sub, node, name] = positional;
  const machine = state.machines[node];
  if (sub === 'list') {
    if (!machine.snapshots.length) { row(node, 'ui', 'output', 'No snapshots have been taken yet!'); row(node, 'ui', 'detail', 'You can take a snapshot using \`vagrant snapshot save\`. Note that\\\\nnot all providers support this yet.'); }
    else { row(node, 'ui', 'output', ''); for (const snapshot of machine.snapshots) row(node, 'ui', 'detail', snapshot.replaceAll(',', '%!(VAGRANT_COMMA)')); }
    process.exit(0);
  }
  if (sub === 'save') {
    if (machine.snapshots.includes(name) && !rest.includes('--force')) fail('A snapshot with the name "' + name + '" already exists.');
    machine.snapshots = [...machine.snapshots.filter((s) => s !== name), name];
  } else if (sub === 'restore') {
    if (!machine.snapshots.includes(name)) fail('The snapshot name "' + name + '" was not found for the virtual machine "' + node + '".');
    // Vagrant powers the machine off, VirtualBox restores the snapshot's saved state; --no-start leaves it saved.
    machine.state = rest.includes('--no-start') ? 'saved' : 'running';
  } else if (sub === 'delete') {
    machine.snapshots = machine.snapshots.filter((s) => s !== name);
  } else fail('vagrant double: unknown snapshot ' + sub);
  save(); process.exit(0);
}
fail('vagrant double: unknown ' + args.join(' '));
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-vbox-'));
  const bin = join(dir, 'bin');
  await mkdir(bin);
  for (const program of ['vagrant', 'VBoxManage']) {
    await writeFile(join(bin, program), DOUBLE.replace('"DIR"', JSON.stringify(dir)));
    await chmod(join(bin, program), 0o755);
  }
  const stateDir = join(dir, 'vagrant');
  await mkdir(stateDir);
  await writeFile(join(stateDir, 'Vagrantfile'), '# the generated Vagrantfile (not read by the double)\n');
  for (const node of nodes) {
    await mkdir(join(stateDir, '.vagrant', 'machines', node, 'virtualbox'), { recursive: true });
    await writeFile(join(stateDir, '.vagrant', 'machines', node, 'virtualbox', 'id'), `uuid-${node}\n`);
  }
  context = { cluster, stateDir };
  path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
});
afterAll(async () => {
  process.env.PATH = path;
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await writeFile(join(dir, 'calls'), '');
  await given({});
});

async function given(overrides: { fail?: string; states?: Record<string, string>; snapshots?: string[] }): Promise<void> {
  const machines = Object.fromEntries(nodes.map((node) => [node, { id: `uuid-${node}`, state: overrides.states?.[node] ?? 'running', snapshots: overrides.snapshots ?? [] }]));
  await writeFile(join(dir, 'state.json'), JSON.stringify({ machines, ...(overrides.fail && { fail: overrides.fail }) }));
}
async function argvs(): Promise<string[][]> {
  return (await readFile(join(dir, 'calls'), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as string[]);
}
async function calls(): Promise<string[]> {
  return (await argvs()).map((argv) => argv.join(' '));
}

describe('virtualbox snapshots through Vagrant (test double of vagrant and VBoxManage)', () => {
  const provider = vagrantProvider('virtualbox');
  const snapshots = provider.snapshots;
  const node = 'cni-worker1';
  const statusOf = async () => (await provider.status(context))[node];

  it("maps Vagrant's VirtualBox states: saved is stopped with its state", () => {
    expect(['running', 'paused', 'saved', 'poweroff', 'aborted', 'not_created'].map(virtualboxRunState)).toEqual(['running', 'paused', 'stopped-with-state', 'stopped', 'stopped', 'absent']);
  });

  it('reads snapshot names from `vagrant snapshot list --machine-readable`, none when Vagrant says so', () => {
    const none = '1700000000,n,ui,output,No snapshots have been taken yet!\n1700000000,n,ui,detail,You can take a snapshot using `vagrant snapshot save`.';
    expect(parseSnapshotList(none)).toEqual([]);
    expect(parseSnapshotList('1700000000,n,ui,output,\n1700000000,n,ui,detail,monday\n1700000000,n,ui,detail,a%!(VAGRANT_COMMA)b\n')).toEqual(['monday', 'a,b']);
  });

  it('save: pause through VBoxManage, a replacing `vagrant snapshot save`, resume through Vagrant', async () => {
    await snapshots.pause(context, node);
    expect(await statusOf()).toBe('paused');
    await snapshots.save(context, node, 'monday');
    await snapshots.save(context, node, 'monday');
    await snapshots.resume(context, node);
    expect(await statusOf()).toBe('running');
    expect(await snapshots.list(context, node)).toEqual([{ name: 'monday' }]);
    expect((await calls()).filter((call) => !call.includes('status'))).toEqual([
      'VBoxManage controlvm uuid-cni-worker1 pause',
      'vagrant --no-tty snapshot save --force cni-worker1 monday',
      'vagrant --no-tty snapshot save --force cni-worker1 monday',
      'vagrant --no-tty resume --no-provision cni-worker1',
      'vagrant snapshot list cni-worker1 --machine-readable',
    ]);
  });

  it('restore leaves the machine saved (not started); resume starts it from the restored state', async () => {
    await given({ snapshots: ['monday'] });
    await snapshots.pause(context, node);
    await snapshots.restore(context, node, 'monday');
    expect(await statusOf()).toBe('stopped-with-state');
    await snapshots.resume(context, node);
    expect(await statusOf()).toBe('running');
    expect(await calls()).toContain('vagrant --no-tty snapshot restore --no-provision --no-start cni-worker1 monday');
  });

  it('stop saves the paused state through VBoxManage; start is `vagrant resume`, with the node reached where it was', async () => {
    await snapshots.pause(context, node);
    await snapshots.suspend(context, node);
    expect(await statusOf()).toBe('stopped-with-state');
    expect(await snapshots.wake(context, node)).toBeUndefined();
    expect(await statusOf()).toBe('running');
    expect((await calls()).filter((call) => !call.includes('status'))).toEqual([
      'VBoxManage controlvm uuid-cni-worker1 pause',
      'VBoxManage controlvm uuid-cni-worker1 savestate',
      'vagrant --no-tty resume --no-provision cni-worker1',
    ]);
  });

  it('delete removes a snapshot the machine has and leaves one it lacks alone', async () => {
    await given({ snapshots: ['monday'] });
    await snapshots.remove(context, node, 'tuesday');
    await snapshots.remove(context, node, 'monday');
    expect(await snapshots.list(context, node)).toEqual([]);
    expect((await calls()).filter((call) => call.includes('delete'))).toEqual(['vagrant --no-tty snapshot delete cni-worker1 monday']);
  });

  it('failures name the node, the command and what VirtualBox or Vagrant said; the Vagrant log is kept', async () => {
    await given({ states: { [node]: 'poweroff' } });
    await expect(snapshots.pause(context, node)).rejects.toThrow(/virtualbox node cni-worker1: VBoxManage controlvm uuid-cni-worker1 pause: VBoxManage: error: Machine in invalid state poweroff/);
    await expect(snapshots.restore(context, node, 'nope')).rejects.toThrow(/vagrant snapshot-restore cni-worker1 failed \(exit 1\); log: .*snapshot-restore-cni-worker1\.log\n.*"nope" was not found/);
    expect(await readFile(join(context.stateDir, 'logs', 'snapshot-restore-cni-worker1.log'), 'utf8')).toContain('was not found');
    await expect(snapshots.suspend({ ...context, stateDir: join(dir, 'elsewhere') }, node)).rejects.toThrow(/cni-worker1: no VirtualBox machine recorded in .*elsewhere\/\.vagrant\/machines\/cni-worker1\/virtualbox\/id \(is the node up\?\)/);
  });

  it('every option boxcar gives vagrant exists in the installed Vagrant (real vagrant, its help)', async () => {
    // Every entry point once, through the double, for the argv boxcar gives vagrant.
    await given({ snapshots: ['old'] });
    await snapshots.pause(context, node);
    await snapshots.save(context, node, 'monday');
    await snapshots.restore(context, node, 'monday');
    await snapshots.resume(context, node);
    await snapshots.list(context, node);
    await snapshots.remove(context, node, 'old');
    await snapshots.pause(context, node);
    await snapshots.suspend(context, node);
    await snapshots.wake(context, node);
    await provider.status(context);
    const verbs = new Map<string, Set<string>>();
    for (const argv of (await argvs()).filter(([program]) => program === 'vagrant')) {
      const args = argv.slice(1);
      const verb = args.filter((arg) => !arg.startsWith('-')).slice(0, args.includes('snapshot') ? 2 : 1).join(' ');
      for (const flag of args.filter((arg) => arg.startsWith('--'))) verbs.set(verb, (verbs.get(verb) ?? new Set()).add(flag));
    }
    expect([...verbs.keys()].sort()).toEqual(['resume', 'snapshot delete', 'snapshot list', 'snapshot restore', 'snapshot save', 'status']);
    for (const [verb, flags] of verbs) {
      const help = await execa('vagrant', [...verb.split(' '), '-h'], { env: { PATH: path!, VAGRANT_CHECKPOINT_DISABLE: '1', HOME: dir }, reject: false, stdin: 'ignore' });
      expect(String(help.stdout), `vagrant ${verb} -h`).toContain(`Usage: vagrant ${verb}`);
      // "--[no-]provision" in the help covers --no-provision.
      for (const flag of flags) expect(String(help.stdout).replace(/--\[no-\](\S+)/g, '--$1 --no-$1'), `vagrant ${verb} ${flag}`).toMatch(new RegExp(`(^|\\s)${flag}(\\s|,|$)`, 'm'));
    }
  }, 60_000);
});
