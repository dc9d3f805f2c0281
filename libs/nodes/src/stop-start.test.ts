import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { nodeProvider, type NodeBoot } from '@boxcar/providers';
import { providerContext, type NodeContext } from './runtime.ts';
import { clusterStart, clusterStop } from './snapshots.ts';
import { clusterPaths, writeNodeRecord } from './state.ts';

// cluster stop and start on a cluster whose nodes are in different states, through the real qemu
// provider: qemu booting a blank disk (the firmware waits for a boot device; its monitor, savevm and
// quit are real). No guest runs, so nothing here needs SSH: the start resumes no node.

const cluster = resolveClusterOrThrow({ profile: 'lab' });
let dir: string;
let context: NodeContext;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-stop-start-'));
  const blank = join(dir, 'blank.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '64M']);
  // No store is touched by stop and start.
  context = { cluster, paths: clusterPaths(cluster, join(dir, 'state')) } as NodeContext;
  const boot: NodeBoot = {
    box: { name: 'boxcar/lab-worker', version: '1.1', catalogUrl: 'file:///nowhere' },
    disk: async () => blank,
    diskSha256: async () => '0'.repeat(64),
    clusterBoxes: async () => ({}),
    bootstrapKey: async () => undefined,
    clusterKey: async () => ({ publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0YW5kLWluIGtleSBmb3IgYSB0ZXN0IG9ubHkgISE= test', privateKeyPath: '/nowhere' }),
  };
  const where = providerContext(context, 'qemu');
  for (const name of ['cni-worker1', 'cni-worker2']) await nodeProvider('qemu').up(where, name, boot);
  // cni-worker2 crashes; cni-master1 has a record and nothing else (its disk is gone).
  process.kill(Number(readFileSync(join(where.stateDir, 'nodes', 'cni-worker2', 'qemu.pid'), 'utf8')), 'SIGKILL');
  for (const node of cluster.nodes) {
    await writeNodeRecord(context.paths, { name: node.name, provider: 'qemu', box: { name: 'boxcar/lab-worker', version: '1.1', contentKey: 'k' }, ssh: { host: '127.0.0.1', port: 1, user: 'vagrant' } });
  }
  await new Promise((done) => setTimeout(done, 300));
});
afterAll(async () => {
  await nodeProvider('qemu').cleanup(providerContext(context, 'qemu'));
  await rm(dir, { recursive: true, force: true });
});

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
