import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveClusterOrThrow } from '@boxcar/model';
import { describe, expect, it } from 'vitest';
import type { NodeContext } from './runtime.ts';
import { freshSnapshotTag, restoreProblem, snapshotList, snapshotSizes, snapshotTag, type SnapshotRecord } from './snapshots.ts';
import { clusterPaths } from './state.ts';
import type { NodeRecord } from './state.ts';

const box = (name: string, version: string) => ({ name, version, contentKey: `key-${version}` });
const record = (name: string, version: string): NodeRecord => ({ name, provider: 'qemu', box: box(`boxcar/lab-${name.includes('master') ? 'master' : 'worker'}`, version), ssh: { host: '127.0.0.1', port: 2222, user: 'vagrant' } });
const snapshot: SnapshotRecord = {
  name: 'monday',
  cluster: 'lab',
  provider: 'qemu',
  createdAt: '2026-11-30T08:00:00.000Z',
  nodes: [
    { name: 'cni-master1', box: box('boxcar/lab-master', '1.1'), configHash: 'a' },
    { name: 'cni-worker1', box: box('boxcar/lab-worker', '1.1'), configHash: 'b' },
  ],
};

describe('restoreProblem', () => {
  it('has none when the nodes run the boxes the snapshot was taken from', () => {
    expect(restoreProblem(snapshot, [record('cni-master1', '1.1'), record('cni-worker1', '1.1')], 'qemu')).toBeUndefined();
  });

  it('refuses a snapshot of other box versions, naming node and versions and saying how to go on', () => {
    const problem = restoreProblem(snapshot, [record('cni-master1', '1.1'), record('cni-worker1', '1.2')], 'qemu');
    expect(problem).toMatch(/^snapshot monday was taken from other box versions than the nodes run now \(cni-worker1: snapshot from boxcar\/lab-worker 1\.1, now boxcar\/lab-worker 1\.2\)/);
    expect(problem).toMatch(/take a new snapshot of the cluster as it runs now \(cluster snapshot save monday\), or delete this one \(cluster snapshot delete monday\)/);
  });

  it('refuses another provider and another set of nodes', () => {
    expect(restoreProblem(snapshot, [record('cni-master1', '1.1'), record('cni-worker1', '1.1')], 'libvirt')).toMatch(/taken on the qemu provider; the cluster runs on libvirt/);
    expect(restoreProblem(snapshot, [record('cni-master1', '1.1'), record('cni-worker1', '1.1'), record('cni-worker2', '1.1')], 'qemu')).toMatch(
      /holds the nodes cni-master1, cni-worker1; the cluster now has cni-master1, cni-worker1, cni-worker2/,
    );
  });
});

describe('snapshotSizes', () => {
  it("sums a snapshot's saved memory over the nodes, and says unknown once one node cannot tell (VirtualBox)", () => {
    const sizes = snapshotSizes([
      [{ name: 'monday', sizeBytes: 100 }, { name: 'tuesday', sizeBytes: 5 }],
      [{ name: 'monday', sizeBytes: 20 }, { name: 'tuesday' }],
      [{ name: 'monday', sizeBytes: 3 }],
    ]);
    expect(sizes.get('monday')).toBe(123);
    expect(sizes.has('tuesday')).toBe(true);
    expect(sizes.get('tuesday')).toBeUndefined();
    expect(snapshotSizes([[{ name: 'a' }], [{ name: 'a', sizeBytes: 7 }]]).get('a')).toBeUndefined();
  });
});

describe('snapshotList', () => {
  it('is empty for a cluster that is not up, without asking its provider (VirtualBox has no Vagrant project yet)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'boxcar-snapshot-list-'));
    try {
      const cluster = resolveClusterOrThrow({ profile: 'xenial-2016', provider: 'virtualbox' });
      // No store is touched: listing reads the snapshot records and asks the provider of each node that is up.
      const context = { cluster, paths: clusterPaths(cluster, dir) } as NodeContext;
      expect(await snapshotList(context)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('freshSnapshotTag', () => {
  it("is the name itself the first time, a new tag while the name's old snapshot still exists, never another snapshot's", () => {
    expect(freshSnapshotTag('monday', new Set(['tuesday']))).toBe('monday');
    expect(freshSnapshotTag('monday', new Set(['monday']))).toBe('monday.s1');
    // The third save: the second's tag is the one in use, the name is free again.
    expect(freshSnapshotTag('monday', new Set(['monday.s1']))).toBe('monday');
    // A user snapshot called monday.s1 is never overwritten by a save of monday.
    expect(freshSnapshotTag('monday', new Set(['monday', 'monday.s1']))).toBe('monday.s2');
    expect(snapshotTag({ ...snapshot, tag: 'monday.s1' })).toBe('monday.s1');
    expect(snapshotTag(snapshot)).toBe('monday');
  });

  it('stays a snapshot word of at most 63 characters', () => {
    const long = 'a'.repeat(63);
    expect(freshSnapshotTag(long, new Set([long]))).toBe(`${'a'.repeat(60)}.s1`);
  });
});
