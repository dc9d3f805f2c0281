import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveClusterOrThrow } from '@boxcar/model';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ProviderContext } from '../provider.ts';
import { dropLibvirtState, libvirtRunState, libvirtSnapshots, virshArgs } from './libvirt-snapshots.ts';

// What the libvirt provider asks libvirt, checked against a stand-in virsh on PATH that records its
// arguments and answers from a small state file (a TEST DOUBLE of virsh). Against a real libvirtd: the
// lab e2e's libvirt steps (L3b).

const cluster = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt', libvirt: { uri: 'qemu+unix:///system?socket=/run/x/libvirt-sock' } });
const context: ProviderContext = { cluster, stateDir: '/nonexistent' };
let dir: string;
let path: string | undefined;

const FAKE_VIRSH = `#!${process.execPath}
const { appendFileSync, readFileSync } = require('node:fs');
const dir = ${JSON.stringify('DIR')};
const args = process.argv.slice(2);
appendFileSync(dir + '/calls', JSON.stringify(args) + '\\n');
const state = JSON.parse(readFileSync(dir + '/state.json', 'utf8'));
const verb = args[2];
if (state.fail === verb) { process.stderr.write('error: ' + verb + ' failed'); process.exit(1); }
if (verb === 'domstate') { if (!state.domstate) { process.stderr.write('error: no domain'); process.exit(1); } console.log(state.domstate); }
if (verb === 'dominfo') console.log('Name: lab-cni-worker1\\nManaged save:   ' + (state.managedSave ? 'yes' : 'no'));
if (verb === 'snapshot-list') console.log((state.snapshots || []).join('\\n'));
if (verb === 'domblklist') console.log(' Type   Device   Target   Source\\n---\\n file   disk     vda      /nonexistent/disk.qcow2');
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-virsh-'));
  await writeFile(join(dir, 'virsh'), FAKE_VIRSH.replace('"DIR"', JSON.stringify(dir)));
  await chmod(join(dir, 'virsh'), 0o755);
  path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
});
afterAll(async () => {
  process.env.PATH = path;
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => writeFile(join(dir, 'calls'), ''));

const given = (state: Record<string, unknown>) => writeFile(join(dir, 'state.json'), JSON.stringify(state));
const calls = async () => (await readFile(join(dir, 'calls'), 'utf8')).split('\n').filter(Boolean).map((line) => (JSON.parse(line) as string[]).slice(2).join(' '));

describe('libvirt snapshots through virsh', () => {
  const snapshots = libvirtSnapshots();

  it("talks to the cluster's libvirt URI about the domain vagrant-libvirt made", () => {
    expect(virshArgs(cluster, ['suspend', 'lab-cni-worker1'])).toEqual(['-c', 'qemu+unix:///system?socket=/run/x/libvirt-sock', 'suspend', 'lab-cni-worker1']);
    expect(virshArgs(resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' }), ['list'])).toEqual(['-c', 'qemu:///system', 'list']);
  });

  it('maps domain states, a managed save being stopped-with-state', async () => {
    for (const [state, expected] of [
      [{ domstate: 'running' }, 'running'],
      [{ domstate: 'paused' }, 'paused'],
      [{ domstate: 'shut off', managedSave: true }, 'stopped-with-state'],
      [{ domstate: 'shut off' }, 'stopped'],
      [{}, 'absent'],
    ] as const) {
      await given(state);
      expect(await libvirtRunState(context, 'cni-worker1'), JSON.stringify(state)).toBe(expected);
    }
  });

  it('replaces a snapshot of the same name, reverts paused, removes only what is there', async () => {
    await given({ snapshots: ['monday'] });
    await snapshots.pause(context, 'cni-worker1');
    await snapshots.save(context, 'cni-worker1', 'monday');
    await snapshots.restore(context, 'cni-worker1', 'monday');
    await snapshots.remove(context, 'cni-worker1', 'tuesday');
    await snapshots.resume(context, 'cni-worker1');
    expect(await calls()).toEqual([
      'suspend lab-cni-worker1',
      'snapshot-list --domain lab-cni-worker1 --name',
      'snapshot-delete --domain lab-cni-worker1 --snapshotname monday',
      'snapshot-create-as --domain lab-cni-worker1 --name monday --atomic',
      'snapshot-revert --domain lab-cni-worker1 --snapshotname monday --paused',
      'snapshot-list --domain lab-cni-worker1 --name',
      'resume lab-cni-worker1',
    ]);
    expect((await snapshots.list(context, 'cni-worker1')).map((snapshot) => snapshot.name)).toEqual(['monday']);
  });

  it('stops through a managed save and starts from it paused, the address unchanged', async () => {
    await given({});
    await snapshots.suspend(context, 'cni-worker1');
    expect(await snapshots.wake(context, 'cni-worker1')).toBeUndefined();
    expect(await calls()).toEqual(['managedsave lab-cni-worker1 --paused', 'start lab-cni-worker1 --paused']);
  });

  it("names the node and virsh's own error when libvirt refuses", async () => {
    await given({ fail: 'snapshot-create-as' });
    await expect(snapshots.save(context, 'cni-worker1', 'monday')).rejects.toThrow(/^libvirt node cni-worker1: virsh snapshot-create-as --domain lab-cni-worker1 --name monday --atomic: error: snapshot-create-as failed$/);
  });

  it('clears snapshots and a managed save before a domain is destroyed, and nothing where there is no domain', async () => {
    await given({ snapshots: ['a', 'b'] });
    await dropLibvirtState(cluster, 'cni-worker1');
    expect(await calls()).toEqual([
      'snapshot-list --domain lab-cni-worker1 --name',
      'snapshot-delete --domain lab-cni-worker1 --snapshotname a',
      'snapshot-delete --domain lab-cni-worker1 --snapshotname b',
      'managedsave-remove lab-cni-worker1',
    ]);
    await writeFile(join(dir, 'calls'), '');
    await given({ fail: 'snapshot-list' });
    await dropLibvirtState(cluster, 'cni-worker1');
    expect(await calls()).toEqual(['snapshot-list --domain lab-cni-worker1 --name']);
  });
});
