import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import type { BoxStore } from '@boxcar/box-store';
import { ActionableError, shellQuote } from '@boxcar/kit';
import { BOOTSTRAP_USER, canonicalJson, findNode, PROVIDERS, type Cluster, type ClusterNode, type ProviderName } from '@boxcar/model';
import { applyPlan, ensureClusterPki, planNode, readCniDir, readKubernetesPems, readNodeCertificates, type NodePlan } from '@boxcar/node-config';
import { bootstrapKeyPath, ensureKeyPair, existingBootstrapKey, HostKeyMismatchError, NodeBootError, nodeProvider, sshRun, waitForSsh, type NodeBoot, type NodeRunState, type ProviderContext, type SshTarget } from '@boxcar/providers';
import { kubernetesReadiness, withReadiness } from './kubeconfig.ts';
import { closeAllConnections, forgetNode, hostKeyFromConsole, nodeTarget, pinHostKey, pinnedHostKey, type KeyName } from './ssh-access.ts';
import { clusterPaths, listNodeRecords, providerDir, readNodeRecord, removeNodeRecord, writeNodeRecord, type ClusterPaths, type NodeRecord } from './state.ts';

// The steps the cluster stack's provisioners call, one node at a time: boot it from its box,
// configure it over SSH, take it down. Terraform decides order and what to redo; each provider (libs/providers)
// does its part behind one interface.

const CONFIGURED_MARKER = '/etc/boxcar/configured';
/** The file of a layer that providers booting disks directly (qemu) use as the node's base. */
const LAYER_DISK = 'disk.qcow2';

export interface NodeContext {
  cluster: Cluster;
  store: BoxStore;
  paths: ClusterPaths;
  /** The cni/ folder the nodes' CNI configuration is made from. */
  cniDir: string;
  onProgress?: (node: string, message: string) => void;
  /** Aborts what a step is waiting for (SSH, a remote command, vagrant): set by the CLI on SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

/**
 * What every step works with: the cluster, its store, its state under `stateRoot` and its cni/ folder
 * (the CLI chooses both; nothing below it reads the environment).
 */
export function nodeContext(cluster: Cluster, store: BoxStore, where: { stateRoot: string; cniDir: string }, onProgress?: NodeContext['onProgress']): NodeContext {
  return { cluster, store, paths: clusterPaths(cluster, where.stateRoot), cniDir: where.cniDir, ...(onProgress ? { onProgress } : {}) };
}

export interface NodeBox {
  name: string;
  version: string;
  /** Content key of the layer the box was baked from. */
  contentKey: string;
  layer: string;
  catalogUrl: string;
}

/** The node's box in the store: the given version, or the newest. */
export async function nodeBox(store: BoxStore, cluster: Cluster, node: ClusterNode, version?: string): Promise<NodeBox> {
  const box = (await store.listBoxes()).find((candidate) => candidate.name === node.box);
  if (!box || box.versions.length === 0) {
    throw new ActionableError(`box ${node.box} (for ${node.name}) is not in the store ${store.url}: bake it first (nx run images:bake --profile ${cluster.profile.name})`);
  }
  const chosen = version ? box.versions.find((candidate) => candidate.version === version) : box.versions.at(-1);
  if (!chosen) throw new ActionableError(`box ${node.box} has no version ${version} in ${store.url}; versions: ${box.versions.map((v) => v.version).join(', ')}`);
  return { name: box.name, version: chosen.version, contentKey: chosen.key, layer: chosen.layer, catalogUrl: store.catalogUrl(box.name) };
}

/**
 * The cluster as the store's references name it: its name and a hash of the user and its state
 * directory. Two users, or two checkouts, each with a cluster "lab" on one host have different nodes:
 * one's cluster down must not drop the other's references (gc would then delete the layers it runs on).
 */
export function refCluster(context: Pick<NodeContext, 'cluster' | 'paths'>): string {
  const owner = createHash('sha256').update(`${process.getuid?.() ?? userInfo().username}\n${resolve(context.paths.dir)}`).digest('hex').slice(0, 8);
  return `${context.cluster.name}.${owner}`;
}

export async function clusterSshKey(paths: ClusterPaths, cluster: Cluster) {
  return ensureKeyPair(paths.sshKey, `boxcar-cluster-${cluster.name}`);
}

/** The final configuration of a node, from the model and the host's inputs (cluster key, PKI, cni/). */
export async function planFor(context: NodeContext, nodeName: string): Promise<NodePlan> {
  const { cluster, paths } = context;
  const key = await clusterSshKey(paths, cluster);
  const pki = cluster.profile.features.kubernetes ? await ensureClusterPki(paths.pki, cluster) : undefined;
  // The lab's Kubernetes (cluster.kubernetes) installs every identity of its components; the 2016 way one pair per node.
  const pem = pki && (cluster.kubernetes
    ? { kubernetes: await readKubernetesPems(pki, cluster, nodeName) }
    : { certificates: await readNodeCertificates(pki, cluster, nodeName) });
  return planNode(cluster, nodeName, {
    clusterPublicKey: (await readFile(key.publicKey, 'utf8')).trim(),
    ...pem,
    cni: await readCniDir(context.cniDir),
  });
}

/** Hash of everything a node's configuration writes and runs: a trigger of the stack's config resource. */
export function planHash(plan: NodePlan): string {
  const digest = (content: string | Uint8Array) => createHash('sha256').update(content).digest('hex');
  return createHash('sha256')
    .update(
      canonicalJson(
        plan.steps.map((step) => ({
          id: step.id,
          files: step.files.map((file) => ({ path: file.path, mode: file.mode, owner: file.owner, content: digest(file.content) })),
          commands: step.commands,
          onlyIfChanged: step.onlyIfChanged ?? false,
        })),
      ),
    )
    .digest('hex');
}

/**
 * Whether a node on `provider` gets the cluster key at its first boot: the provider hands it over
 * (SMBIOS OEM strings) and the profile's boxes read it (the boxcar-first-boot unit). Such a node is
 * reached with the cluster key only: the bake's bootstrap key is neither needed nor tried.
 */
function keyAtFirstBoot(cluster: Cluster, provider: ProviderName): boolean {
  return cluster.profile.features.firstBoot === true && nodeProvider(provider).firstBootChannel;
}

/**
 * The bake's bootstrap private key, for nodes that cannot get the cluster key at first boot. It lives
 * with the baker (never in the box store): another machine must be given a copy.
 */
async function requireBootstrapKey(cluster: Cluster, provider: ProviderName): Promise<string> {
  const pair = await existingBootstrapKey();
  if (pair) return pair.privateKey;
  const why = nodeProvider(provider).firstBootChannel
    ? `the boxes of profile ${cluster.profile.name} do not read the cluster key at first boot (no boxcar-first-boot unit)`
    : `the ${provider} provider cannot hand a node the cluster key at first boot (no SMBIOS OEM strings)`;
  throw new Error(
    `cluster ${cluster.name}: ${why}, so its nodes are first reached with the bake's bootstrap key, and this machine has none at ${bootstrapKeyPath()}: ` +
      "copy the baker's key there (mode 600) or set BOXCAR_BOOTSTRAP_KEY to its path",
  );
}

/** How a provider works for this cluster: in its own directory, with this step's progress and abort signal. */
export function providerContext(context: NodeContext, provider: ProviderName): ProviderContext {
  return {
    cluster: context.cluster,
    stateDir: providerDir(context.paths, provider),
    ...(context.onProgress ? { onProgress: context.onProgress } : {}),
    ...(context.signal ? { signal: context.signal } : {}),
  };
}

/** What the node boots from, each part fetched only when its provider asks; `bootstrap` is undefined when the node gets the cluster key at first boot. */
function nodeBoot(context: NodeContext, node: ClusterNode, box: NodeBox, bootstrap: string | undefined): NodeBoot {
  const { cluster, store } = context;
  return {
    box: { name: box.name, version: box.version, catalogUrl: box.catalogUrl },
    disk: async () => join(await store.layerFiles(cluster.profile.name, box.layer, box.contentKey), LAYER_DISK),
    diskSha256: async () => {
      // The manifest's digest is what layerFiles verified the disk against.
      const manifest = await store.readLayer(cluster.profile.name, box.layer, box.contentKey);
      const disk = manifest?.files.find((file) => file.path === LAYER_DISK);
      if (!disk) throw new Error(`layer ${cluster.profile.name}/${box.layer} ${box.contentKey} in ${store.url} has no ${LAYER_DISK} (box ${box.name} ${box.version}): bake it again`);
      return disk.sha256;
    },
    // The other nodes' newest boxes: a Vagrantfile describes every machine of the cluster.
    clusterBoxes: async () =>
      Object.fromEntries(
        await Promise.all(
          cluster.nodes.map(async (other) => {
            const chosen = other.name === node.name ? box : await nodeBox(store, cluster, other);
            return [other.name, { name: chosen.name, version: chosen.version, catalogUrl: chosen.catalogUrl }] as const;
          }),
        ),
      ),
    bootstrapKey: async () => bootstrap,
    clusterKey: async () => {
      const pair = await clusterSshKey(context.paths, cluster);
      return { publicKey: (await readFile(pair.publicKey, 'utf8')).trim(), privateKeyPath: pair.privateKey };
    },
  };
}

export async function nodeUp(context: NodeContext, nodeName: string, boxVersion?: string): Promise<NodeRecord> {
  const { cluster, store, paths } = context;
  const node = findNode(cluster, nodeName);
  const progress = (message: string) => context.onProgress?.(nodeName, message);
  const box = await nodeBox(store, cluster, node, boxVersion);
  progress(`box ${box.name} ${box.version} (content key ${box.contentKey.slice(0, 12)})`);
  // Known before anything is touched: a node that cannot get the cluster key at first boot needs the baker's key.
  const bootstrap = keyAtFirstBoot(cluster, cluster.provider) ? undefined : await requireBootstrapKey(cluster, cluster.provider);
  // Whatever stood for this node before (connections, its pinned host key) belongs to another machine.
  await forgetNode(cluster, paths, nodeName);
  // Before the boot: from now on gc keeps the layer the node's disk is an overlay of, and its box version.
  await store.addRef({ cluster: refCluster(context), node: nodeName, profile: cluster.profile.name, layer: box.layer, key: box.contentKey, box: { name: box.name, version: box.version }, owner: { user: userInfo().username, stateDir: resolve(paths.dir) } });
  const booted = await nodeProvider(cluster.provider).up(providerContext(context, cluster.provider), nodeName, nodeBoot(context, node, box, bootstrap));
  const sshReadyMs = cluster.timeouts.sshReadySeconds * 1000;
  // A node that never answers has usually said why on its console.
  const bootFailure = (step: string) => (error: Error) => {
    throw booted.serialLog && !context.signal?.aborted ? new NodeBootError(nodeName, step, booted.serialLog, error.message) : error;
  };
  let hostKey: string | undefined;
  if (booted.serialLog) {
    progress('waiting for its SSH host key on the serial console');
    hostKey = await hostKeyFromConsole(booted.serialLog, sshReadyMs, context.signal).catch(bootFailure('boot'));
    await pinHostKey(cluster, paths, nodeName, hostKey);
    progress(`host key pinned: ${hostKey.slice(0, 40)}...`);
  }
  let record: NodeRecord = {
    name: nodeName,
    provider: cluster.provider,
    box: { name: box.name, version: box.version, contentKey: box.contentKey },
    ssh: { ...booted.ssh, user: BOOTSTRAP_USER },
    ...(booted.api ? { api: booted.api } : {}),
    ...(hostKey ? { hostKey } : {}),
  };
  await writeNodeRecord(paths, record);
  progress('waiting for SSH');
  const key = await reachableKey(context, record, sshReadyMs, bootstrap).catch(bootFailure('ssh'));
  if (!record.hostKey) {
    // No console to learn it from (VirtualBox): the key of the first contact, pinned from now on.
    const recorded = await pinnedHostKey(cluster, paths, nodeName);
    if (recorded) await writeNodeRecord(paths, (record = { ...record, hostKey: recorded }));
  }
  progress(`SSH ready (${key === 'cluster' ? 'cluster key' : 'bootstrap key'})`);
  return record;
}

/** How the CLI reaches a node (cluster ssh): its pinned host key and the cluster's key. */
export async function nodeSshTarget(context: NodeContext, record: NodeRecord): Promise<SshTarget> {
  return nodeTarget(context.cluster, context.paths, record, 'cluster', (await clusterSshKey(context.paths, context.cluster)).privateKey, false);
}

/**
 * Which key the node accepts: the cluster key once it has it (from its first boot, or once configured),
 * the bootstrap key (when given: nodes that cannot get the cluster key at first boot) before.
 * Waits (the keys in turn) until one works or the time is up. Each try may take SSH_ATTEMPT_MS: a
 * key exchange with a guest under TCG, booting beside two others, can take several seconds.
 */
const SSH_ATTEMPT_MS = 15_000;

async function reachableKey(context: NodeContext, record: NodeRecord, timeoutMs: number, bootstrap: string | undefined): Promise<KeyName> {
  const keys = { cluster: (await clusterSshKey(context.paths, context.cluster)).privateKey, ...(bootstrap !== undefined && { bootstrap }) };
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    for (const which of Object.keys(keys) as KeyName[]) {
      try {
        await waitForSsh({ ...nodeTarget(context.cluster, context.paths, record, which, keys[which]!), timeoutMs: SSH_ATTEMPT_MS, intervalMs: 1_000, ...(context.signal ? { signal: context.signal } : {}) });
        return which;
      } catch (error) {
        context.signal?.throwIfAborted();
        if (error instanceof HostKeyMismatchError) throw error;
        last = error;
      }
    }
    await sleep(2_000, undefined, context.signal ? { signal: context.signal } : {});
  }
  const tried = bootstrap !== undefined ? 'neither the cluster nor the bootstrap key' : 'not the cluster key';
  throw new Error(`node ${record.name}: SSH on ${record.ssh.host}:${record.ssh.port} accepted ${tried} within ${timeoutMs / 1000} s: ${(last as Error)?.message}`);
}

export interface ConfigureResult {
  changedFiles: string[];
  ranCommands: string[];
  hash: string;
}

export async function nodeConfigure(context: NodeContext, nodeName: string): Promise<ConfigureResult> {
  const { paths } = context;
  findNode(context.cluster, nodeName);
  const record = await readNodeRecord(paths, nodeName);
  if (!record) throw new ActionableError(`node ${nodeName} has not been brought up (no ${join(paths.nodes, `${nodeName}.json`)}): run node up first`);
  // The baker's key, where this machine has one: tried only where a node may still need it (no
  // first-boot channel), and used at the end to prove the node refuses it.
  const provider = record.provider as ProviderName;
  const firstBoot = keyAtFirstBoot(context.cluster, provider);
  const bakerKey = (await existingBootstrapKey())?.privateKey;
  const bootstrap = firstBoot ? undefined : bakerKey;
  const keys = { cluster: (await clusterSshKey(paths, context.cluster)).privateKey, bootstrap };
  const which = await reachableKey(context, record, 2 * SSH_ATTEMPT_MS, bootstrap).catch(async (error: unknown) => {
    // Not configured yet, and no first-boot key: it needs the baker's key, and the error says where it belongs.
    if (!firstBoot && bootstrap === undefined) await requireBootstrapKey(context.cluster, provider);
    throw error;
  });
  const target = (key: KeyName, multiplex = true) => nodeTarget(context.cluster, paths, record, key, keys[key]!, multiplex);
  let current = target(which);
  const plan = await planFor(context, nodeName);
  const hash = planHash(plan);
  // Each remote command has a deadline: a command that hangs on a node fails the step instead of the morning.
  const deadline = { timeoutMs: context.cluster.timeouts.remoteCommandSeconds * 1000, ...(context.signal ? { signal: context.signal } : {}) };
  const exec = async (command: string, input?: string | Uint8Array) => {
    const result = await sshRun(current, `sudo -n bash -c ${shellQuote(command)}`, input === undefined ? deadline : { ...deadline, input: Buffer.from(input) });
    return { stdout: result.stdout };
  };
  const result = await applyPlan(plan, exec, {
    onStep: (event) => {
      if (event.phase === 'start') context.onProgress?.(nodeName, `step ${event.step.id}`);
      // The ssh-keys step swaps the bootstrap key for the cluster key: the rest goes over the new one.
      if (event.phase === 'done' && event.step.id === 'ssh-keys') current = target('cluster');
    },
  });
  current = target('cluster');
  await exec(`install -d -m 0755 /etc/boxcar && printf '%s\\n' ${hash} > ${CONFIGURED_MARKER}`);
  // The ssh-keys step left the cluster key alone in authorized_keys; where this machine has the bootstrap
  // key, a login with it proves it refused. A new session of its own: a shared connection would have been
  // opened before the key was refused.
  if (bakerKey !== undefined) {
    const refused = await sshRun(nodeTarget(context.cluster, paths, record, 'bootstrap', bakerKey, false), 'true', { ...deadline, allowFailure: true });
    if (refused.exitCode === 0) throw new Error(`node ${nodeName}: the bootstrap key is still accepted after configuration`);
  }
  await writeNodeRecord(paths, { ...record, configHash: hash });
  return { ...result, hash };
}

/**
 * Takes a node down on the provider it was brought up with (its record says which), whatever the
 * configuration says now: a node that left the configuration, or a cluster whose provider changed,
 * still goes down where it runs.
 */
export async function nodeDown(context: NodeContext, nodeName: string): Promise<void> {
  const { cluster, paths } = context;
  const record = await readNodeRecord(paths, nodeName);
  if (!record) findNode(cluster, nodeName);
  const provider = (record?.provider ?? cluster.provider) as ProviderName;
  await nodeProvider(provider).down(providerContext(context, provider), nodeName);
  await forgetNode(cluster, paths, nodeName);
  await context.store.dropRefs({ cluster: refCluster(context), node: nodeName });
  await removeNodeRecord(paths, nodeName);
}

/** Nodes that are up (they have a record) but no longer in the configuration. */
export async function departedNodes(context: NodeContext): Promise<NodeRecord[]> {
  const names = new Set(context.cluster.nodes.map((node) => node.name));
  return (await listNodeRecords(context.paths)).filter((record) => !names.has(record.name));
}

/** Nodes that run on another provider than the configuration's. */
export async function nodesOnOtherProviders(context: NodeContext): Promise<NodeRecord[]> {
  return (await listNodeRecords(context.paths)).filter((record) => record.provider !== context.cluster.provider);
}

/**
 * Everything of the cluster gone, on every provider it ever ran on, whatever the state files say
 * (the safety net of cluster down). Every provider directory is swept even if one fails.
 */
export async function providerCleanup(context: NodeContext): Promise<string[]> {
  const { cluster, paths } = context;
  const stopped: string[] = [];
  const failures: string[] = [];
  for (const provider of PROVIDERS) {
    const where = providerContext(context, provider);
    if (provider !== cluster.provider && !existsSync(where.stateDir)) continue;
    try {
      stopped.push(...(await nodeProvider(provider).cleanup(where)));
    } catch (error) {
      failures.push(`${provider}: ${(error as Error).message}`);
    }
  }
  if (failures.length) throw new Error(`cluster ${cluster.name}: could not take everything down:\n  ${failures.join('\n  ')}`);
  await closeAllConnections(paths);
  await rm(paths.knownHosts, { force: true });
  await context.store.dropRefs({ cluster: refCluster(context) });
  for (const record of await listNodeRecords(paths)) await removeNodeRecord(paths, record.name);
  return stopped;
}

export interface NodeStatus {
  name: string;
  /** running, paused, stopped-with-state (cluster stop saved it: cluster start resumes it), stopped or absent. */
  state: NodeRunState;
  /** The cluster snapshot the node was last restored from. */
  snapshot?: string;
  reachable: boolean;
  configured: boolean;
  /**
   * Ready in the Kubernetes API (its Ready condition True), asked through the master's forwarded port; null
   * when the profile runs no Kubernetes as the lab does or the API could not be asked (detail says why).
   */
  ready: boolean | null;
  /** The kubelet version the node reports to the API (status.nodeInfo.kubeletVersion). */
  kubeletVersion?: string;
  box?: string;
  detail: string;
}

/** Every machine of the cluster on its configured provider, by node name (one status call; absent ones left out). */
export async function nodeMachines(context: NodeContext): Promise<Record<string, NodeRunState>> {
  return nodeProvider(context.cluster.provider).status(providerContext(context, context.cluster.provider));
}

export async function clusterStatus(context: NodeContext): Promise<NodeStatus[]> {
  const { cluster, paths } = context;
  const machines = await nodeMachines(context);
  const clusterPrivate = (await clusterSshKey(paths, cluster)).privateKey;
  // The API is asked beside the SSH probes (one attempt and a retry, 4 s each), where the profile runs Kubernetes as the lab does.
  const kubernetes = cluster.kubernetes ? kubernetesReadiness(context, { attempts: 2, timeoutMs: 4_000, retryDelayMs: 500 }) : undefined;
  // Every node at once, each over its shared SSH connection (one opened by configure is reused): the
  // status of three nodes costs one round trip, not three key exchanges in a row.
  const statuses = await Promise.all(cluster.nodes.map(async (node): Promise<NodeStatus> => {
    const record = await readNodeRecord(paths, node.name);
    const state = machines[node.name] ?? 'absent';
    // A paused node would not answer the probe below before its deadline.
    let reachable = false;
    let configured = false;
    let detail = record ? '' : 'not brought up';
    if (record && state === 'running') {
      const probe = await sshRun(nodeTarget(cluster, paths, record, 'cluster', clusterPrivate), `cat ${CONFIGURED_MARKER} 2>/dev/null || true`, { allowFailure: true, timeoutMs: 20_000 }).catch((error: Error) => error);
      if (probe instanceof Error || probe.exitCode !== 0) detail = 'the cluster key is not accepted yet (not configured)';
      else {
        reachable = true;
        configured = probe.stdout.trim() !== '' && probe.stdout.trim() === record.configHash;
        detail = configured ? '' : probe.stdout.trim() ? 'configuration is out of date' : 'not configured';
      }
    }
    if (state === 'stopped-with-state') detail = 'stopped with its state saved (cluster start or cluster up resumes it)';
    if (state === 'paused') detail = 'paused (cluster up resumes it)';
    if (record && state === 'stopped') detail = 'its machine is not running (cluster up boots it from its disk, files kept)';
    if (record && state === 'absent') detail = 'its disk is gone (cluster up makes it again from its box)';
    if (!record && state !== 'absent') detail = 'its machine is there but boxcar has no record of it (cluster up makes it again)';
    if (record?.restoreFailed) detail = `its restore of snapshot ${record.restoreFailed.snapshot} failed: left ${state} (cluster up makes it again from its box)`;
    return {
      name: node.name,
      state,
      reachable,
      configured,
      ready: null,
      ...(record ? { box: `${record.box.name} ${record.box.version}` } : {}),
      ...(record?.snapshot ? { snapshot: record.snapshot.name } : {}),
      detail,
    };
  }));
  return kubernetes ? withReadiness(statuses, await kubernetes) : statuses;
}
