import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveClusterOrThrow, STOPPED_SNAPSHOT } from '@boxcar/model';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TCG_ARGS } from '../accel.ts';
import { stateLayout } from './layout.ts';
import { livePid, processesMentioning } from './processes.ts';
import { qemuDown, qemuNodeUp } from './provider.ts';
import { qmp } from './qmp.ts';
import {
  qemuDeleteSnapshot,
  qemuListSnapshots,
  qemuPause,
  qemuRestoreSnapshot,
  qemuResume,
  qemuRunState,
  qemuSaveSnapshot,
  qemuSuspend,
  qemuWake,
} from './snapshots.ts';

// Snapshots and suspend/wake through the real QMP monitor of a real qemu booting a blank disk (the
// firmware waits for a boot device: no CPU to speak of, and a VM whose memory and devices are real).

const cluster = resolveClusterOrThrow({ profile: 'lab' });
const tcg = { accel: 'tcg' as const, reason: 'given by the test', qemuArgs: [...TCG_ARGS] };
let work: string;
let blank: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'boxcar-qsnap-'));
  blank = join(work, 'blank.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '64M']);
});
afterAll(async () => {
  for (const stray of await processesMentioning(work)) process.kill(stray.pid, 'SIGKILL');
  await rm(work, { recursive: true, force: true });
});

describe('qemu snapshots through the monitor', () => {
  it('pauses, saves, restores and deletes a snapshot inside the overlay; suspends and wakes the node paused on the same port', async () => {
    const stateDir = join(work, 's');
    const options = { stateDir };
    const paths = stateLayout(stateDir).node('cni-worker1');
    const up = await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg });
    expect(await qemuRunState(options, 'cni-worker1')).toBe('running');

    await qemuPause(options, 'cni-worker1');
    expect(await qemuRunState(options, 'cni-worker1')).toBe('paused');
    await qemuSaveSnapshot(options, 'cni-worker1', 'before');
    // savevm leaves a paused node paused: the cluster is resumed together, not node by node.
    expect(await qemuRunState(options, 'cni-worker1')).toBe('paused');
    const [saved, ...others] = await qemuListSnapshots(options, 'cni-worker1');
    expect(others).toEqual([]);
    expect(saved).toMatchObject({ name: 'before' });
    expect(saved!.sizeBytes).toBeGreaterThan(0);
    await qemuResume(options, 'cni-worker1');
    expect(await qemuRunState(options, 'cni-worker1')).toBe('running');

    await qemuPause(options, 'cni-worker1');
    await qemuRestoreSnapshot(options, 'cni-worker1', 'before');
    expect(await qemuRunState(options, 'cni-worker1')).toBe('paused');
    await expect(qemuRestoreSnapshot(options, 'cni-worker1', 'never-taken')).rejects.toThrow(/qemu node cni-worker1: snapshot failed: loadvm never-taken: .*never-taken/);
    await expect(qemuSaveSnapshot(options, 'cni-worker1', 'a b')).rejects.toThrow(/only lowercase letters, digits/);
    await qemuResume(options, 'cni-worker1');

    await qemuDeleteSnapshot(options, 'cni-worker1', 'before');
    expect(await qemuListSnapshots(options, 'cni-worker1')).toEqual([]);
    await qemuDeleteSnapshot(options, 'cni-worker1', 'before');

    await qemuPause(options, 'cni-worker1');
    await qemuSuspend(options, 'cni-worker1');
    expect(await livePid(paths.pidFile, paths.pidFile)).toBeUndefined();
    expect(await qemuRunState(options, 'cni-worker1')).toBe('stopped-with-state');
    // cluster stop's own state is no user snapshot.
    expect(await qemuListSnapshots(options, 'cni-worker1')).toEqual([]);
    expect((await qemuListSnapshots(options, 'cni-worker1', { includeStopped: true })).map((s) => s.name)).toEqual([STOPPED_SNAPSHOT]);

    const woken = await qemuWake(options, 'cni-worker1');
    expect(woken.sshPort).toBe(up.sshPort);
    expect(JSON.parse(await readFile(stateLayout(stateDir).portsFile, 'utf8'))).toEqual({ 'cni-worker1': up.sshPort });
    // Left paused (-S) until the caller resumes every node at once.
    expect(await qemuRunState(options, 'cni-worker1')).toBe('paused');
    expect(await qmp<{ status: string }>(paths.qmpSocket, 'query-status')).toMatchObject({ status: 'prelaunch' });
    // The saved state went once it was loaded: a crash from here must not resume the stop's moment.
    expect((await qemuListSnapshots(options, 'cni-worker1', { includeStopped: true })).map((s) => s.name)).toEqual([]);
    await qemuResume(options, 'cni-worker1');
    expect(await qemuRunState(options, 'cni-worker1')).toBe('running');
    await expect(qemuWake(options, 'cni-worker1')).rejects.toThrow(/its overlay has no saved state/);
    // A crash (kill -9) after the start: stopped, to be booted from its disk, not stopped-with-state.
    process.kill((await livePid(paths.pidFile, paths.pidFile))!, 'SIGKILL');
    for (let waited = 0; (await livePid(paths.pidFile, paths.pidFile)) !== undefined && waited < 5_000; waited += 100) await new Promise((done) => setTimeout(done, 100));
    expect(await qemuRunState(options, 'cni-worker1')).toBe('stopped');

    await qemuDown(cluster, { stateDir });
    expect(await qemuRunState(options, 'cni-worker1')).toBe('absent');
  });

  it('refuses to snapshot, pause or wake a node that is not there, naming it', async () => {
    const options = { stateDir: join(work, 'none') };
    await expect(qemuPause(options, 'cni-master1')).rejects.toThrow(/qemu node cni-master1: snapshot failed: its qemu is not running/);
    await expect(qemuSaveSnapshot(options, 'cni-master1', 'x')).rejects.toThrow(/its qemu is not running/);
    await expect(qemuWake(options, 'cni-master1')).rejects.toThrow(/launch\.json is missing/);
    expect(await qemuListSnapshots(options, 'cni-master1')).toEqual([]);
  });
});
