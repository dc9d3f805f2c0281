import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeProvider } from '@boxcar/providers';
import { nodeStart } from './node-start.ts';
import { providerContext, type NodeContext } from './runtime.ts';
import { clusterStop, snapshotRestore, snapshotsDir, type SnapshotRecord } from './snapshots.ts';
import { readNodeRecord } from './state.ts';
import { blankNodes, type BlankNodes } from './testing/blank-nodes.ts';

// A restore whose loadvm fails, through the real qemu provider on blank disks (testing/blank-nodes.ts):
// here the snapshot's tag is in no node's disk, so loadvm fails on every node, and no node is resumed
// (nothing here needs SSH).

let nodes: BlankNodes;
let context: NodeContext;

beforeAll(async () => {
  nodes = await blankNodes('boxcar-restore-failure-');
  context = nodes.context;
  await nodes.boot(context.cluster.nodes.map((node) => node.name));
  await nodes.recordAll('c'.repeat(64));
  const box = { name: 'boxcar/lab-worker', version: '1.1', contentKey: 'k' };
  const snapshot: SnapshotRecord = { name: 'monday', cluster: 'lab', provider: 'qemu', createdAt: new Date().toISOString(), nodes: context.cluster.nodes.map((node) => ({ name: node.name, box, configHash: 'a'.repeat(64) })) };
  await mkdir(snapshotsDir(context.paths), { recursive: true });
  await writeFile(join(snapshotsDir(context.paths), 'monday.json'), JSON.stringify(snapshot));
});
afterAll(() => nodes.cleanup());

describe('a restore that fails', () => {
  it('leaves each node whose loadvm failed paused, never resumed, its record saying so; the error names every node and what to do', async () => {
    const error = (await snapshotRestore(context, 'monday').catch((caught: unknown) => caught)) as Error;
    expect(error.message).toMatch(/^cluster lab: restoring snapshot monday failed on 3 node\(s\); each is left paused \(its memory may be half loaded\) and cluster up makes it again from its box:\n {2}cni-master1: qemu node cni-master1: snapshot failed: loadvm monday: .*monday/);
    expect(await nodeProvider('qemu').status(providerContext(context, 'qemu'))).toEqual({ 'cni-master1': 'paused', 'cni-worker1': 'paused', 'cni-worker2': 'paused' });
    const record = (await readNodeRecord(context.paths, 'cni-worker1'))!;
    expect(record.restoreFailed).toMatchObject({ snapshot: 'monday', error: expect.stringContaining('loadvm monday') });
    // Its configuration is not taken for the snapshot's: the record keeps what it had.
    expect(record.configHash).toBe('c'.repeat(64));
  });

  it('no verb resumes or saves such a node: a second restore, stop and node start refuse it and point to cluster up', async () => {
    await expect(snapshotRestore(context, 'monday')).rejects.toThrow('cluster lab: cannot restore: cni-master1, cni-worker1, cni-worker2 failed an earlier restore and must be made again first: cluster up');
    const stopped = await clusterStop(context);
    expect(stopped.nodes.map((node) => [node.node, node.ok, node.did])).toEqual(context.cluster.nodes.map((node) => [node.name, false, 'its restore of snapshot monday failed: nothing to save; cluster up makes it again']));
    await expect(nodeStart(context, 'cni-worker2')).rejects.toThrow('node cni-worker2: its restore of snapshot monday failed, so its memory and disk are undefined; nothing to start from: cluster up makes it again from its box (its VM is replaced)');
    expect(await nodeProvider('qemu').status(providerContext(context, 'qemu'))).toEqual({ 'cni-master1': 'paused', 'cni-worker1': 'paused', 'cni-worker2': 'paused' });
  });
});
