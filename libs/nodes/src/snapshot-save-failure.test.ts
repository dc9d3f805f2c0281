import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeProvider } from '@boxcar/providers';
import { providerContext, type NodeContext } from './runtime.ts';
import { readSnapshotRecords, snapshotSave } from './snapshots.ts';
import { blankNodes, type BlankNodes } from './testing/blank-nodes.ts';

// A snapshot save that fails on one node because its disk is full: cni-worker2's directory is a 2 MiB
// tmpfs, too small for its saved memory (a real ENOSPC in qemu's savevm), the other nodes' disks are
// not. Real qemu on blank disks (testing/blank-nodes.ts); mounting a tmpfs takes root.
const isRoot = process.getuid?.() === 0;

let nodes: BlankNodes;
let context: NodeContext;
let small: string;

beforeAll(async () => {
  if (!isRoot) return;
  nodes = await blankNodes('boxcar-save-failure-');
  context = nodes.context;
  small = join(providerContext(context, 'qemu').stateDir, 'nodes', 'cni-worker2');
  await mkdir(small, { recursive: true });
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
  await nodes.boot(context.cluster.nodes.map((node) => node.name));
  await nodes.recordAll('c'.repeat(64));
});
afterAll(async () => {
  if (!isRoot) return;
  // Detached at once; its files go when cni-worker2's qemu is stopped.
  await execa('umount', ['-l', small]);
  await nodes.cleanup();
});

describe.skipIf(!isRoot)('a snapshot save that fails on one node (skipped unless root: the full disk is a tmpfs mount)', () => {
  it('names the node, removes what it wrote on the others, writes no record, and resumes every node', async () => {
    const error = (await snapshotSave(context, 'monday').catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/^saving snapshot monday failed on 1 node\(s\):\n {2}cni-worker2: /);
    const where = providerContext(context, 'qemu');
    for (const node of context.cluster.nodes) expect(await nodeProvider('qemu').snapshots.list(where, node.name), node.name).toEqual([]);
    expect(await readSnapshotRecords(context.paths)).toEqual([]);
    expect(await nodeProvider('qemu').status(where)).toEqual({ 'cni-master1': 'running', 'cni-worker1': 'running', 'cni-worker2': 'running' });
  });
});
