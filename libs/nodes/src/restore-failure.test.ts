import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { nodeProvider, type NodeBoot } from '@boxcar/providers';
import { nodeStart } from './node-start.ts';
import { providerContext, type NodeContext } from './runtime.ts';
import { clusterStop, snapshotRestore, snapshotsDir, type SnapshotRecord } from './snapshots.ts';
import { clusterPaths, readNodeRecord, writeNodeRecord } from './state.ts';

// A restore whose loadvm fails, through the real qemu provider on blank disks (the firmware waits for a
// boot device; the monitor's stop, loadvm and cont are real): here the snapshot's tag is in no node's
// disk, so loadvm fails on every node, and no node is resumed (nothing here needs SSH).

const cluster = resolveClusterOrThrow({ profile: 'lab' });
let dir: string;
let context: NodeContext;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-restore-failure-'));
  const blank = join(dir, 'blank.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '64M']);
  context = { cluster, paths: clusterPaths(cluster, join(dir, 'state')) } as NodeContext;
  const boot: NodeBoot = {
    box: { name: 'boxcar/lab-worker', version: '1.1', catalogUrl: 'file:///nowhere' },
    disk: async () => blank,
    diskSha256: async () => '0'.repeat(64),
    clusterBoxes: async () => ({}),
    bootstrapKey: async () => undefined,
    clusterKey: async () => ({ publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0YW5kLWluIGtleSBmb3IgYSB0ZXN0IG9ubHkgISE= test', privateKeyPath: '/nowhere' }),
  };
  const box = { name: 'boxcar/lab-worker', version: '1.1', contentKey: 'k' };
  for (const node of cluster.nodes) {
    await nodeProvider('qemu').up(providerContext(context, 'qemu'), node.name, boot);
    await writeNodeRecord(context.paths, { name: node.name, provider: 'qemu', box, ssh: { host: '127.0.0.1', port: 1, user: 'vagrant' }, configHash: 'c'.repeat(64) });
  }
  const snapshot: SnapshotRecord = { name: 'monday', cluster: 'lab', provider: 'qemu', createdAt: new Date().toISOString(), nodes: cluster.nodes.map((node) => ({ name: node.name, box, configHash: 'a'.repeat(64) })) };
  await mkdir(snapshotsDir(context.paths), { recursive: true });
  await writeFile(join(snapshotsDir(context.paths), 'monday.json'), JSON.stringify(snapshot));
});
afterAll(async () => {
  await nodeProvider('qemu').cleanup(providerContext(context, 'qemu'));
  await rm(dir, { recursive: true, force: true });
});

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
    expect(stopped.nodes.map((node) => [node.node, node.ok, node.did])).toEqual(cluster.nodes.map((node) => [node.name, false, 'its restore of snapshot monday failed: nothing to save; cluster up makes it again']));
    await expect(nodeStart(context, 'cni-worker2')).rejects.toThrow('node cni-worker2: its restore of snapshot monday failed, so its memory and disk are undefined; nothing to start from: cluster up makes it again from its box (its VM is replaced)');
    expect(await nodeProvider('qemu').status(providerContext(context, 'qemu'))).toEqual({ 'cni-master1': 'paused', 'cni-worker1': 'paused', 'cni-worker2': 'paused' });
  });
});
