import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ActionableError, atomicWriteFile, unlessMissing } from '@boxcar/kit';
import { checkSnapshotName, STOPPED_SNAPSHOT, type ProviderName } from '@boxcar/model';
import { nodeProvider, sshRun, waitForSsh, type NodeRunState, type NodeSnapshots, type SnapshotInfo } from '@boxcar/providers';
import { setGuestClock } from './guest-clock.ts';
import { clusterSshKey, nodeMachines, providerContext, type NodeContext } from './runtime.ts';
import { closeAllConnections, nodeTarget } from './ssh-access.ts';
import { readNodeRecord, writeNodeRecord, type ClusterPaths, type NodeRecord } from './state.ts';

// Whole-cluster snapshots and stop/start. The nodes are paused together, then each is saved (or
// restored, or stopped with its state) through its provider, then all are resumed together: etcd,
// Felix and the nodes see one moment. What a snapshot was taken from (each node's box and
// configuration hash) is kept beside it in .cluster/<name>/snapshots/<snapshot>.json, so that a restore
// is refused where the disk it needs is gone, and terraform learns which nodes run an older configuration.

export interface SnapshotRecord {
  name: string;
  /**
   * What the snapshot is called inside each node's disk (the provider's snapshot name); absent: `name`.
   * A save over an existing name writes under a new tag, so that the old snapshot stays whole until
   * every node has the new one.
   */
  tag?: string;
  cluster: string;
  provider: ProviderName;
  createdAt: string;
  nodes: { name: string; box: NodeRecord['box']; configHash?: string }[];
}

export interface SnapshotSummary extends SnapshotRecord {
  /** What the snapshot holds on disk beyond the nodes' own disks, summed over the nodes (saved memory); undefined where the provider cannot tell. */
  sizeBytes?: number;
}

export function snapshotsDir(paths: ClusterPaths): string {
  return join(paths.dir, 'snapshots');
}

function snapshotFile(paths: ClusterPaths, name: string): string {
  return join(snapshotsDir(paths), `${name}.json`);
}

export async function readSnapshotRecords(paths: ClusterPaths): Promise<SnapshotRecord[]> {
  const files = (await unlessMissing(snapshotsDir(paths), readdir(snapshotsDir(paths)), [] as string[])).filter((file) => file.endsWith('.json')).sort();
  return Promise.all(files.map(async (file) => JSON.parse(await readFile(join(snapshotsDir(paths), file), 'utf8')) as SnapshotRecord));
}

async function readSnapshot(context: NodeContext, name: string): Promise<SnapshotRecord> {
  checkSnapshotName(name);
  try {
    return JSON.parse(await readFile(snapshotFile(context.paths, name), 'utf8')) as SnapshotRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const names = (await readSnapshotRecords(context.paths)).map((record) => record.name);
    throw new ActionableError(`cluster ${context.cluster.name} has no snapshot "${name}"; ${names.length ? `its snapshots: ${names.join(', ')}` : 'it has none (cluster snapshot save <name> takes one)'}`);
  }
}

/** The record of every node of the configuration: the cluster must be up on its configured provider. */
async function upNodes(context: NodeContext, verb: string): Promise<NodeRecord[]> {
  const { cluster, paths } = context;
  const records: NodeRecord[] = [];
  for (const node of cluster.nodes) {
    const record = await readNodeRecord(paths, node.name);
    if (!record) throw new ActionableError(`cluster ${cluster.name}: cannot ${verb}: node ${node.name} is not up (bring the cluster up first: cluster up)`);
    if (record.provider !== cluster.provider) throw new ActionableError(`cluster ${cluster.name}: cannot ${verb}: node ${node.name} runs on ${record.provider}, the configuration says ${cluster.provider}`);
    records.push(record);
  }
  return records;
}

function snapshotsOf(context: NodeContext): NodeSnapshots {
  return nodeProvider(context.cluster.provider).snapshots;
}

const names = (records: NodeRecord[]) => records.map((record) => record.name);

/** Runs `step` on every node at once; each failed node's error message. */
async function eachNode(nodes: string[], step: (node: string) => Promise<void>): Promise<Map<string, string>> {
  const results = await Promise.allSettled(nodes.map((node) => step(node)));
  return new Map(results.flatMap((result, index) => (result.status === 'rejected' ? [[nodes[index]!, (result.reason as Error).message] as const] : [])));
}

/** "<node>: <error>" per failed node, one per line. */
const failureLines = (failed: Map<string, string>): string => [...failed].map(([node, error]) => `  ${node}: ${error}`).join('\n');

/** Runs `step` on every node at once; every failure is reported, named by node. */
async function together(nodes: string[], what: string, step: (node: string) => Promise<void>): Promise<void> {
  const failed = await eachNode(nodes, step);
  if (failed.size) throw new Error(`${what} failed on ${failed.size} node(s):\n${failureLines(failed)}`);
}

/** What cluster start and node start say of a node they resumed, by its state before. */
export const RESUMED_FROM = {
  paused: 'resumed (it was paused); clock set',
  'stopped-with-state': 'resumed from the state cluster stop saved; clock set',
} as const;

/** Each node's machine state on the cluster's provider (one status call for all). */
async function runStates(context: NodeContext): Promise<(node: string) => NodeRunState> {
  const machines = await nodeMachines(context);
  return (node) => machines[node] ?? 'absent';
}

/** Every node must be in one of the `allowed` states; else the error says which node is in which. */
async function requireStates(context: NodeContext, records: NodeRecord[], verb: string, allowed: NodeRunState[]): Promise<void> {
  const stateOf = await runStates(context);
  const states = Object.fromEntries(records.map((record) => [record.name, stateOf(record.name)]));
  const wrong = records.filter((record) => !allowed.includes(states[record.name]!));
  if (wrong.length) {
    throw new ActionableError(`cluster ${context.cluster.name}: cannot ${verb}: ${wrong.map((record) => `${record.name} is ${states[record.name]}`).join(', ')} (it must be ${allowed.join(' or ')})`);
  }
}

/**
 * Pauses every node, runs `step` on each (paused), resumes every node, whatever `step` did: a half-done
 * step must not leave a frozen cluster behind. Where a failed step leaves a node's memory undefined
 * (a restore), `keepFailedPaused` leaves that node paused instead. Returns each failed node's error.
 */
async function whilePaused(context: NodeContext, records: NodeRecord[], step: (node: string) => Promise<void>, options: { keepFailedPaused?: boolean } = {}): Promise<Map<string, string>> {
  const provider = snapshotsOf(context);
  const where = providerContext(context, context.cluster.provider);
  let failed = new Map<string, string>();
  // Open SSH connections would be frozen into the snapshot, or cut by the restore.
  await closeAllConnections(context.paths);
  try {
    await together(names(records), 'pause', (node) => provider.pause(where, node));
    failed = await eachNode(names(records), step);
  } finally {
    const resume = options.keepFailedPaused ? names(records).filter((node) => !failed.has(node)) : names(records);
    await together(resume, 'resume', (node) => provider.resume(where, node));
  }
  return failed;
}

/**
 * A paused, restored or woken guest's clock is as old as its saved state: set it from the host's, so
 * that certificates and etcd leases see the right time. A guest just resumed under TCG may take a while
 * to answer its first key exchange: the (shared) connection is made first.
 */
async function setClocks(context: NodeContext, nodes: string[]): Promise<void> {
  const key = (await clusterSshKey(context.paths, context.cluster)).privateKey;
  await together(nodes, 'setting the clock', async (node) => {
    const target = nodeTarget(context.cluster, context.paths, (await readNodeRecord(context.paths, node))!, 'cluster', key, true);
    await waitForSsh({ ...target, timeoutMs: context.cluster.timeouts.sshReadySeconds * 1000, intervalMs: 1_000 });
    await setGuestClock(node, async (command) => (await sshRun(target, command, { timeoutMs: 60_000 })).stdout);
  });
}

export interface SnapshotResult {
  snapshot: SnapshotRecord;
  seconds: number;
}

/** The snapshot's name inside the nodes' disks. */
export function snapshotTag(snapshot: SnapshotRecord): string {
  return snapshot.tag ?? snapshot.name;
}

/**
 * The tag a new save of `name` is written under: the name itself where no snapshot uses it as its tag,
 * else the name with the first free `.s<n>` (cut to fit a snapshot word). Pure.
 */
export function freshSnapshotTag(name: string, inUse: ReadonlySet<string>): string {
  if (!inUse.has(name)) return name;
  for (let n = 1; ; n += 1) {
    const suffix = `.s${n}`;
    const candidate = `${name.slice(0, 63 - suffix.length)}${suffix}`;
    if (!inUse.has(candidate)) return candidate;
  }
}

/**
 * Disk and memory of every node under `name`, from one paused moment. An existing snapshot of that
 * name is replaced only once every node has the new one: the new one is written under its own tag,
 * the record switched to it, and the old one removed last. A save that fails on a node removes what
 * it wrote on the others and leaves the old snapshot as it was.
 */
export async function snapshotSave(context: NodeContext, name: string): Promise<SnapshotResult> {
  const started = Date.now();
  checkSnapshotName(name);
  const records = await upNodes(context, 'take a snapshot');
  await requireStates(context, records, 'take a snapshot', ['running']);
  const provider = snapshotsOf(context);
  const where = providerContext(context, context.cluster.provider);
  const existing = await readSnapshotRecords(context.paths);
  const previous = existing.find((record) => record.name === name);
  const tag = freshSnapshotTag(name, new Set(existing.flatMap((record) => [snapshotTag(record), record.name])).add(STOPPED_SNAPSHOT));
  const failed = await whilePaused(context, records, (node) => provider.save(where, node, tag));
  if (failed.size) {
    // Whatever part of the new one exists goes; the old one was never touched.
    await Promise.allSettled(names(records).map((node) => provider.remove(where, node, tag)));
    throw new Error(`saving snapshot ${name} failed on ${failed.size} node(s):\n${failureLines(failed)}`);
  }
  const snapshot: SnapshotRecord = {
    name,
    ...(tag !== name ? { tag } : {}),
    cluster: context.cluster.name,
    provider: context.cluster.provider,
    createdAt: new Date(started).toISOString(),
    nodes: records.map((record) => ({ name: record.name, box: record.box, ...(record.configHash ? { configHash: record.configHash } : {}) })),
  };
  await mkdir(snapshotsDir(context.paths), { recursive: true });
  await atomicWriteFile(snapshotFile(context.paths, name), `${JSON.stringify(snapshot, null, 2)}\n`);
  if (previous) {
    const present = (await Promise.all(previous.nodes.map(async (node) => ((await readNodeRecord(context.paths, node.name)) ? [node.name] : [])))).flat();
    await together(present, `removing the replaced snapshot ${name}`, (node) => nodeProvider(previous.provider).snapshots.remove(providerContext(context, previous.provider), node, snapshotTag(previous)));
  }
  await setClocks(context, names(records));
  return { snapshot, seconds: (Date.now() - started) / 1000 };
}

/**
 * Why the snapshot cannot be restored on the nodes as they run now, with what to do; undefined when it
 * can. A node whose box changed since was replaced: its disk, and the snapshot in it, are gone.
 */
export function restoreProblem(snapshot: SnapshotRecord, records: NodeRecord[], provider: ProviderName): string | undefined {
  const retake = `take a new snapshot of the cluster as it runs now (cluster snapshot save ${snapshot.name}), or delete this one (cluster snapshot delete ${snapshot.name})`;
  if (snapshot.provider !== provider) return `snapshot ${snapshot.name} was taken on the ${snapshot.provider} provider; the cluster runs on ${provider}. Bring the cluster up on ${snapshot.provider} to use it, or ${retake}`;
  const saved = new Map(snapshot.nodes.map((node) => [node.name, node]));
  const running = new Set(records.map((record) => record.name));
  const missing = snapshot.nodes.filter((node) => !running.has(node.name)).map((node) => node.name);
  const extra = records.filter((record) => !saved.has(record.name)).map((record) => record.name);
  if (missing.length || extra.length) {
    return `snapshot ${snapshot.name} holds the nodes ${snapshot.nodes.map((node) => node.name).join(', ')}; the cluster now has ${records.map((record) => record.name).join(', ')}. Go back to those nodes (cluster up with that configuration) to use it, or ${retake}`;
  }
  const changed = records.filter((record) => saved.get(record.name)!.box.version !== record.box.version || saved.get(record.name)!.box.contentKey !== record.box.contentKey);
  if (changed.length) {
    const lines = changed.map((record) => `${record.name}: snapshot from ${saved.get(record.name)!.box.name} ${saved.get(record.name)!.box.version}, now ${record.box.name} ${record.box.version}`);
    return `snapshot ${snapshot.name} was taken from other box versions than the nodes run now (${lines.join('; ')}); a node recreated from a new box no longer has it. Either ${retake}`;
  }
  return undefined;
}

/** Every node back to snapshot `name` (disk and memory), resumed together, clocks set; records say which configuration each now runs. */
export async function snapshotRestore(context: NodeContext, name: string): Promise<SnapshotResult> {
  const started = Date.now();
  const snapshot = await readSnapshot(context, name);
  const records = await upNodes(context, `restore snapshot ${name}`);
  const problem = restoreProblem(snapshot, records, context.cluster.provider);
  if (problem) throw new ActionableError(`cluster ${context.cluster.name}: cannot restore: ${problem}`);
  await requireStates(context, records, `restore snapshot ${name}`, ['running', 'paused']);
  const damaged = records.filter((record) => record.restoreFailed);
  if (damaged.length) throw new ActionableError(`cluster ${context.cluster.name}: cannot restore: ${damaged.map((record) => record.name).join(', ')} failed an earlier restore and must be made again first: cluster up`);
  const provider = snapshotsOf(context);
  const where = providerContext(context, context.cluster.provider);
  // A node whose restore failed stays paused: resumed, it would run whatever half-loaded memory it has.
  const failed = await whilePaused(context, records, (node) => provider.restore(where, node, snapshotTag(snapshot)), { keepFailedPaused: true });
  const at = new Date().toISOString();
  for (const record of records) {
    const error = failed.get(record.name);
    if (error !== undefined) {
      await writeNodeRecord(context.paths, { ...record, restoreFailed: { snapshot: name, at, error } });
      continue;
    }
    const saved = snapshot.nodes.find((node) => node.name === record.name)!;
    // The node now runs the configuration it had when the snapshot was taken: cluster plan/up compare it with the current one.
    const { configHash: _current, ...rest } = record;
    await writeNodeRecord(context.paths, { ...rest, ...(saved.configHash ? { configHash: saved.configHash } : {}), snapshot: { name, restoredAt: at } });
  }
  await setClocks(context, names(records).filter((node) => !failed.has(node)));
  if (failed.size) {
    throw new ActionableError(
      `cluster ${context.cluster.name}: restoring snapshot ${name} failed on ${failed.size} node(s); each is left paused (its memory may be half loaded) and cluster up makes it again from its box:\n` +
        failureLines(failed) +
        (failed.size < records.length ? `\nthe others are restored and running: ${names(records).filter((node) => !failed.has(node)).join(', ')}` : ''),
    );
  }
  return { snapshot, seconds: (Date.now() - started) / 1000 };
}

/** Each snapshot's size summed over the nodes' lists; undefined once one node's provider cannot tell it. Pure. */
export function snapshotSizes(perNode: readonly SnapshotInfo[][]): Map<string, number | undefined> {
  const sizes = new Map<string, number | undefined>();
  for (const snapshot of perNode.flat()) {
    const sum = sizes.has(snapshot.name) ? sizes.get(snapshot.name) : 0;
    sizes.set(snapshot.name, sum === undefined || snapshot.sizeBytes === undefined ? undefined : sum + snapshot.sizeBytes);
  }
  return sizes;
}

/** Every snapshot of the cluster, with what it holds on disk (per node, as its provider counts it). */
export async function snapshotList(context: NodeContext): Promise<SnapshotSummary[]> {
  const records = await readSnapshotRecords(context.paths);
  const where = providerContext(context, context.cluster.provider);
  const perNode: SnapshotInfo[][] = [];
  // Only nodes that are up have snapshots to list (a provider may not even have its project yet).
  for (const node of context.cluster.nodes) {
    if (await readNodeRecord(context.paths, node.name)) perNode.push(await snapshotsOf(context).list(where, node.name));
  }
  const sizes = snapshotSizes(perNode);
  return records.map((record) => {
    const tag = snapshotTag(record);
    const sizeBytes = sizes.has(tag) ? sizes.get(tag) : 0;
    return { ...record, ...(sizeBytes !== undefined && { sizeBytes }) };
  });
}

/** Snapshot `name` removed from every node that has it, and its record. */
export async function snapshotDelete(context: NodeContext, name: string): Promise<void> {
  const snapshot = await readSnapshot(context, name);
  const where = providerContext(context, snapshot.provider);
  const provider = nodeProvider(snapshot.provider).snapshots;
  const present = (await Promise.all(snapshot.nodes.map(async (node) => ((await readNodeRecord(context.paths, node.name)) ? [node.name] : [])))).flat();
  await together(present, `deleting snapshot ${name}`, (node) => provider.remove(where, node, snapshotTag(snapshot)));
  await rm(snapshotFile(context.paths, name), { force: true });
}

/** What a whole-cluster verb did to each node, in the configuration's order. */
export interface NodeOutcome {
  node: string;
  /** The machine's state before. */
  was: NodeRunState;
  did: string;
  /** False where the node is not in the state the verb is for (cluster up deals with it). */
  ok: boolean;
}

export interface ClusterVerbResult {
  nodes: NodeOutcome[];
  seconds: number;
}

/**
 * Every running or paused node's state saved and the node stopped (`cluster stop`); `cluster start`
 * resumes it. Nodes in another state are left as they are and said so: one stopped with its state
 * already, one whose machine is not running (nothing to save).
 */
export async function clusterStop(context: NodeContext): Promise<ClusterVerbResult> {
  const started = Date.now();
  const records = await upNodes(context, 'stop');
  const stateOf = await runStates(context);
  // A node whose restore failed has no state worth saving.
  const live = records.filter((record) => ['running', 'paused'].includes(stateOf(record.name)) && !record.restoreFailed);
  const provider = snapshotsOf(context);
  const where = providerContext(context, context.cluster.provider);
  await closeAllConnections(context.paths);
  // Paused together first: the saved states are of one moment, whichever node is saved last.
  await together(names(live), 'pause', (node) => provider.pause(where, node));
  await together(names(live), 'stop', (node) => provider.suspend(where, node));
  const nodes = records.map((record): NodeOutcome => {
    const was = stateOf(record.name);
    if (live.includes(record)) return { node: record.name, was, did: 'running state saved, stopped', ok: true };
    if (record.restoreFailed) return { node: record.name, was, did: `its restore of snapshot ${record.restoreFailed.snapshot} failed: nothing to save; cluster up makes it again`, ok: false };
    if (was === 'stopped-with-state') return { node: record.name, was, did: 'already stopped with its state saved', ok: true };
    return { node: record.name, was, did: `not running (${was}): nothing to save; cluster up boots it again`, ok: false };
  });
  return { nodes, seconds: (Date.now() - started) / 1000 };
}

/** A node stopped with its state started from it, left paused where the provider can; its record follows where it now answers. */
async function wakeNode(context: NodeContext, node: string): Promise<void> {
  const woken = await snapshotsOf(context).wake(providerContext(context, context.cluster.provider), node);
  const record = (await readNodeRecord(context.paths, node))!;
  const moved = woken && (record.ssh.host !== woken.ssh.host || record.ssh.port !== woken.ssh.port || (woken.api && (record.api?.host !== woken.api.host || record.api.port !== woken.api.port)));
  if (woken && moved) await writeNodeRecord(context.paths, { ...record, ssh: { ...record.ssh, ...woken.ssh }, ...(woken.api ? { api: woken.api } : {}) });
}

/**
 * Every node stopped with its state back from it, resumed together, clocks set (`cluster start`): a
 * resume, not a boot. A paused node is resumed with them, a running one left alone; a node whose machine
 * stopped without a saved state (a crash) is not booted here: cluster up boots it from its disk and
 * configures it.
 */
export async function clusterStart(context: NodeContext): Promise<ClusterVerbResult> {
  const started = Date.now();
  const records = await upNodes(context, 'start');
  const before = await runStates(context);
  const { woken, resumed } = await resumeNodes(context, records, before);
  const nodes = records.map((record): NodeOutcome => {
    const was = before(record.name);
    if (woken.includes(record.name)) return { node: record.name, was, did: RESUMED_FROM['stopped-with-state'], ok: true };
    if (resumed.includes(record.name)) return { node: record.name, was, did: RESUMED_FROM.paused, ok: true };
    if (was === 'running') return { node: record.name, was, did: 'already running', ok: true };
    if (record.restoreFailed) return { node: record.name, was, did: `not started: its restore of snapshot ${record.restoreFailed.snapshot} failed; cluster up makes it again`, ok: false };
    return { node: record.name, was, did: `not started: ${was === 'stopped' ? 'its machine stopped without a saved state; cluster up boots it from its disk' : 'its disk is gone; cluster up makes it again'}`, ok: false };
  });
  return { nodes, seconds: (Date.now() - started) / 1000 };
}

/**
 * The given nodes running again from where they stopped (cluster start, and node start for one node):
 * those stopped with their state are woken from it together, then every one left paused is resumed at
 * once, and their clocks are set. A node whose restore failed is never woken nor resumed. `stateOf`:
 * each node's machine before. Returns the nodes woken and the nodes resumed (the woken among them).
 */
export async function resumeNodes(context: NodeContext, records: NodeRecord[], stateOf: (node: string) => NodeRunState): Promise<{ woken: string[]; resumed: string[] }> {
  const provider = snapshotsOf(context);
  const where = providerContext(context, context.cluster.provider);
  const usable = records.filter((record) => !record.restoreFailed);
  const woken = names(usable.filter((record) => stateOf(record.name) === 'stopped-with-state'));
  let resumed: string[] = [];
  try {
    await together(woken, 'start', (node) => wakeNode(context, node));
  } finally {
    // Those that woke run on, even if another failed: a half-started cluster is visible in status, a frozen one is not.
    const now = await runStates(context);
    resumed = names(usable.filter((record) => now(record.name) === 'paused'));
    await together(resumed, 'resume', (node) => provider.resume(where, node));
  }
  await setClocks(context, [...new Set([...woken, ...resumed])]);
  return { woken, resumed };
}

/** The snapshot records dropped (cluster down: the snapshots themselves went with the nodes' disks); their names. */
export async function dropSnapshotRecords(paths: ClusterPaths): Promise<string[]> {
  const names = (await readSnapshotRecords(paths)).map((record) => record.name);
  await rm(snapshotsDir(paths), { recursive: true, force: true });
  return names;
}
