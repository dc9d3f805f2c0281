import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { execa } from 'execa';
import { configReplacements, driftReplacements, replaceArgs, VM_PREFIX, summarizePlan, synthStack, terraformBinary, terraformRunner, TerraformError, type NodeInputs, type NodePlanSummary, type NodeStep, type ObservedNode, type RecordedConfiguration, type TerraformRunner } from '@boxcar/cluster';
import { defaultStoreUrl, openStore } from '@boxcar/box-store';
import { checkNodeName, DEFAULT_CNI_DIR, REPO_ROOT, type Cluster } from '@boxcar/model';
import {
  checkStateOwnership,
  clusterStart,
  clusterStatus,
  clusterStop,
  departedNodes,
  dropSnapshotRecords,
  nodeBox,
  nodeConfigure,
  nodeContext,
  nodeDown,
  nodeMachines,
  nodeSshTarget,
  nodeStart,
  nodesOnOtherProviders,
  nodeUp,
  planFor,
  planHash,
  providerCleanup,
  readNodeRecord,
  snapshotDelete,
  snapshotList,
  snapshotRestore,
  snapshotSave,
  DEFAULT_STATE_ROOT,
  forgetKubernetesNode,
  labelMasterNode,
  waitForKubernetes,
  writeKubeconfig,
  type NodeContext,
  type NodeOutcome,
  type NodeStatus,
  type SnapshotRecord,
} from '@boxcar/nodes';
import { shellQuote, shellQuoteForPeople } from '@boxcar/kit';
import { sshArgs } from '@boxcar/providers';
import { EXIT, MissingPrerequisiteError, str, table, UsageError, type Command, type Group, type Options, type Values } from '../cli-kit.ts';
import { CLUSTER_OPTIONS, clusterFromOptions, ExitError } from '../cluster-options.ts';

const OPTIONS: Options = {
  ...CLUSTER_OPTIONS,
  store: { type: 'string', description: 'box store URL (default: the config\'s boxStore, $BOXCAR_STORE, ~/.cache/boxcar/store)' } as Options[string],
  'state-dir': { type: 'string', description: 'where cluster state lives (default: $BOXCAR_STATE_DIR, else <repo>/.cluster)' } as Options[string],
};
const JSON_OPTION: Options = { json: { type: 'boolean', description: 'machine-readable output on stdout (progress stays on stderr)' } as Options[string] };

function storeUrlOf(values: Values, cluster: Cluster): string {
  return str(values, 'store') ?? cluster.boxStore ?? defaultStoreUrl();
}

/** The state directory: --state-dir, else $BOXCAR_STATE_DIR, else <repo>/.cluster. Only the CLI reads the environment. */
function stateRootOf(values: Values): string {
  return resolve(str(values, 'state-dir') ?? (process.env.BOXCAR_STATE_DIR || DEFAULT_STATE_ROOT));
}

async function contextOf(values: Values, signal?: AbortSignal): Promise<NodeContext> {
  const cluster = clusterFromOptions(values);
  const store = await openStore(storeUrlOf(values, cluster));
  const where = { stateRoot: stateRootOf(values), cniDir: process.env.BOXCAR_CNI_DIR || DEFAULT_CNI_DIR };
  const context = nodeContext(cluster, store, where, (node, message) => process.stderr.write(`[${node}] ${message}\n`));
  await checkStateOwnership(context.paths);
  return { ...context, ...(signal ? { signal } : {}) };
}

const CLI_ENTRY = resolve(REPO_ROOT, 'apps/cli/bin/boxcar.mjs');

/** How the stack's provisioners run a node step: the same config, profile, provider, store and state dir, from any directory. */
function stepCommand(values: Values, context: NodeContext): (step: NodeStep) => string {
  const forwarded = [
    ...(str(values, 'config') ? ['--config', resolve(str(values, 'config')!)] : []),
    '--profile', context.cluster.profile.name,
    '--provider', context.cluster.provider,
    '--store', context.store.url,
    // Terraform runs these from any shell: nothing may depend on that shell's environment.
    '--state-dir', dirname(context.paths.dir),
  ];
  return (step) => {
    // `node up` boots exactly the box version the stack recorded in that node's trigger.
    const extra = step.verb === 'up' ? ['--box-version', step.boxVersion] : [];
    return [process.execPath, CLI_ENTRY, 'node', step.verb, step.node, ...extra, ...forwarded].map(shellQuote).join(' ');
  };
}

/** The same cluster options, for the commands a user is told to run next. */
function userOptions(values: Values): string {
  return ['config', 'profile', 'provider', 'store', 'state-dir']
    .filter((name) => str(values, name))
    .map((name) => ` --${name} ${shellQuoteForPeople(str(values, name)!)}`)
    .join('');
}

export async function synthesize(values: Values, context?: NodeContext): Promise<{ context: NodeContext; stackDir: string; nodes: NodeInputs[] }> {
  context ??= await contextOf(values);
  const { cluster, store, paths } = context;
  const nodes: NodeInputs[] = [];
  for (const node of cluster.nodes) {
    const box = await nodeBox(store, cluster, node);
    nodes.push({ name: node.name, boxVersion: box.version, boxContentKey: box.contentKey, configHash: planHash(await planFor(context, node.name)) });
  }
  const stackDir = synthStack(paths.stackOut, {
    cluster,
    nodes,
    command: stepCommand(values, context),
    stateDir: paths.dir,
    sshCommand: (node) => `${process.execPath} ${CLI_ENTRY} cluster ssh ${node}${userOptions(values)}`,
    ...(kubeconfigOutput(context) ? { kubeconfigPath: kubeconfigOutput(context)! } : {}),
  });
  process.stderr.write(`synthesized ${stackDir}/cdk.tf.json (${cluster.terraform.resource} resources)\n`);
  return { context, stackDir, nodes };
}

/**
 * The stack's `kubeconfig` output. The lab's Kubernetes (cluster.kubernetes): the file cluster up writes,
 * pointing at the port the master forwards on 127.0.0.1. The 2016 profile keeps the path its stack always
 * named in the PKI directory (nothing writes that file; its API is on the cluster network only).
 */
function kubeconfigOutput(context: NodeContext): string | undefined {
  const { cluster, paths } = context;
  if (cluster.kubernetes) return resolve(paths.kubeconfig);
  return cluster.profile.features.kubernetes ? `${paths.pki}/admin-kubeconfig.yaml` : undefined;
}

const NO_TERRAFORM = `neither terraform nor tofu is installed, and cluster:up applies the synthesized stack with one of them.
Install Terraform 1.4+ (https://developer.hashicorp.com/terraform/install) or OpenTofu 1.6+ (https://opentofu.org/docs/intro/install/);
TERRAFORM_BINARY_NAME=tofu picks OpenTofu when both are there. The stack is ready in the directory above.`;

/** terraform (or tofu) for the cluster's stack, initialized; exit 4 when neither is installed. */
async function initializedTerraform(context: NodeContext, stackDir: string): Promise<TerraformRunner> {
  const binary = await terraformBinary();
  if (!binary) throw new MissingPrerequisiteError(NO_TERRAFORM);
  const terraform = terraformRunner({ binary, stackDir, logDir: context.paths.logs, output: process.stderr });
  process.stderr.write(`${binary} init (full output: ${context.paths.logs}/terraform-init.log)\n`);
  try {
    await terraform.init();
  } catch (error) {
    if (error instanceof TerraformError && context.cluster.terraform.resource === 'null_resource') {
      error.message += '\nThe stack uses null_resource (terraform.resource in the cluster config), which needs the hashicorp/null provider: ' +
        'give terraform a way to get it (a provider mirror or plugin cache), or remove that setting to use the built-in terraform_data.';
    }
    throw error;
  }
  return terraform;
}

const VERB = { create: 'create', replace: 'replace', update: 'update', delete: 'destroy', keep: 'keep', absent: '-' } as const;

function planTable(rows: NodePlanSummary[]): string {
  const boot = { ...VERB, create: 'start', replace: 'start' } as const;
  return table(rows.map((row) => [row.node, VERB[row.vm], boot[row.boot], VERB[row.configuration], row.reasons.join('; ')]), ['node', 'vm', 'machine', 'configuration', 'why']);
}

/** Per node, what a whole-cluster verb did. */
function outcomes(nodes: NodeOutcome[]): string {
  return table(nodes.map((node) => [node.node, node.was, node.did]), ['node', 'was', 'done']);
}

function statusTable(statuses: NodeStatus[]): string {
  const yes = (flag: boolean | null) => (flag === null ? '-' : flag ? 'yes' : 'no');
  const rows = table(
    statuses.map((s) => [s.name, s.state, yes(s.reachable), yes(s.configured), yes(s.ready), s.box ?? '', s.detail]),
    ['node', 'state', 'reachable', 'configured', 'ready', 'box', 'detail'],
  );
  const snapshots = [...new Set(statuses.flatMap((s) => (s.snapshot ? [s.snapshot] : [])))];
  return snapshots.length ? `${rows}restored from snapshot ${snapshots.join(', ')}\n` : rows;
}

/**
 * Synthesize, init, plan to a file; the plan as terraform wrote it and its summary per node. What
 * terraform's state cannot know is asked first and planned as replacements: nodes whose machine stopped,
 * paused or went away (the provider's own state), nodes taken down by hand (no record), and nodes that
 * run an older configuration than terraform's state says (restored from a snapshot).
 */
async function planned(values: Values, context: NodeContext) {
  const { stackDir, nodes } = await synthesize(values, context);
  const terraform = await initializedTerraform(context, stackDir);
  const type = context.cluster.terraform.resource;
  const recorded: Record<string, RecordedConfiguration | undefined> = {};
  const observed: ObservedNode[] = [];
  const machines = await nodeMachines(context);
  for (const node of nodes) {
    const record = await readNodeRecord(context.paths, node.name);
    if (record) recorded[node.name] = { ...(record.configHash ? { configHash: record.configHash } : {}), ...(record.snapshot ? { snapshot: record.snapshot.name } : {}) };
    observed.push({ name: node.name, recorded: record !== undefined, state: machines[node.name] ?? 'absent', ...(record?.restoreFailed ? { restoreFailed: record.restoreFailed.snapshot } : {}) });
  }
  const made = new Set((await terraform.stateList()).filter((address) => address.startsWith(`${type}.${VM_PREFIX}`)).map((address) => address.slice(`${type}.${VM_PREFIX}`.length)));
  const drift = driftReplacements(type, observed, made);
  // A node whose VM or boot is replaced is configured again anyway (its configuration follows its boot).
  const moving = new Set(drift.map((replacement) => replacement.node));
  const replacements = [...drift, ...configReplacements(type, nodes, recorded).filter((replacement) => !moving.has(replacement.node))];
  process.stderr.write(`${terraform.binary} plan (full output: ${context.paths.logs}/terraform-plan.log)\n`);
  const plan = await terraform.plan(replaceArgs(replacements));
  return { terraform, stackDir, plan, summary: summarizePlan(plan, Object.fromEntries(replacements.map((r) => [r.address, r.reason]))) };
}

/** The commands `cluster up` ends with; first, where the profile runs Kubernetes as the lab does, the host's kubeconfig. */
export function nextCommands(cluster: Cluster, options: string, kubernetes?: { kubeconfig: string; server: string }): string {
  return table([
    ...(kubernetes ? [[`  export KUBECONFIG=${shellQuoteForPeople(kubernetes.kubeconfig)}`, `kubectl on this host reaches the API (${kubernetes.server})`]] : []),
    [`  npx nx run cluster:ssh ${cluster.nodes[0]!.name}${options}`, 'a shell on a node'],
    [`  npx nx run cluster:status${options}`, `per node: running, reachable, configured${cluster.kubernetes ? ', Ready' : ''}`],
    [`  npx nx run cluster:plan${options}`, 'what the next up would change, and why'],
    [`  npx nx run cluster:down${options}`, 'take it all down'],
  ]);
}

/**
 * After the apply, where the profile runs Kubernetes as the lab does: the host's kubeconfig written (the master
 * is up), then every node Ready within timeouts.kubernetesReadySeconds, else the error names the late nodes
 * and the end of their kubelet journals.
 */
async function kubernetesAfterApply(context: NodeContext) {
  const written = await writeKubeconfig(context);
  if ('problem' in written) throw new ExitError(EXIT.failure, `cluster ${context.cluster.name}: no kubeconfig for the host: ${written.problem}`);
  const kubeconfig = resolve(written.path);
  const { server } = written;
  process.stderr.write(`kubeconfig for the host: ${kubeconfig} (${server})\n`);
  const started = Date.now();
  const nodes = await waitForKubernetes(context, { onProgress: (message) => process.stderr.write(`${message}\n`) });
  const unlabelled = await labelMasterNode(context);
  if (unlabelled) process.stderr.write(`warning: the master keeps no role label: ${unlabelled}\n`);
  process.stderr.write(`every node Ready after ${((Date.now() - started) / 1000).toFixed(0)} s: ${nodes.map((node) => `${node.name} ${node.kubeletVersion ?? ''}`.trim()).join(', ')}\n`);
  return { kubeconfig, server, nodes };
}

/** Nodes still running on a provider the configuration no longer names: refused, with what to do. */
async function refuseProviderChange(context: NodeContext, values: Values): Promise<void> {
  const others = await nodesOnOtherProviders(context);
  if (others.length === 0) return;
  const where = [...new Set(others.map((record) => record.provider))].join(', ');
  throw new ExitError(
    EXIT.failure,
    `cluster ${context.cluster.name}: ${others.map((record) => record.name).join(', ')} run on ${where}, but the configuration now says ${context.cluster.provider}.\n` +
      `Take the cluster down first (it takes each node down where it runs): npx nx run cluster:down${userOptions(values)}\nthen bring it up again: npx nx run cluster:up${userOptions(values)}`,
  );
}

const commands: Command[] = [
  {
    name: 'synth',
    summary: 'Synthesize the CDKTF stack (one terraform_data per node and per configuration) into .cluster/<name>/cdktf.out/.',
    options: OPTIONS,
    async run(values) {
      const { stackDir } = await synthesize(values);
      process.stdout.write(`${stackDir}\n`);
      return EXIT.ok;
    },
  },
  {
    name: 'plan',
    summary: "What the next `up` would do, per node (create, replace, keep) and why, read from terraform's own plan.",
    options: { ...OPTIONS, ...JSON_OPTION },
    async run(values) {
      const context = await contextOf(values);
      const departed = (await departedNodes(context)).map((record) => record.name);
      const { summary, plan } = await planned(values, context);
      if (values.json) process.stdout.write(`${JSON.stringify({ nodes: summary, departed, resourceChanges: plan.resource_changes ?? [] }, null, 2)}\n`);
      else {
        process.stdout.write(planTable(summary));
        if (departed.length) process.stdout.write(`left the configuration: ${departed.join(', ')} (cluster:up takes them down first)\n`);
        if (summary.every((row) => row.vm === 'keep' && row.boot === 'keep' && row.configuration === 'keep') && !departed.length) process.stdout.write('no changes: the cluster is as configured\n');
      }
      return EXIT.ok;
    },
  },
  {
    name: 'up',
    summary: 'Plan, show what changes per node, apply: boot the nodes whose box changed, configure what changed.',
    options: { ...OPTIONS, ...JSON_OPTION },
    async run(values) {
      const context = await contextOf(values);
      await refuseProviderChange(context, values);
      // Terraform would only forget a node that left the configuration (its destroy-time provisioner
      // left with it): take such nodes down first, on the provider they run on.
      const departed = await departedNodes(context);
      for (const record of departed) {
        context.onProgress?.(record.name, 'no longer in the configuration: taking it down');
        await nodeDown(context, record.name);
        if (context.cluster.kubernetes) {
          const problem = await forgetKubernetesNode(context, record.name);
          process.stderr.write(problem ? `warning: ${problem}\n` : `${record.name}: removed from the Kubernetes API\n`);
        }
      }
      const { terraform, summary } = await planned(values, context);
      process.stderr.write(`\nplan for cluster ${context.cluster.name}:\n${planTable(summary)}\n`);
      const started = Date.now();
      await terraform.apply();
      const kubernetes = context.cluster.kubernetes ? await kubernetesAfterApply(context) : undefined;
      const statuses = await clusterStatus(context);
      const report = {
        plan: summary,
        departed: departed.map((record) => record.name),
        status: statuses,
        ...(kubernetes ? { kubeconfig: kubernetes.kubeconfig, kubernetes: kubernetes.nodes } : {}),
        seconds: (Date.now() - started) / 1000,
      };
      if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        const next = nextCommands(context.cluster, userOptions(values), kubernetes);
        process.stdout.write(`\n${statusTable(statuses)}\ncluster ${context.cluster.name} applied in ${report.seconds.toFixed(0)} s. Next:\n${next}`);
      }
      return statuses.every((s) => s.configured) ? EXIT.ok : EXIT.failure;
    },
  },
  {
    name: 'down',
    summary: 'terraform/tofu destroy, then make sure no VM, process, socket or disk overlay is left on any provider.',
    options: OPTIONS,
    async run(values) {
      const context = await contextOf(values);
      const stackDir = `${context.paths.stackOut}/stacks/${context.cluster.name}`;
      // Only a stack terraform applied has terraform state to destroy.
      if (existsSync(`${context.paths.dir}/terraform.tfstate`) && existsSync(`${stackDir}/cdk.tf.json`)) {
        await (await initializedTerraform(context, stackDir)).destroy();
      }
      // Whatever terraform did (or if it is not installed), nothing of the cluster may keep running.
      const stopped = await providerCleanup(context);
      // The snapshots lived in the nodes' disks, which are gone: their records go too.
      const snapshots = await dropSnapshotRecords(context.paths);
      process.stdout.write(`cluster ${context.cluster.name} is down${stopped.length ? ` (stopped ${stopped.join(', ')})` : ''}\n`);
      if (snapshots.length) process.stdout.write(`removed its snapshots with the nodes' disks: ${snapshots.join(', ')}\n`);
      return EXIT.ok;
    },
  },
  {
    name: 'status',
    summary: 'Per node: running, reachable over SSH, configured (and up to date), Ready in Kubernetes (lab), box version.',
    options: { ...OPTIONS, ...JSON_OPTION },
    async run(values) {
      const context = await contextOf(values);
      const statuses = await clusterStatus(context);
      process.stdout.write(values.json ? `${JSON.stringify(statuses, null, 2)}\n` : statusTable(statuses));
      return statuses.every((s) => s.configured) ? EXIT.ok : EXIT.failure;
    },
  },
  {
    name: 'snapshot',
    summary: "Whole-cluster snapshots of every node's disk and memory, taken and restored with the nodes paused together.",
    args: '<save|restore|delete> <name> | list',
    options: { ...OPTIONS, ...JSON_OPTION },
    async run(values, positionals) {
      const [action, name, ...rest] = positionals;
      if (rest.length) throw new UsageError(`cluster snapshot ${action}: one snapshot name, got ${positionals.slice(1).join(' ')}`);
      const context = await contextOf(values);
      const out = (data: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(data, null, 2)}\n` : text);
      switch (action) {
        case 'save': {
          const result = await snapshotSave(context, snapshotArg(action, name));
          out(result, `snapshot ${name} of cluster ${context.cluster.name} saved in ${result.seconds.toFixed(1)} s (${result.snapshot.nodes.length} nodes, paused together)\n`);
          return EXIT.ok;
        }
        case 'restore': {
          const result = await snapshotRestore(context, snapshotArg(action, name));
          const older = await olderConfigurations(context, result.snapshot);
          const hint = older.length
            ? `the configuration changed since the snapshot on ${older.join(', ')}: cluster:plan shows it, cluster:up applies it${userOptions(values)}\n`
            : '';
          out({ ...result, olderConfigurations: older }, `cluster ${context.cluster.name} restored to snapshot ${name} (taken ${result.snapshot.createdAt}) in ${result.seconds.toFixed(1)} s; clocks set\n${hint}`);
          return EXIT.ok;
        }
        case 'delete':
          await snapshotDelete(context, snapshotArg(action, name));
          out({ deleted: name }, `snapshot ${name} of cluster ${context.cluster.name} deleted\n`);
          return EXIT.ok;
        case 'list': {
          if (name) throw new UsageError('cluster snapshot list takes no name');
          const snapshots = await snapshotList(context);
          const mib = (bytes: number | undefined) => (bytes === undefined ? 'unknown' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`);
          const boxes = (snapshot: (typeof snapshots)[number]) => [...new Set(snapshot.nodes.map((node) => `${node.box.name} ${node.box.version}`))].join(', ');
          const text = snapshots.length
            ? `${table(snapshots.map((snapshot) => [snapshot.name, snapshot.createdAt, snapshot.provider, mib(snapshot.sizeBytes), boxes(snapshot)]), ['snapshot', 'taken', 'provider', 'size', 'boxes'])}` +
              `size: the saved memory of every node (unknown on VirtualBox); the disk changes a snapshot keeps grow the nodes' overlays. cluster:down removes them all.\n`
            : `cluster ${context.cluster.name} has no snapshots (cluster snapshot save <name> takes one)\n`;
          out(snapshots, text);
          return EXIT.ok;
        }
        default:
          throw new UsageError(`cluster snapshot: say save <name>, restore <name>, delete <name> or list${action ? `, not ${JSON.stringify(action)}` : ''}`);
      }
    },
  },
  {
    name: 'stop',
    summary: "Save every node's running state and stop it (disk and memory stay in the node's disk); cluster start resumes it.",
    options: OPTIONS,
    async run(values) {
      const context = await contextOf(values);
      const result = await clusterStop(context);
      process.stdout.write(`${outcomes(result.nodes)}cluster ${context.cluster.name} stopped in ${result.seconds.toFixed(1)} s; resume it with: npx nx run cluster:start${userOptions(values)}\n`);
      return result.nodes.every((node) => node.ok) ? EXIT.ok : EXIT.failure;
    },
  },
  {
    name: 'start',
    summary: 'Resume every node stopped by cluster stop from its saved state (no boot), together, and set their clocks; says per node what it did.',
    options: OPTIONS,
    async run(values) {
      const context = await contextOf(values);
      const result = await clusterStart(context);
      const ok = result.nodes.every((node) => node.ok);
      process.stdout.write(`${outcomes(result.nodes)}cluster ${context.cluster.name} ${ok ? 'resumed' : 'partly resumed'} in ${result.seconds.toFixed(1)} s${ok ? '' : `; bring the rest back with: npx nx run cluster:up${userOptions(values)}`}\n`);
      return ok ? EXIT.ok : EXIT.failure;
    },
  },
  {
    name: 'ssh',
    summary: 'A shell (or a command) on a node, with the cluster key.',
    args: '<node> [-- command...]',
    options: OPTIONS,
    async run(values, positionals) {
      const context = await contextOf(values);
      const node = nodeArg(positionals);
      const record = await readNodeRecord(context.paths, node);
      if (!record) throw new UsageError(`node ${node} is not up (cluster ${context.cluster.name})`);
      const args = [...sshArgs(await nodeSshTarget(context, record)), ...positionals.slice(1)];
      const result = await execa('ssh', args, { stdio: 'inherit', reject: false });
      return result.exitCode ?? EXIT.failure;
    },
  },
  {
    name: 'extras',
    summary: "Deploy kube-dns and the UI on the master (the seed's deploy-extras.sh).",
    options: OPTIONS,
    async run(values) {
      const context = await contextOf(values);
      if (!context.cluster.profile.features.kubernetes) {
        process.stderr.write(`profile ${context.cluster.profile.name} runs no Kubernetes: there are no extras to deploy\n`);
        return EXIT.failure;
      }
      const master = context.cluster.master.name;
      const record = await readNodeRecord(context.paths, master);
      if (!record) throw new UsageError(`the master ${master} is not up`);
      const result = await execa('ssh', [...sshArgs(await nodeSshTarget(context, record)), 'sudo kubectl --server=http://127.0.0.1:8080 apply -f /etc/kubernetes/extras/'], { stdio: 'inherit', reject: false });
      return result.exitCode ?? EXIT.failure;
    },
  },
];

export const clusterGroup: Group = {
  name: 'cluster',
  summary: 'Bring the cluster up from baked boxes (CDKTF + terraform/tofu), inspect it, tear it down.',
  commands,
};

function snapshotArg(action: string, name: string | undefined): string {
  if (!name) throw new UsageError(`cluster snapshot ${action}: a snapshot name is required`);
  return name;
}

/** The nodes whose configuration now differs from the one the snapshot holds. */
async function olderConfigurations(context: NodeContext, snapshot: SnapshotRecord): Promise<string[]> {
  const older: string[] = [];
  for (const node of snapshot.nodes) {
    if (node.configHash && node.configHash !== planHash(await planFor(context, node.name))) older.push(node.name);
  }
  return older;
}

function nodeArg(positionals: string[]): string {
  const [node] = positionals;
  if (!node) throw new UsageError('a node name is required');
  try {
    return checkNodeName(node);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * A `node` step on the node named by the one argument; `step` returns the line that reports it done.
 * SIGINT, SIGTERM or SIGHUP (terraform stopping its provisioner, a Ctrl-C, the wrapper gone) abort what
 * the step waits for; `onAbort` then puts things right (a half-booted node is taken down) and the step
 * exits 130. A step without `onAbort` (down) is itself the cleanup: it runs to its end.
 */
function nodeStep(
  command: Pick<Command, 'name' | 'summary' | 'options'>,
  step: (context: NodeContext, node: string, values: Values) => Promise<string>,
  onAbort?: (context: NodeContext, node: string) => Promise<void>,
): Command {
  return {
    args: '<node>',
    options: OPTIONS,
    ...command,
    async run(values, positionals) {
      const controller = new AbortController();
      // The configuration is checked before the node name: a bad config file is the first thing to fix.
      const context = await contextOf(values, onAbort ? controller.signal : undefined);
      const node = nodeArg(positionals);
      const abort = (signal: NodeJS.Signals) => {
        if (!controller.signal.aborted) process.stderr.write(`[${node}] ${signal}: ${onAbort ? 'aborting' : 'finishing first'}\n`);
        controller.abort(new Error(`node ${command.name} ${node} interrupted by ${signal}`));
      };
      STOP_SIGNALS.forEach((signal) => process.on(signal, abort));
      try {
        try {
          process.stdout.write(`${await step(context, node, values)}\n`);
          return EXIT.ok;
        } catch (error) {
          if (!controller.signal.aborted || !onAbort) throw error;
          await onAbort({ ...context, signal: undefined }, node);
          process.stderr.write(`[${node}] interrupted: ${(error as Error).message}\n`);
          return EXIT.interrupted;
        }
      } finally {
        STOP_SIGNALS.forEach((signal) => process.off(signal, abort));
      }
    },
  };
}

export const nodeGroup: Group = {
  name: 'node',
  summary: "One step on one node: what the CDKTF stack's provisioners call.",
  commands: [
    nodeStep(
      {
        name: 'up',
        summary: 'Boot one node from its box (the given version, else the newest) and wait for SSH.',
        options: { ...OPTIONS, 'box-version': { type: 'string', description: 'box version to boot (the stack passes the one it recorded)' } as Options[string] },
      },
      async (context, node, values) => {
        const record = await nodeUp(context, node, str(values, 'box-version'));
        return `${record.name} is up from ${record.box.name} ${record.box.version}, SSH on ${record.ssh.host}:${record.ssh.port}`;
      },
      // An interrupted boot leaves nothing half-up: no VM, overlay or record that says "up".
      (context, node) => nodeDown(context, node),
    ),
    nodeStep(
      { name: 'start', summary: 'Run one node from its own disk again: resume it if paused or stopped with its state, boot its disk if its machine stopped; a running node is left alone.' },
      async (context, node) => {
        const started = await nodeStart(context, node);
        return `${node}: ${started.did}`;
      },
      // A boot from the disk that is interrupted leaves the disk as it was: cluster up starts it again.
      async () => undefined,
    ),
    nodeStep(
      { name: 'configure', summary: 'Apply the final configuration to one node over SSH (idempotent: a second run changes nothing).' },
      async (context, node) => {
        const result = await nodeConfigure(context, node);
        return `${node} configured: ${result.changedFiles.length} file(s) changed, ${result.ranCommands.length} command(s) run (configuration ${result.hash.slice(0, 12)})`;
      },
      // The record gets its configuration hash only at the end: an interrupted run leaves it saying "not configured".
      async () => undefined,
    ),
    nodeStep({ name: 'down', summary: 'Stop one node and remove its disk overlay.' }, async (context, node) => {
      await nodeDown(context, node);
      return `${node} is down`;
    }),
  ],
};
