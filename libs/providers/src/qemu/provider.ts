import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atomicWriteFile, diskImageHostReferences, pathExists, sha256File, withLock } from '@boxcar/kit';
import { findNode, type Cluster, type ClusterNode } from '@boxcar/model';
import { execa } from 'execa';
import { detectAccelerator, QEMU_BINARY, type AcceleratorChoice } from '../accel.ts';
import { forwardsKubernetesApi } from '../provider.ts';
import { waitForSsh } from '../ssh.ts';
import { qemuNodeArgs, vdeSwitchArgs } from './args.ts';
import { SWITCHES, stateLayout, type NodePaths, type StateLayout, type SwitchName } from './layout.ts';
import { freePort, livePid, processesMentioning, stopProcess } from './processes.ts';

// The qemu provider: each node is a daemonized qemu on a qcow2 overlay of its base image; the cluster
// and VPP networks are two vde_switch segments (unix sockets: nothing touches the host network);
// SSH reaches a node through a port forwarded from 127.0.0.1 only, and so does the Kubernetes API of the
// master of a cluster that runs Kubernetes as the lab does.

export type QemuStep = 'accelerator' | 'switch' | 'overlay' | 'launch' | 'boot' | 'ssh' | 'ready' | 'stop' | 'clean' | 'snapshot';

export interface QemuProgress {
  node?: string;
  step: QemuStep;
  message: string;
}

export class QemuNodeError extends Error {
  constructor(
    readonly node: string,
    readonly step: QemuStep,
    readonly serialLog: string,
    detail: string,
  ) {
    super(`qemu node ${node}: ${step} failed: ${detail}\n  serial log: ${serialLog}`);
    this.name = 'QemuNodeError';
  }
}

export interface QemuSshOptions {
  user: string;
  keyFile: string;
  /** Per node; TCG boots take ~25-60 s, three at once on two cores longer. */
  timeoutMs?: number;
}

export interface QemuOptions {
  /** e.g. <repo>/.cluster/<cluster>/qemu */
  stateDir: string;
  onProgress?: (event: QemuProgress) => void;
  /** Default: detectAccelerator(). */
  accel?: AcceleratorChoice;
  /** When given, "up" waits until each node answers SSH with this key. */
  ssh?: QemuSshOptions;
}

export interface QemuUpOptions extends QemuOptions {
  /** Base image (qcow2) per node name. */
  images: Record<string, string>;
}

export interface QemuNodeInfo {
  name: string;
  sshHost: '127.0.0.1';
  sshPort: number;
  /** The port on 127.0.0.1 forwarded to the guest's Kubernetes API (forwardsKubernetesApi: the master of a Kubernetes cluster). */
  apiPort?: number;
  serialLog: string;
  pid: number;
  /** False when the node was already running and was left alone. */
  started: boolean;
}

const DEFAULT_SSH_TIMEOUT_MS = 5 * 60_000;

/** Brings every node of the cluster up (nodes already running are left alone). */
export async function qemuUp(cluster: Cluster, options: QemuUpOptions): Promise<{ nodes: QemuNodeInfo[]; accel: AcceleratorChoice }> {
  const missing = cluster.nodes.filter((node) => !options.images[node.name]).map((node) => node.name);
  if (missing.length) throw new Error(`qemuUp: images has no base image for ${missing.join(', ')}; it needs one per node (${cluster.nodes.map((n) => n.name).join(', ')})`);
  const accel = options.accel ?? (await chooseAccel(options));
  const launched: QemuNodeInfo[] = [];
  for (const node of cluster.nodes) launched.push(await launchNode(cluster, node, options.images[node.name]!, { ...options, accel }));
  // The nodes boot together; waiting for them one by one would add their boot times up.
  if (options.ssh) {
    const waits = await Promise.allSettled(launched.map((info) => awaitSsh(cluster, info, stateLayout(options.stateDir), options)));
    const failures = waits.flatMap((wait) => (wait.status === 'rejected' ? [wait.reason as Error] : []));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new Error(`${failures.length} nodes of cluster ${cluster.name} did not come up:\n${failures.map((error) => error.message).join('\n')}`);
  }
  return { nodes: launched, accel };
}

/** One node up (the CDKTF app runs one step per node). */
export async function qemuNodeUp(
  cluster: Cluster,
  nodeName: string,
  options: QemuOptions & { image: string; imageSha256?: string; oemStrings?: readonly string[] },
): Promise<QemuNodeInfo> {
  const node = findNode(cluster, nodeName);
  const accel = options.accel ?? (await chooseAccel(options));
  const info = await launchNode(cluster, node, options.image, { ...options, accel });
  if (options.ssh) await awaitSsh(cluster, info, stateLayout(options.stateDir), options);
  return info;
}

async function chooseAccel(options: QemuOptions): Promise<AcceleratorChoice> {
  const accel = await detectAccelerator();
  options.onProgress?.({ step: 'accelerator', message: `${accel.accel}: ${accel.reason}` });
  return accel;
}

async function launchNode(
  cluster: Cluster,
  node: ClusterNode,
  image: string,
  options: QemuOptions & { accel: AcceleratorChoice; imageSha256?: string; oemStrings?: readonly string[] },
): Promise<QemuNodeInfo> {
  const layout = stateLayout(options.stateDir);
  const paths = layout.node(node.name);
  const progress = (step: QemuStep, message: string) => options.onProgress?.({ node: node.name, step, message });
  const base = resolve(image);
  await checkBaseImage(node.name, base, paths.serialLog);

  return withStateLock(layout, async () => {
    await mkdir(layout.stateDir, { recursive: true });
    const ports = await readPorts(layout);
    const apiPorts = await readPorts(layout, 'api');
    const forwardApi = forwardsKubernetesApi(cluster, node.name);
    const running = await livePid(paths.pidFile, paths.pidFile);
    if (running !== undefined && ports[node.name] !== undefined) {
      // A master launched before its API was forwarded keeps running without it (status says so), rather than being restarted here.
      const apiPort = forwardApi ? apiPorts[node.name] : undefined;
      progress('ready', `already running (pid ${running}), SSH on 127.0.0.1:${ports[node.name]}${apiPort !== undefined ? `, Kubernetes API on 127.0.0.1:${apiPort}` : ''}`);
      return { name: node.name, sshHost: '127.0.0.1', sshPort: ports[node.name]!, ...(apiPort !== undefined ? { apiPort } : {}), serialLog: paths.serialLog, pid: running, started: false };
    }
    if (running !== undefined) await stopProcess(running);
    // A qemu of this node whose pid file was lost still holds the disk's lock: a second one would not
    // start. It is stopped like a crash (the disk is what survives), then the node boots from its disk.
    const strays = (await processesMentioning(paths.dir)).filter((candidate) => /(^|\/)qemu-system-\S+$/.test(candidate.command.split(' ')[0]!));
    for (const stray of strays) {
      progress('launch', `stopping a qemu of this node that its pid file no longer names (pid ${stray.pid})`);
      await stopProcess(stray.pid);
    }

    for (const name of SWITCHES) await ensureSwitch(layout, name, progress);

    await mkdir(paths.dir, { recursive: true });
    await ensureOverlay({ node: node.name, base, ...(options.imageSha256 ? { baseSha256: options.imageSha256 } : {}), paths, progress });

    // Every port another node of the cluster forwards, SSH or API.
    const others = (recorded: Record<string, number>) => Object.entries(recorded).filter(([name]) => name !== node.name).map(([, port]) => port);
    const taken = new Set([...others(ports), ...others(apiPorts)]);
    let lastError = '';
    // A port found free can be taken by someone else before qemu binds it: try others once.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const sshPort = await freePort(attempt === 0 ? ports[node.name] : undefined, taken);
      const apiPort = forwardApi ? await freePort(attempt === 0 ? apiPorts[node.name] : undefined, new Set([...taken, sshPort])) : undefined;
      const args = qemuNodeArgs({
        cluster, node, paths, sshPort, ...(apiPort !== undefined ? { apiPort } : {}), switchSockets: layout.switchSocket, accelArgs: options.accel.qemuArgs, ...(options.oemStrings ? { oemStrings: options.oemStrings } : {}),
      });
      progress('launch', `qemu (${options.accel.accel}, ${node.memoryMb} MB, ${node.cpus} CPU), SSH on 127.0.0.1:${sshPort}${apiPort !== undefined ? `, Kubernetes API on 127.0.0.1:${apiPort}` : ''}`);
      await rm(paths.pidFile, { force: true });
      const result = await execa(QEMU_BINARY, args, { reject: false, stdin: 'ignore', timeout: 60_000 });
      const pid = await livePid(paths.pidFile, paths.pidFile);
      if (result.exitCode === 0 && pid !== undefined) {
        await writePorts(layout, { ...(await readPorts(layout)), [node.name]: sshPort });
        if (apiPort !== undefined) await writePorts(layout, { ...(await readPorts(layout, 'api')), [node.name]: apiPort }, 'api');
        // `cluster start` relaunches the node from its saved state: that needs the very same machine.
        await atomicWriteFile(paths.launchArgs, `${JSON.stringify({ args, sshPort, ...(apiPort !== undefined ? { apiPort } : {}) }, null, 2)}\n`);
        return { name: node.name, sshHost: '127.0.0.1', sshPort, ...(apiPort !== undefined ? { apiPort } : {}), serialLog: paths.serialLog, pid, started: true };
      }
      // Started (daemonized) and already gone: the guest died while booting, not the launch.
      if (result.exitCode === 0) throw new QemuNodeError(node.name, 'boot', paths.serialLog, `qemu exited while the node was booting (cluster ${cluster.name}), right after it started; last serial lines:\n${await serialTail(paths.serialLog)}`);
      lastError = String(result.stderr || result.stdout || `exit status ${result.exitCode}`).trim();
      if (!/host forwarding rule|Address already in use/i.test(lastError)) break;
    }
    throw new QemuNodeError(node.name, 'launch', paths.serialLog, lastError);
  });
}

async function checkBaseImage(node: string, base: string, serialLog: string): Promise<void> {
  // Before qemu-img, which would itself open an external data file the header names.
  const references = await diskImageHostReferences(base);
  if (references.length) throw new QemuNodeError(node, 'overlay', serialLog, `base image ${base} names files on this host, refused: ${references.join('; ')}`);
  const info = await execa('qemu-img', ['info', '--output=json', '-U', base], { reject: false, stdin: 'ignore' });
  if (info.exitCode !== 0) throw new QemuNodeError(node, 'overlay', serialLog, `base image ${base} cannot be read: ${String(info.stderr).trim()}`);
  const format = (JSON.parse(String(info.stdout)) as { format?: string }).format;
  if (format !== 'qcow2') throw new QemuNodeError(node, 'overlay', serialLog, `base image ${base} is ${format}, not qcow2`);
}

export interface OverlaySpec {
  node: string;
  /** The base image (absolute path). */
  base: string;
  /** Its sha256 (the store's layer manifest has it); computed from the file when absent. */
  baseSha256?: string;
  paths: Pick<NodePaths, 'overlay' | 'baseDigest' | 'serialLog'>;
  progress: (step: QemuStep, message: string) => void;
}

/**
 * A qcow2 overlay on the base image. An existing one is kept (the node's disk survives down/up) when it
 * was made on the same base path and the bytes behind that path are still those it was made on: an
 * overlay holds only the clusters the guest wrote, so on other base bytes it is a corrupt disk.
 */
export async function ensureOverlay(spec: OverlaySpec): Promise<void> {
  const { node, base, paths, progress } = spec;
  const baseSha256 = spec.baseSha256 ?? (await sha256File(base)).sha256;
  const existing = await execa('qemu-img', ['info', '--output=json', '-U', paths.overlay], { reject: false, stdin: 'ignore' });
  if (existing.exitCode === 0) {
    const info = JSON.parse(String(existing.stdout)) as { 'full-backing-filename'?: string; 'backing-filename'?: string };
    if ((info['full-backing-filename'] ?? info['backing-filename']) === base) {
      const recorded = await readFile(paths.baseDigest, 'utf8').then((text) => text.trim(), () => undefined);
      if (recorded !== undefined && recorded !== baseSha256) {
        throw new QemuNodeError(
          node,
          'overlay',
          paths.serialLog,
          `its disk ${paths.overlay} is an overlay on ${base}, made when that file had sha256 ${recorded}; it now has sha256 ${baseSha256}, ` +
            `so the overlay cannot be reused. Take the node down and up again to start from a fresh overlay: ` +
            `\`boxcar node down ${node}\` then \`boxcar node up ${node}\` (or cluster down, then cluster up)`,
        );
      }
      // An overlay made before digests were recorded: taken as made on what is there now.
      if (recorded === undefined) await atomicWriteFile(paths.baseDigest, `${baseSha256}\n`);
      progress('overlay', `reusing ${paths.overlay}`);
      return;
    }
  }
  progress('overlay', `${paths.overlay} on ${base}`);
  // The old record goes first: a crash before the new one is written leaves no record, never a wrong one.
  await rm(paths.baseDigest, { force: true });
  const temp = `${paths.overlay}.tmp`;
  const created = await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, temp], { reject: false, stdin: 'ignore' });
  if (created.exitCode !== 0) throw new QemuNodeError(node, 'overlay', paths.serialLog, `qemu-img create failed: ${String(created.stderr).trim()}`);
  await rename(temp, paths.overlay);
  await atomicWriteFile(paths.baseDigest, `${baseSha256}\n`);
}

export async function ensureSwitch(layout: StateLayout, name: SwitchName, progress: (step: QemuStep, message: string) => void): Promise<void> {
  const socketDir = layout.switchSocket[name];
  const pidFile = layout.switchPidFile[name];
  if ((await livePid(pidFile, socketDir)) !== undefined && (await pathExists(`${socketDir}/ctl`))) return;
  await rm(socketDir, { recursive: true, force: true });
  // A switch that was killed (a host restart, kill -9) leaves its pid file, and vde_switch started on an
  // existing pid file makes its socket, then quietly exits: the nodes would get "Connection refused".
  await rm(pidFile, { force: true });
  progress('switch', `vde_switch for the ${name} network at ${socketDir}`);
  const result = await execa('vde_switch', vdeSwitchArgs(socketDir, pidFile), { reject: false, stdin: 'ignore', timeout: 30_000 });
  if (result.exitCode !== 0) {
    const hint = (result as { code?: string }).code === 'ENOENT' ? ' (install the Debian package vde2)' : '';
    throw new Error(`vde_switch for the ${name} network failed${hint}: ${String(result.stderr || result.message).trim()}`);
  }
  // Ready when its socket is there and the process that made it runs (a switch that exits at once may leave the socket for a moment).
  for (let waited = 0; !((await pathExists(`${socketDir}/ctl`)) && (await livePid(pidFile, socketDir)) !== undefined); waited += 50) {
    if (waited > 5_000) throw new Error(`vde_switch for the ${name} network started but is not running with its socket ${socketDir}/ctl and pid file ${pidFile}`);
    await sleep(50);
  }
}

async function awaitSsh(cluster: Cluster, info: QemuNodeInfo, layout: StateLayout, options: QemuOptions): Promise<void> {
  const ssh = options.ssh!;
  const paths = layout.node(info.name);
  const timeoutMs = ssh.timeoutMs ?? DEFAULT_SSH_TIMEOUT_MS;
  options.onProgress?.({ node: info.name, step: 'ssh', message: `waiting for SSH on 127.0.0.1:${info.sshPort}` });
  const watcher = new AbortController();
  let died = false;
  // A qemu that exits during boot would otherwise only show up as an SSH timeout minutes later.
  const watch = (async () => {
    while (!watcher.signal.aborted) {
      if ((await livePid(paths.pidFile, paths.pidFile)) === undefined) {
        died = true;
        watcher.abort();
        return;
      }
      await sleep(1_000, undefined, { signal: watcher.signal }).catch(() => undefined);
    }
  })();
  try {
    const ready = await waitForSsh({ host: info.sshHost, port: info.sshPort, user: ssh.user, keyFile: ssh.keyFile, timeoutMs, signal: watcher.signal });
    options.onProgress?.({ node: info.name, step: 'ready', message: `SSH answered after ${ready.seconds.toFixed(0)} s` });
  } catch (error) {
    const tail = await serialTail(paths.serialLog);
    if (died) throw new QemuNodeError(info.name, 'boot', paths.serialLog, `qemu exited while the node was booting (cluster ${cluster.name}); last serial lines:\n${tail}`);
    throw new QemuNodeError(info.name, 'ssh', paths.serialLog, `${(error as Error).message}; last serial lines:\n${tail}`);
  } finally {
    watcher.abort();
    await watch;
  }
}

export async function serialTail(serialLog: string, lines = 15): Promise<string> {
  const text = await readFile(serialLog, 'utf8').catch(() => '(no serial output)');
  return text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split(/\r?\n/).filter((line) => line.trim()).slice(-lines).map((line) => `    ${line}`).join('\n');
}

/**
 * Stops one node and removes its disk overlay and files; the last node down also takes the switches
 * and the state dir. The node need not be in the model: one that left the configuration goes down too.
 * True when its qemu was running (or paused) and was stopped.
 */
export async function qemuNodeDown(cluster: Cluster, nodeName: string, options: QemuOptions): Promise<boolean> {
  const layout = stateLayout(options.stateDir);
  if (!(await pathExists(layout.stateDir))) return false;
  // All under the lock: a node up in parallel (terraform replaces nodes in parallel) waits for it, then
  // makes the directory and its switches again.
  return withStateLock(layout, async () => {
    const stopped = await removeNode(layout, nodeName, options);
    if ((await nodeDirs(layout)).length === 0) {
      await stopSwitches(layout, options);
      await removeStateDir(cluster, layout);
    }
    return stopped;
  });
}

/** The provider's lock for this cluster, its directory made first (the lock file lives beside the state dir). */
export async function withStateLock<T>(layout: StateLayout, fn: () => Promise<T>): Promise<T> {
  await mkdir(dirname(layout.lockFile), { recursive: true });
  return withLock(layout.lockFile, fn);
}

/** Everything of the cluster down: qemu and vde_switch processes, sockets, overlays, logs, the state dir. Verified. */
export async function qemuDown(cluster: Cluster, options: QemuOptions): Promise<{ stopped: string[] }> {
  const layout = stateLayout(options.stateDir);
  if (!(await pathExists(layout.stateDir))) {
    await verifyGone(cluster, layout);
    return { stopped: [] };
  }
  const stopped = await withStateLock(layout, async () => {
    const names = await nodeDirs(layout);
    const result: string[] = [];
    for (const name of names) if (await removeNode(layout, name, options)) result.push(name);
    await stopSwitches(layout, options);
    // Processes of this state dir whose pid files were lost (a crash between launch and pid file).
    for (const stray of await processesMentioning(layout.stateDir)) {
      options.onProgress?.({ step: 'clean', message: `stopping stray process ${stray.pid}: ${stray.command}` });
      await stopProcess(stray.pid);
    }
    await removeStateDir(cluster, layout);
    return result;
  });
  return { stopped };
}

async function removeStateDir(cluster: Cluster, layout: StateLayout): Promise<void> {
  await rm(layout.stateDir, { recursive: true, force: true });
  await verifyGone(cluster, layout);
}

async function verifyGone(cluster: Cluster, layout: StateLayout): Promise<void> {
  const left = await processesMentioning(layout.stateDir);
  const problems = [
    ...left.map((p) => `process ${p.pid} still runs: ${p.command}`),
    ...((await pathExists(layout.stateDir)) ? [`${layout.stateDir} still exists`] : []),
  ];
  if (problems.length) throw new Error(`qemu down of cluster ${cluster.name} left things behind:\n  ${problems.join('\n  ')}`);
}

async function removeNode(layout: StateLayout, name: string, options: QemuOptions): Promise<boolean> {
  const paths = layout.node(name);
  const pid = await livePid(paths.pidFile, paths.pidFile);
  if (pid !== undefined) {
    options.onProgress?.({ node: name, step: 'stop', message: `stopping qemu (pid ${pid})` });
    await stopProcess(pid);
  }
  await rm(paths.dir, { recursive: true, force: true });
  for (const which of ['ssh', 'api'] as const) {
    const ports = await readPorts(layout, which);
    if (name in ports) {
      delete ports[name];
      await writePorts(layout, ports, which);
    }
  }
  return pid !== undefined;
}

async function stopSwitches(layout: StateLayout, options: QemuOptions): Promise<void> {
  for (const name of SWITCHES) {
    const pid = await livePid(layout.switchPidFile[name], layout.switchSocket[name]);
    if (pid !== undefined) {
      options.onProgress?.({ step: 'stop', message: `stopping the ${name} network's vde_switch (pid ${pid})` });
      await stopProcess(pid);
    }
    await rm(layout.switchSocket[name], { recursive: true, force: true });
    await rm(layout.switchPidFile[name], { force: true });
  }
}

/** The nodes with a directory here; none when there is no nodes directory. Any other failure to read it is an error: taken for "no other nodes", it would stop the switches under running nodes. */
async function nodeDirs(layout: StateLayout): Promise<string[]> {
  const entries = await readdir(layout.nodesDir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new Error(`qemu provider: cannot read ${layout.nodesDir}: ${error.message}`);
  });
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}

export interface QemuStatus {
  switches: Record<SwitchName, boolean>;
  nodes: { name: string; state: 'running' | 'stopped' | 'absent'; pid?: number; sshPort?: number; apiPort?: number; serialLog: string }[];
}

/** What runs: per node running (qemu alive), stopped (overlay kept) or absent; model nodes first, then any other node left on disk. */
export async function qemuStatus(cluster: Cluster, options: Pick<QemuOptions, 'stateDir'>): Promise<QemuStatus> {
  const layout = stateLayout(options.stateDir);
  const ports = await readPorts(layout);
  const apiPorts = await readPorts(layout, 'api');
  const switches = { cluster: false, vpp: false };
  for (const name of SWITCHES) switches[name] = (await livePid(layout.switchPidFile[name], layout.switchSocket[name])) !== undefined;
  const nodes: QemuStatus['nodes'] = [];
  // Also the nodes whose overlay is still here though the model no longer names them.
  const names = [...new Set([...cluster.nodes.map((node) => node.name), ...(await nodeDirs(layout))])];
  for (const name of names) {
    const node = { name };
    const paths = layout.node(node.name);
    const pid = await livePid(paths.pidFile, paths.pidFile);
    const state = pid !== undefined ? 'running' : (await pathExists(paths.overlay)) ? 'stopped' : 'absent';
    nodes.push({
      name: node.name,
      state,
      ...(pid !== undefined ? { pid } : {}),
      ...(pid !== undefined && ports[node.name] !== undefined ? { sshPort: ports[node.name] } : {}),
      ...(pid !== undefined && apiPorts[node.name] !== undefined ? { apiPort: apiPorts[node.name] } : {}),
      serialLog: paths.serialLog,
    });
  }
  return { switches, nodes };
}

/** Which forwarded ports: SSH (ports.json) or the Kubernetes API (api-ports.json). */
export type PortKind = 'ssh' | 'api';

const portsFile = (layout: StateLayout, which: PortKind) => (which === 'api' ? layout.apiPortsFile : layout.portsFile);

export async function readPorts(layout: StateLayout, which: PortKind = 'ssh'): Promise<Record<string, number>> {
  const file = portsFile(layout, which);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  const parsed = JSON.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every((port) => Number.isInteger(port))) {
    throw new Error(`${file}: must map node names to port numbers; delete it to start over`);
  }
  return parsed as Record<string, number>;
}

export async function writePorts(layout: StateLayout, ports: Record<string, number>, which: PortKind = 'ssh'): Promise<void> {
  await atomicWriteFile(portsFile(layout, which), `${JSON.stringify(ports, null, 2)}\n`);
}

