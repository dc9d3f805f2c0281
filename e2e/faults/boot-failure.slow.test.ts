import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { DEFAULT_CNI_DIR, resolveClusterOrThrow } from '@boxcar/model';
import { clusterPaths, nodeUp, readNodeRecord, type NodeContext } from '@boxcar/nodes';
import { BOXCAR, processesMentioning } from './helpers.ts';

// Scenario "a node that does not come up": the lab master's box is a blank qcow2 (no boot loader,
// no OS), so the real qemu provider boots it under QEMU, the firmware finds nothing to boot, and
// SSH never answers. Then `boxcar cluster down` must leave nothing of the cluster behind.

const cluster = resolveClusterOrThrow({ profile: 'lab' });
const KEY = 'b1a4c0'.padEnd(64, '0');
let root: string;
let context: NodeContext;
let error: Error | undefined;
let serialLogExisted = false;
let runningAfterFailure: string[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'boxcar-faults-boot-'));
  const staging = join(root, 'staging');
  mkdirSync(staging);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(staging, 'disk.qcow2'), '1G']);
  await execa('tar', ['-cf', join(root, 'libvirt.box'), '-C', staging, 'disk.qcow2']);
  const store = openStore(join(root, 'store'));
  await store.publishLayer('lab', 'master', KEY, staging, { note: 'fault tests: a disk without an OS' });
  await store.publishBox({ boxName: cluster.nodes[0]!.box, description: 'blank', provider: 'libvirt', boxFile: join(root, 'libvirt.box'), key: KEY, layer: 'master', profile: 'lab' });
  context = { cluster: { ...cluster, timeouts: { ...cluster.timeouts, sshReadySeconds: 15 } }, store, paths: clusterPaths(cluster, join(root, 'state')), cniDir: DEFAULT_CNI_DIR };
  error = await nodeUp(context, cluster.nodes[0]!.name).then(
    () => undefined,
    (failure: Error) => failure,
  );
  const serialLog = /serial log: (\S+)/.exec(error?.message ?? '')?.[1];
  serialLogExisted = serialLog !== undefined && existsSync(serialLog);
  runningAfterFailure = await processesMentioning(context.paths.provider);
});

afterAll(async () => {
  // Whatever happened above, no VM of this test may outlive it.
  await execa(process.execPath, [BOXCAR, 'cluster', 'down', '--profile', 'lab'], { env: { BOXCAR_STATE_DIR: join(root, 'state'), BOXCAR_STORE: pathToFileURL(join(root, 'store')).href }, reject: false });
  rmSync(root, { recursive: true, force: true });
});

describe('scenario 8: a node that fails to boot during cluster up', () => {
  it('node up fails with an error naming the node, the step and the serial log', () => {
    const node = cluster.nodes[0]!.name;
    expect(error, 'node up must fail').toBeInstanceOf(Error);
    expect(error!.message).toContain(node);
    expect(error!.message).toMatch(/ssh/i);
    expect(error!.message).toContain(`serial log: ${join(context.paths.provider, 'nodes', node, 'serial.log')}`);
    expect(serialLogExisted).toBe(true);
  });

  it('the failed node is still there to look at (its qemu runs) until the cluster is taken down', () => {
    expect(runningAfterFailure.some((line) => line.includes('qemu-system'))).toBe(true);
  });

  it('boxcar cluster down removes everything: no qemu or vde_switch of the state dir, no provider state, no node record', async () => {
    const down = await execa(process.execPath, [BOXCAR, 'cluster', 'down', '--profile', 'lab'], {
      env: { BOXCAR_STATE_DIR: join(root, 'state'), BOXCAR_STORE: pathToFileURL(join(root, 'store')).href },
      reject: false,
    });
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(await processesMentioning(context.paths.provider)).toEqual([]);
    expect(existsSync(context.paths.provider)).toBe(false);
    expect(await readNodeRecord(context.paths, cluster.nodes[0]!.name)).toBeUndefined();
  });
});

describe('scenario 8b: terraform stops a provisioner while node up waits for SSH', () => {
  // Terraform ends a provisioner it stops (Ctrl-C, its own timeout) by killing the shell it started,
  // with SIGKILL, and closing its pipes (seen with terraform 1.11): nothing of what that shell started
  // may live on, and the node must not be left half-up.
  it('the CLI aborts, takes the half-booted node down and releases everything', async () => {
    const stateDir = join(root, 'state-8b');
    const providerDir = join(stateDir, cluster.name, 'qemu');
    const words = [process.execPath, BOXCAR, 'node', 'up', cluster.nodes[0]!.name, '--profile', 'lab', '--store', pathToFileURL(join(root, 'store')).href, '--state-dir', stateDir];
    // As terraform runs a local-exec provisioner: `/bin/sh -c <command>`.
    const shell = execa('/bin/sh', ['-c', words.map((word) => `'${word}'`).join(' ')], { reject: false, stdin: 'ignore' });
    // Wait until qemu runs for that node: node up is then waiting for SSH (which never answers).
    const deadline = Date.now() + 120_000;
    while (!(await processesMentioning(providerDir)).some((line) => line.includes('qemu-system'))) {
      if (Date.now() > deadline) throw new Error('node up did not start qemu within 120 s');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    process.kill(shell.pid!, 'SIGKILL');
    // Terraform then closes its end of the provisioner's pipes: every later write of the CLI fails with EPIPE.
    shell.stdout?.destroy();
    shell.stderr?.destroy();
    await shell;
    // Within a bounded time: no CLI of this state dir, no qemu, no switch, no record.
    const settled = Date.now() + 60_000;
    let left = await processesMentioning(stateDir);
    while (left.length > 0 && Date.now() < settled) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      left = await processesMentioning(stateDir);
    }
    expect(left).toEqual([]);
    expect(existsSync(providerDir)).toBe(false);
    expect(existsSync(join(stateDir, cluster.name, 'nodes', `${cluster.nodes[0]!.name}.json`))).toBe(false);
  });
});
