import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathExists } from '@boxcar/kit';
import { execa } from 'execa';
import { isSnapshotWord, STOPPED_SNAPSHOT } from '@boxcar/model';
import { QEMU_BINARY } from '../accel.ts';
import type { NodeRunState, SnapshotInfo } from '../provider.ts';
import { SWITCHES, stateLayout, type NodePaths } from './layout.ts';
import { livePid } from './processes.ts';
import { ensureSwitch, QemuNodeError, readPorts, serialTail, withStateLock, writePorts, type QemuProgress } from './provider.ts';
import { qmp, qmpConnect } from './qmp.ts';

// Snapshots of qemu nodes through their QMP monitor: the snapshot (disk and memory) lives inside the
// node's qcow2 overlay (HMP savevm/loadvm/delvm), so it goes wherever the overlay goes (node down,
// cluster down). Each function works on one node; libs/nodes pauses and resumes the cluster together.

/** savevm writes the guest's whole RAM through the monitor: under TCG, with three nodes at once, this takes a while. */
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;

interface QemuSnapshotOptions {
  stateDir: string;
  onProgress?: (event: QemuProgress) => void;
}

async function runningPid(paths: NodePaths): Promise<number | undefined> {
  return livePid(paths.pidFile, paths.pidFile);
}

async function monitorOf(options: QemuSnapshotOptions, node: string): Promise<string> {
  const paths = stateLayout(options.stateDir).node(node);
  if ((await runningPid(paths)) === undefined) throw new QemuNodeError(node, 'snapshot', paths.serialLog, 'its qemu is not running');
  return paths.qmpSocket;
}

/** HMP reports a failed savevm/loadvm/delvm only as text: any output is the error. */
async function hmp(options: QemuSnapshotOptions, node: string, commandLine: string): Promise<void> {
  const paths = stateLayout(options.stateDir).node(node);
  const session = await qmpConnect(await monitorOf(options, node), SNAPSHOT_TIMEOUT_MS);
  try {
    const output = await session.human(commandLine);
    if (output) throw new QemuNodeError(node, 'snapshot', paths.serialLog, `${commandLine}: ${output}`);
  } finally {
    session.close();
  }
}

/** Snapshot names go into an HMP command line: only plain words. */
function checkName(name: string): string {
  if (!isSnapshotWord(name)) throw new Error(`qemu snapshot name ${JSON.stringify(name)}: only lowercase letters, digits, '.', '_' and '-'`);
  return name;
}

/** running, paused (its CPUs stopped through the monitor), stopped-with-state (state saved, qemu gone), stopped or absent. */
export async function qemuRunState(options: Pick<QemuSnapshotOptions, 'stateDir'>, node: string): Promise<NodeRunState> {
  const paths = stateLayout(options.stateDir).node(node);
  if ((await runningPid(paths)) !== undefined) {
    const status = await qmp<{ running: boolean }>(paths.qmpSocket, 'query-status', undefined, 10_000).catch(() => undefined);
    // A qemu without a monitor (launched before boxcar had one) can only be running.
    return status === undefined || status.running ? 'running' : 'paused';
  }
  const snapshots = await qemuListSnapshots(options, node, { includeStopped: true });
  if (snapshots.some((snapshot) => snapshot.name === STOPPED_SNAPSHOT)) return 'stopped-with-state';
  return snapshots.length || (await pathExists(paths.overlay)) ? 'stopped' : 'absent';
}

export async function qemuPause(options: QemuSnapshotOptions, node: string): Promise<void> {
  await qmp(await monitorOf(options, node), 'stop');
}

export async function qemuResume(options: QemuSnapshotOptions, node: string): Promise<void> {
  await qmp(await monitorOf(options, node), 'cont');
}

/** Disk and memory into the overlay, under `name` (an existing one of that name is replaced). A paused node stays paused. */
export async function qemuSaveSnapshot(options: QemuSnapshotOptions, node: string, name: string): Promise<void> {
  options.onProgress?.({ node, step: 'snapshot', message: `savevm ${name}` });
  await hmp(options, node, `savevm ${checkName(name)}`);
}

/** Disk and memory back from the overlay's snapshot `name`. A paused node stays paused. */
export async function qemuRestoreSnapshot(options: QemuSnapshotOptions, node: string, name: string): Promise<void> {
  options.onProgress?.({ node, step: 'snapshot', message: `loadvm ${name}` });
  await hmp(options, node, `loadvm ${checkName(name)}`);
}

/** Removes the snapshot from the overlay: through the monitor while qemu runs, else with qemu-img. Absent is fine. */
export async function qemuDeleteSnapshot(options: QemuSnapshotOptions, node: string, name: string): Promise<void> {
  checkName(name);
  const paths = stateLayout(options.stateDir).node(node);
  if (!(await qemuListSnapshots(options, node, { includeStopped: true })).some((snapshot) => snapshot.name === name)) return;
  if ((await runningPid(paths)) !== undefined) return hmp(options, node, `delvm ${name}`);
  const result = await execa('qemu-img', ['snapshot', '-d', name, paths.overlay], { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new QemuNodeError(node, 'snapshot', paths.serialLog, `qemu-img snapshot -d ${name}: ${String(result.stderr).trim()}`);
}

/**
 * The snapshots in the node's overlay, with the size of their saved memory (their disk clusters are
 * shared with the overlay and not counted apart by qcow2). `cluster stop`'s own is left out unless asked for.
 */
export async function qemuListSnapshots(options: Pick<QemuSnapshotOptions, 'stateDir'>, node: string, which: { includeStopped?: boolean } = {}): Promise<SnapshotInfo[]> {
  const paths = stateLayout(options.stateDir).node(node);
  if (!(await pathExists(paths.overlay))) return [];
  // -U: the running qemu holds the image's lock; reading its header is safe.
  const info = await execa('qemu-img', ['info', '--output=json', '-U', paths.overlay], { reject: false, stdin: 'ignore' });
  if (info.exitCode !== 0) throw new QemuNodeError(node, 'snapshot', paths.serialLog, `qemu-img info ${paths.overlay}: ${String(info.stderr).trim()}`);
  const snapshots = (JSON.parse(String(info.stdout)) as { snapshots?: { name: string; 'vm-state-size': number; 'date-sec': number }[] }).snapshots ?? [];
  return snapshots
    .filter((snapshot) => which.includeStopped || snapshot.name !== STOPPED_SNAPSHOT)
    .map((snapshot) => ({ name: snapshot.name, sizeBytes: snapshot['vm-state-size'], createdAt: new Date(snapshot['date-sec'] * 1000).toISOString() }));
}

/** Saves the node's running state into its overlay (STOPPED_SNAPSHOT) and ends its qemu. The caller has paused it. */
export async function qemuSuspend(options: QemuSnapshotOptions, node: string): Promise<void> {
  const paths = stateLayout(options.stateDir).node(node);
  const pid = await runningPid(paths);
  if (pid === undefined) throw new QemuNodeError(node, 'snapshot', paths.serialLog, 'its qemu is not running: nothing to suspend');
  await qemuSaveSnapshot(options, node, STOPPED_SNAPSHOT);
  options.onProgress?.({ node, step: 'stop', message: `state saved; quitting qemu (pid ${pid})` });
  await qmp(paths.qmpSocket, 'quit').catch(() => undefined);
  for (let waited = 0; (await runningPid(paths)) !== undefined; waited += 100) {
    if (waited > 30_000) throw new QemuNodeError(node, 'stop', paths.serialLog, `qemu (pid ${pid}) did not exit within 30 s of quit`);
    await sleep(100);
  }
  await rm(paths.qmpSocket, { force: true });
}

/**
 * Relaunches a node stopped with its state with its saved argv, loading STOPPED_SNAPSHOT and left paused (-S), so
 * that the caller resumes every node at the same moment; the saved state is then deleted (a crash after
 * this boots the node from its disk, never back to the stop). Returns its SSH port (and Kubernetes API port) on 127.0.0.1.
 */
export async function qemuWake(options: QemuSnapshotOptions, node: string): Promise<{ sshPort: number; apiPort?: number; serialLog: string }> {
  const layout = stateLayout(options.stateDir);
  const paths = layout.node(node);
  const progress = (step: QemuProgress['step'], message: string) => options.onProgress?.({ node, step, message });
  const launch = await readFile(paths.launchArgs, 'utf8').then((text) => JSON.parse(text) as { args: string[]; sshPort: number; apiPort?: number }, () => undefined);
  if (!launch) throw new QemuNodeError(node, 'launch', paths.serialLog, `${paths.launchArgs} is missing: the node was launched by an older boxcar; bring it up again (cluster down, cluster up)`);
  if (!(await qemuListSnapshots(options, node, { includeStopped: true })).some((snapshot) => snapshot.name === STOPPED_SNAPSHOT)) {
    throw new QemuNodeError(node, 'launch', paths.serialLog, `its overlay has no saved state (${STOPPED_SNAPSHOT}): it was not stopped with cluster stop`);
  }
  // The lock covers the switches and the ports file only: three nodes load their saved memory in parallel.
  await withStateLock(layout, async () => {
    for (const name of SWITCHES) await ensureSwitch(layout, name, progress);
  });
  const running = await runningPid(paths);
  if (running !== undefined) throw new QemuNodeError(node, 'launch', paths.serialLog, `its qemu already runs (pid ${running})`);
  progress('launch', `qemu from its saved state, paused, SSH on 127.0.0.1:${launch.sshPort}`);
  await rm(paths.pidFile, { force: true });
  const result = await execa(QEMU_BINARY, [...launch.args, '-loadvm', STOPPED_SNAPSHOT, '-S'], { reject: false, stdin: 'ignore', timeout: SNAPSHOT_TIMEOUT_MS });
  if (result.exitCode !== 0 || (await runningPid(paths)) === undefined) {
    const detail = String(result.stderr || result.stdout || `exit status ${result.exitCode}`).trim();
    const ports = [launch.sshPort, ...(launch.apiPort !== undefined ? [launch.apiPort] : [])].join(' or ');
    const hint = /host forwarding rule|Address already in use/i.test(detail) ? ` (port ${ports} on 127.0.0.1 is taken by another program: free it and start again)` : '';
    throw new QemuNodeError(node, 'launch', paths.serialLog, `${detail}${hint}; last serial lines:\n${await serialTail(paths.serialLog)}`);
  }
  await withStateLock(layout, async () => {
    await writePorts(layout, { ...(await readPorts(layout)), [node]: launch.sshPort });
    if (launch.apiPort !== undefined) await writePorts(layout, { ...(await readPorts(layout, 'api')), [node]: launch.apiPort }, 'api');
  });
  // The state now lives in the running qemu. Kept in the overlay, it would be resumed after a later
  // crash, rolling the node's disk back to this moment: gone before the node runs a single instruction.
  progress('snapshot', `the saved state is loaded: deleting it from the overlay`);
  await hmp(options, node, `delvm ${STOPPED_SNAPSHOT}`);
  return { sshPort: launch.sshPort, ...(launch.apiPort !== undefined ? { apiPort: launch.apiPort } : {}), serialLog: paths.serialLog };
}

