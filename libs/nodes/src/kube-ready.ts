import { setTimeout as sleep } from 'node:timers/promises';
import { ActionableError, shellQuote } from '@boxcar/kit';
import { masterRoleArgs } from '@boxcar/node-config';
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
  /**
   * Asked once every node is Ready: what the cluster still lacks before it takes work (undefined: nothing);
   * throws, as `probe` does, when it could not be asked.
   */
  usable?: () => Promise<string | undefined>;
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
    let lacking: string | undefined;
    if (late.length === 0) {
      try {
        lacking = await options.usable?.();
      } catch (error) {
        apiError = (error as Error).message;
      }
      if (lacking === undefined && apiError === undefined) return states;
    }
    const elapsed = clock.now() - started;
    if (elapsed >= options.deadlineMs) return failed(options, late, apiError, elapsed, lacking);
    const summary =
      apiError !== undefined
        ? `the API cannot be reached yet (${apiError})`
        : lacking !== undefined
          ? `every node Ready; ${lacking}`
          : `not Ready yet: ${late.map((node) => `${node.name} (${node.reason ?? 'not Ready'})`).join(', ')}`;
    if (!said || said.summary !== summary || clock.now() - said.at >= progressEvery) {
      options.onProgress?.(`waiting for Kubernetes, ${seconds(elapsed)} of ${seconds(options.deadlineMs)}: ${summary}`);
      said = { summary, at: clock.now() };
    }
    await clock.sleep(Math.min(interval, options.deadlineMs - elapsed));
  }
}

async function failed(options: ReadyWaitOptions, late: NodeReadiness[], apiError: string | undefined, elapsed: number, lacking: string | undefined): Promise<never> {
  if (late.length === 0) {
    throw new KubernetesNotReadyError(
      `cluster ${options.cluster}: every node is Ready ${seconds(elapsed)} after terraform's apply, but ${lacking ?? `the API could not be asked (${apiError})`} (timeouts.kubernetesReadySeconds is ${seconds(options.deadlineMs)})`,
      [],
      {},
    );
  }
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

/** A command on a node over its SSH connection, with the cluster key; never rejects for the command's own failure. */
async function onNode(context: NodeContext, nodeName: string, command: string, timeoutMs: number): Promise<{ exitCode: number; stdout: string; said: string } | undefined> {
  const record = await readNodeRecord(context.paths, nodeName);
  if (!record) return undefined;
  const key = (await clusterSshKey(context.paths, context.cluster)).privateKey;
  const result = await sshRun(nodeTarget(context.cluster, context.paths, record, 'cluster', key), command, {
    allowFailure: true,
    timeoutMs,
    ...(context.signal ? { signal: context.signal } : {}),
  });
  return { exitCode: result.exitCode, stdout: result.stdout, said: result.stderr.trim() || result.stdout.trim() };
}

/** The last lines of a node's kubelet journal, over its SSH connection. */
export async function kubeletJournal(context: NodeContext, nodeName: string, lines = JOURNAL_LINES): Promise<string> {
  const result = await onNode(context, nodeName, `sudo -n journalctl -u kubelet -n ${lines} --no-pager`, 30_000);
  if (!result) return '(the node is not up)';
  return result.exitCode === 0 ? result.stdout : `(journalctl exited ${result.exitCode}: ${result.said})`;
}

/**
 * kubectl as root on the master (-H: root's kubectl reads /root/.kube/config, the admin kubeconfig the master's
 * configuration links there); its stdout, or an error with the last line kubectl said.
 */
async function kubectlOnMaster(context: NodeContext, args: string): Promise<string> {
  const master = context.cluster.master.name;
  const result = await onNode(context, master, `sudo -n -H kubectl --request-timeout=20s ${args}`, 60_000);
  if (!result) throw new Error(`${master} is not up`);
  if (result.exitCode !== 0) throw new Error(`kubectl ${args} on ${master} exited ${result.exitCode}: ${result.said.split('\n').at(-1)}`);
  return result.stdout;
}

/**
 * Removes a node that left the configuration from the Kubernetes API (its VM is gone: left there, it would
 * stay NotReady forever, and its pods with it), with kubectl on the master. Says why when it cannot.
 */
export async function forgetKubernetesNode(context: NodeContext, nodeName: string): Promise<string | undefined> {
  return kubectlOnMaster(context, `delete node ${shellQuote(nodeName)} --ignore-not-found --wait=false`).then(
    () => undefined,
    (error: Error) => `${nodeName} stays in the Kubernetes API (kubectl delete node ${nodeName}): ${error.message}`,
  );
}

/** Labels the master node as such (kubectl's ROLES column), with kubectl on the master; says why when it cannot. */
export async function labelMasterNode(context: NodeContext): Promise<string | undefined> {
  return kubectlOnMaster(context, masterRoleArgs(context.cluster.master)).then(
    () => undefined,
    (error: Error) => error.message,
  );
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
  if (!cluster.kubernetes) throw new ActionableError(`cluster ${cluster.name}: profile ${cluster.profile.name} runs no Kubernetes to wait for`);
  const names = cluster.nodes.map((node) => node.name);
  return waitForNodesReady({
    cluster: cluster.name,
    nodes: names,
    // --raw: the API's own NodeList (kubectl get -o json would wrap the nodes in a List).
    probe: async () => nodeReadiness(names, parseNodeList(JSON.parse(await kubectlOnMaster(context, 'get --raw /api/v1/nodes')))),
    // Ready nodes are not yet a usable cluster: pods are refused until the controller manager, which under
    // emulation starts minutes after the apiserver, has made the default service account.
    usable: async () =>
      (await kubectlOnMaster(context, 'get serviceaccounts --namespace default -o name')).split('\n').includes('serviceaccount/default')
        ? undefined
        : `the controller manager has not made the default service account yet (every pod would be refused; journalctl -u kube-controller-manager on ${cluster.master.name})`,
    journal: (node) => kubeletJournal(context, node),
    deadlineMs: cluster.timeouts.kubernetesReadySeconds * 1000,
    ...options,
  });
}
