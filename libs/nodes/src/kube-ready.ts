import { setTimeout as sleep } from 'node:timers/promises';
import { shellQuote } from '@boxcar/kit';
import { masterRoleCommand } from '@boxcar/node-config';
import { sshRun } from '@boxcar/providers';
import { nodeReadiness, parseNodeList, type NodeReadiness } from './kube-api.ts';
import { clusterSshKey, type NodeContext } from './runtime.ts';
import { nodeTarget } from './ssh-access.ts';
import { readNodeRecord } from './state.ts';

// `cluster up` waits, after terraform's apply, until every node of a cluster that runs Kubernetes as the
// lab does is Ready in the API; on the deadline it fails naming each node that is not, with the end of
// its kubelet's journal.

/** How many lines of each late node's kubelet journal the error carries. */
export const JOURNAL_LINES = 20;

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = { now: () => Date.now(), sleep: (ms) => sleep(ms) };

export interface ReadyWaitOptions {
  cluster: string;
  /** The nodes that must all be Ready. */
  nodes: readonly string[];
  /** Asks the API once: every node's readiness; throws when the API could not be asked. */
  probe: () => Promise<NodeReadiness[]>;
  /** The last JOURNAL_LINES lines of a node's kubelet journal. */
  journal: (node: string) => Promise<string>;
  deadlineMs: number;
  /** Between two probes; default 5 s. */
  intervalMs?: number;
  /** At most this long between two progress lines while nothing changes; default 30 s. */
  progressEveryMs?: number;
  clock?: Clock;
  onProgress?: (message: string) => void;
}

/** Not every node was Ready by the deadline: the error names each that was not, with its kubelet's last lines. */
export class KubernetesNotReadyError extends Error {
  constructor(
    message: string,
    /** The nodes that were not Ready, as last seen (or with the API's error when it could not be asked). */
    readonly notReady: NodeReadiness[],
    readonly journals: Record<string, string>,
  ) {
    super(message);
    this.name = 'KubernetesNotReadyError';
  }
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/** Probes until every node is Ready (returns their readiness) or the deadline passes (KubernetesNotReadyError). */
export async function waitForNodesReady(options: ReadyWaitOptions): Promise<NodeReadiness[]> {
  const clock = options.clock ?? realClock;
  const interval = options.intervalMs ?? 5_000;
  const progressEvery = options.progressEveryMs ?? 30_000;
  const started = clock.now();
  let last: NodeReadiness[] | undefined;
  let apiError: string | undefined;
  let said: { summary: string; at: number } | undefined;
  while (true) {
    try {
      last = await options.probe();
      apiError = undefined;
    } catch (error) {
      apiError = (error as Error).message;
    }
    const states = options.nodes.map(
      (name): NodeReadiness =>
        last?.find((node) => node.name === name) ?? { name, registered: false, ready: false, reason: last ? 'not registered with the API server' : 'unknown: the API never answered' },
    );
    // While the API cannot be asked, no node counts as Ready.
    const late = apiError === undefined ? states.filter((node) => !node.ready) : states.map((node) => (node.ready ? { ...node, ready: false, reason: "Ready at the API's last answer" } : node));
    if (late.length === 0) return states;
    const elapsed = clock.now() - started;
    if (elapsed >= options.deadlineMs) return failed(options, late, apiError, elapsed);
    const summary = apiError !== undefined ? `the API cannot be reached yet (${apiError})` : `not Ready yet: ${late.map((node) => `${node.name} (${node.reason ?? 'not Ready'})`).join(', ')}`;
    if (!said || said.summary !== summary || clock.now() - said.at >= progressEvery) {
      options.onProgress?.(`waiting for Kubernetes, ${seconds(elapsed)} of ${seconds(options.deadlineMs)}: ${summary}`);
      said = { summary, at: clock.now() };
    }
    await clock.sleep(Math.min(interval, options.deadlineMs - elapsed));
  }
}

async function failed(options: ReadyWaitOptions, late: NodeReadiness[], apiError: string | undefined, elapsed: number): Promise<never> {
  const journals: Record<string, string> = {};
  await Promise.all(
    late.map(async (node) => {
      journals[node.name] = await options.journal(node.name).catch((error: Error) => `(its journal could not be read: ${error.message})`);
    }),
  );
  const lines = [
    `cluster ${options.cluster}: ${late.length} of ${options.nodes.length} node(s) not Ready ${seconds(elapsed)} after terraform's apply (timeouts.kubernetesReadySeconds is ${seconds(options.deadlineMs)}):`,
    ...late.map((node) => `  ${node.name}: ${node.reason ?? 'not Ready'}`),
    ...(apiError !== undefined ? [`  (at the last try ${apiError}; the states above are the last the API gave)`] : []),
  ];
  for (const node of late) {
    const journal = journals[node.name]!.replace(/\s+$/, '');
    lines.push(`${node.name}: the last ${JOURNAL_LINES} lines of its kubelet journal (journalctl -u kubelet):`, ...(journal ? journal.split('\n').map((line) => `    ${line}`) : ['    (empty)']));
  }
  throw new KubernetesNotReadyError(lines.join('\n'), late, journals);
}

/** The last lines of a node's kubelet journal, over its SSH connection. */
export async function kubeletJournal(context: NodeContext, nodeName: string, lines = JOURNAL_LINES): Promise<string> {
  const record = await readNodeRecord(context.paths, nodeName);
  if (!record) return '(the node is not up)';
  const key = (await clusterSshKey(context.paths, context.cluster)).privateKey;
  const result = await sshRun(nodeTarget(context.cluster, context.paths, record, 'cluster', key), `sudo -n journalctl -u kubelet -n ${lines} --no-pager`, {
    allowFailure: true,
    timeoutMs: 30_000,
    ...(context.signal ? { signal: context.signal } : {}),
  });
  return result.exitCode === 0 ? result.stdout : `(journalctl exited ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()})`;
}

/**
 * Removes a node that left the configuration from the Kubernetes API (its VM is gone: left there, it would
 * stay NotReady forever, and its pods with it), with kubectl on the master. Says why when it cannot.
 */
export async function forgetKubernetesNode(context: NodeContext, nodeName: string): Promise<string | undefined> {
  const { cluster } = context;
  const record = await readNodeRecord(context.paths, cluster.master.name);
  if (!record) return `${cluster.master.name} is not up: ${nodeName} stays in the Kubernetes API (kubectl delete node ${nodeName})`;
  const key = (await clusterSshKey(context.paths, cluster)).privateKey;
  const result = await sshRun(
    nodeTarget(cluster, context.paths, record, 'cluster', key),
    // -H: root's kubectl reads /root/.kube/config, the admin kubeconfig the master's configuration links there.
    `sudo -n -H kubectl delete node ${shellQuote(nodeName)} --ignore-not-found --wait=false`,
    { allowFailure: true, timeoutMs: 60_000, ...(context.signal ? { signal: context.signal } : {}) },
  );
  return result.exitCode === 0 ? undefined : `kubectl delete node ${nodeName} on ${cluster.master.name} exited ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`;
}

/** Labels the master node as such (kubectl's ROLES column), with kubectl on the master; says why when it cannot. */
export async function labelMasterNode(context: NodeContext): Promise<string | undefined> {
  const { cluster } = context;
  const record = await readNodeRecord(context.paths, cluster.master.name);
  if (!record) return `${cluster.master.name} is not up`;
  const key = (await clusterSshKey(context.paths, cluster)).privateKey;
  const result = await sshRun(nodeTarget(cluster, context.paths, record, 'cluster', key), `sudo -n ${masterRoleCommand(cluster.master)}`, {
    allowFailure: true,
    timeoutMs: 60_000,
    ...(context.signal ? { signal: context.signal } : {}),
  });
  return result.exitCode === 0 ? undefined : `labelling ${cluster.master.name} exited ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`;
}

/** kubectl as root on the master (the admin kubeconfig); its stdout, or an error with what it said. */
async function kubectlOnMaster(context: NodeContext, args: string): Promise<string> {
  const { cluster } = context;
  const record = await readNodeRecord(context.paths, cluster.master.name);
  if (!record) throw new Error(`${cluster.master.name} is not up`);
  const key = (await clusterSshKey(context.paths, cluster)).privateKey;
  const result = await sshRun(nodeTarget(cluster, context.paths, record, 'cluster', key), `sudo -n -H kubectl --request-timeout=20s ${args}`, {
    allowFailure: true,
    timeoutMs: 60_000,
    ...(context.signal ? { signal: context.signal } : {}),
  });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args} on ${cluster.master.name}: ${(result.stderr.trim() || result.stdout.trim()).split('\n').at(-1)}`);
  return result.stdout;
}

/**
 * `cluster up`'s wait: every node of the configuration Ready in the API within timeouts.kubernetesReadySeconds,
 * asked with kubectl on the master over its SSH connection, so that it depends on no port forwarded to the
 * host (the kubeconfig for the host is the user's way in, checked by status). Only for clusters with
 * `cluster.kubernetes`.
 */
export async function waitForKubernetes(
  context: NodeContext,
  options: { onProgress?: (message: string) => void; clock?: Clock; intervalMs?: number } = {},
): Promise<NodeReadiness[]> {
  const { cluster } = context;
  if (!cluster.kubernetes) throw new Error(`cluster ${cluster.name}: profile ${cluster.profile.name} runs no Kubernetes to wait for`);
  const names = cluster.nodes.map((node) => node.name);
  const clock = options.clock ?? realClock;
  const started = clock.now();
  const deadlineMs = cluster.timeouts.kubernetesReadySeconds * 1000;
  const ready = await waitForNodesReady({
    cluster: cluster.name,
    nodes: names,
    // --raw: the API's own NodeList (kubectl get -o json would wrap the nodes in a List).
    probe: async () => nodeReadiness(names, parseNodeList(JSON.parse(await kubectlOnMaster(context, 'get --raw /api/v1/nodes')))),
    journal: (node) => kubeletJournal(context, node),
    deadlineMs,
    ...options,
  });
  // Ready nodes are not yet a usable cluster: pods are refused until the controller manager, which under
  // emulation starts minutes after the apiserver, has made the default service account.
  const hasDefaultServiceAccount = () => kubectlOnMaster(context, 'get serviceaccount default --namespace default -o name').then(() => true, () => false);
  while (!(await hasDefaultServiceAccount())) {
    if (clock.now() - started > deadlineMs) {
      throw new Error(
        `cluster ${cluster.name}: every node is Ready but namespace default still has no service account ${Math.round((clock.now() - started) / 1000)} s after terraform's apply, so every pod would be refused; is kube-controller-manager running on ${cluster.master.name}? (journalctl -u kube-controller-manager)`,
      );
    }
    options.onProgress?.(`waiting for Kubernetes, ${Math.round((clock.now() - started) / 1000)} s of ${deadlineMs / 1000} s: every node Ready; the controller manager has not made the default service account yet`);
    await clock.sleep(options.intervalMs ?? 5_000);
  }
  return ready;
}
