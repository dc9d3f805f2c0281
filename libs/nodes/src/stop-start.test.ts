import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeProvider } from '@boxcar/providers';
import { providerContext, type NodeContext } from './runtime.ts';
import { clusterStart, clusterStop } from './snapshots.ts';
import { blankNodes, type BlankNodes } from './testing/blank-nodes.ts';

// cluster stop and start on a cluster whose nodes are in different states, through the real qemu
// provider on blank disks (testing/blank-nodes.ts). No guest runs, so nothing here needs SSH: the start
// resumes no node.

let nodes: BlankNodes;
let context: NodeContext;

beforeAll(async () => {
  nodes = await blankNodes('boxcar-stop-start-');
  context = nodes.context;
  await nodes.boot(['cni-worker1', 'cni-worker2']);
  // cni-worker2 crashes; cni-master1 has a record and nothing else (its disk is gone).
  process.kill(Number(readFileSync(join(providerContext(context, 'qemu').stateDir, 'nodes', 'cni-worker2', 'qemu.pid'), 'utf8')), 'SIGKILL');
  await nodes.recordAll();
  await new Promise((done) => setTimeout(done, 300));
});
afterAll(() => nodes.cleanup());

describe('cluster stop and start on nodes in different states', () => {
  it('start leaves a running node alone and says which nodes it cannot start and that cluster up brings them back', async () => {
    const result = await clusterStart(context);
    expect(result.nodes.map((node) => [node.node, node.was, node.ok, node.did])).toEqual([
      ['cni-master1', 'absent', false, 'not started: its disk is gone; cluster up makes it again'],
      ['cni-worker1', 'running', true, 'already running'],
      ['cni-worker2', 'stopped', false, 'not started: its machine stopped without a saved state; cluster up boots it from its disk'],
    ]);
  });

  it('stop saves the running node and says per node why the others had nothing to save', async () => {
    const result = await clusterStop(context);
    expect(result.nodes.map((node) => [node.node, node.was, node.ok, node.did])).toEqual([
      ['cni-master1', 'absent', false, 'not running (absent): nothing to save; cluster up boots it again'],
      ['cni-worker1', 'running', true, 'running state saved, stopped'],
      ['cni-worker2', 'stopped', false, 'not running (stopped): nothing to save; cluster up boots it again'],
    ]);
    expect(await nodeProvider('qemu').status(providerContext(context, 'qemu'))).toEqual({ 'cni-worker1': 'stopped-with-state', 'cni-worker2': 'stopped' });
    // A second stop: the saved one stays saved.
    expect((await clusterStop(context)).nodes[1]).toMatchObject({ node: 'cni-worker1', was: 'stopped-with-state', ok: true, did: 'already stopped with its state saved' });
  });
});
