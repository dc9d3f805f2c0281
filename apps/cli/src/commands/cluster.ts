import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { synthStack, type NodeInputs } from '@boxcar/cluster';
import { defaultStoreUrl, openStore } from '@boxcar/box-store';
import { REPO_ROOT, type Cluster } from '@boxcar/model';
import { stateRoot, clusterStatus, nodeBox, nodeConfigure, nodeContext, nodeDown, nodeUp, planFor, planHash, providerCleanup, readNodeRecord, clusterKey, type NodeContext } from '@boxcar/nodes';
import { shellQuote, sshArgs } from '@boxcar/providers';
import { EXIT, str, table, UsageError, type Command, type Group, type Options, type Values } from '../cli-kit.ts';
import { CLUSTER_OPTIONS, clusterFromOptions } from '../cluster-options.ts';

const OPTIONS: Options = {
  ...CLUSTER_OPTIONS,
  store: { type: 'string', description: 'box store URL (default: the config\'s boxStore, $BOXCAR_STORE, ~/.cache/boxcar/store)' } as Options[string],
  'state-dir': { type: 'string', description: 'where cluster state lives (default: $BOXCAR_STATE_DIR, else <repo>/.cluster)' } as Options[string],
};

function storeUrlOf(values: Values, cluster: Cluster): string {
  return str(values, 'store') ?? cluster.boxStore ?? defaultStoreUrl();
}

async function contextOf(values: Values): Promise<NodeContext> {
  const stateDir = str(values, 'state-dir');
  if (stateDir) process.env.BOXCAR_STATE_DIR = resolve(stateDir);
  const cluster = clusterFromOptions(values);
  const store = await openStore(storeUrlOf(values, cluster));
  return nodeContext(cluster, store, (node, message) => process.stderr.write(`[${node}] ${message}\n`));
}

/** How the stack's provisioners call this CLI: the same config, profile, provider and store, from any directory. */
function cliPrefix(values: Values, context: NodeContext): (args: string) => string {
  const words = [process.execPath, resolve(REPO_ROOT, 'apps/cli/bin/boxcar.mjs')];
  const forwarded = [
    ...(str(values, 'config') ? ['--config', resolve(str(values, 'config')!)] : []),
    '--profile', context.cluster.profile.name,
    '--provider', context.cluster.provider,
    '--store', context.store.url,
    // Terraform runs these from any shell: nothing may depend on that shell's environment.
    '--state-dir', stateRoot(),
  ];
  return (args) => [...words, ...args.split(' '), ...forwarded].map(shellQuote).join(' ');
}

export async function synthesize(values: Values): Promise<{ context: NodeContext; stackDir: string }> {
  const context = await contextOf(values);
  const { cluster, store, paths } = context;
  const nodes: NodeInputs[] = [];
  for (const node of cluster.nodes) {
    const box = await nodeBox(store, cluster, node);
    nodes.push({ name: node.name, boxVersion: box.version, boxKey: box.key, configHash: planHash(await planFor(context, node.name)) });
  }
  const cli = cliPrefix(values, context);
  const key = await clusterKey(paths, cluster);
  const stackDir = synthStack(paths.stackOut, {
    cluster,
    nodes,
    // `node up` boots exactly the box version the stack recorded in that node's trigger.
    cli: (args) => {
      const [, step, node] = args.split(' ');
      const version = nodes.find((n) => n.name === node)?.boxVersion;
      return cli(step === 'up' && version ? `${args} --box-version ${version}` : args);
    },
    stateDir: paths.dir,
    sshCommand: (node) => `${process.execPath} ${resolve(REPO_ROOT, 'apps/cli/bin/boxcar.mjs')} cluster ssh ${node}`,
    ...(cluster.profile.features.kubernetes ? { kubeconfigPath: `${paths.pki}/admin-kubeconfig.yaml` } : {}),
  });
  process.stderr.write(`synthesized ${stackDir}/cdk.tf.json (cluster key ${key.privateKey})\n`);
  return { context, stackDir };
}

/** terraform or tofu, as TERRAFORM_BINARY_NAME (cdktf's variable) chooses, else whichever is installed. */
export async function terraformBinary(): Promise<string | undefined> {
  const candidates = process.env.TERRAFORM_BINARY_NAME ? [process.env.TERRAFORM_BINARY_NAME] : ['terraform', 'tofu'];
  for (const binary of candidates) {
    const probe = await execa(binary, ['version'], { reject: false, env: { CHECKPOINT_DISABLE: '1' } });
    if (probe.exitCode === 0) return binary;
  }
  return undefined;
}

const NO_TERRAFORM = `neither terraform nor tofu is installed, and cluster:up applies the synthesized stack with one of them.
Install OpenTofu (https://opentofu.org/docs/intro/install/) or Terraform (https://developer.hashicorp.com/terraform/install);
TERRAFORM_BINARY_NAME=tofu picks OpenTofu when both are there. The stack is ready in the directory above.`;

async function terraform(binary: string, stackDir: string, args: string[]): Promise<number> {
  const result = await execa(binary, args, { cwd: stackDir, stdio: 'inherit', reject: false, env: { TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' } });
  return result.exitCode ?? EXIT.failure;
}

/** Synthesize, then `terraform init` and the given command in the stack directory. */
async function synthAndRun(values: Values, command: string[]): Promise<number> {
  const { stackDir } = await synthesize(values);
  const binary = await terraformBinary();
  if (!binary) {
    process.stderr.write(`${NO_TERRAFORM}\n`);
    return EXIT.missingPrerequisite;
  }
  const init = await terraform(binary, stackDir, ['init', '-input=false']);
  return init !== 0 ? init : terraform(binary, stackDir, command);
}

function nodeArg(positionals: string[]): string {
  const [node] = positionals;
  if (!node) throw new UsageError('a node name is required');
  return node;
}

const commands: Command[] = [
  {
    name: 'synth',
    summary: 'Synthesize the CDKTF stack (one null_resource per node and per configuration) into .cluster/<name>/cdktf.out/.',
    options: OPTIONS,
    async run(values) {
      const { stackDir } = await synthesize(values);
      process.stdout.write(`${stackDir}\n`);
      return EXIT.ok;
    },
  },
  {
    name: 'plan',
    summary: 'Synthesize, then terraform/tofu plan.',
    options: OPTIONS,
    run: (values) => synthAndRun(values, ['plan', '-input=false']),
  },
  {
    name: 'up',
    summary: 'Synthesize and apply: boot the nodes whose box changed, configure what changed.',
    options: OPTIONS,
    run: (values) => synthAndRun(values, ['apply', '-auto-approve', '-input=false']),
  },
  {
    name: 'down',
    summary: 'terraform/tofu destroy, then make sure no VM, process, socket or disk overlay is left.',
    options: OPTIONS,
    async run(values) {
      const context = await contextOf(values);
      const stackDir = `${context.paths.stackOut}/stacks/${context.cluster.name}`;
      const binary = await terraformBinary();
      let code: number = EXIT.ok;
      // Only a stack terraform applied has terraform state to destroy.
      if (binary && existsSync(`${context.paths.dir}/terraform.tfstate`)) code = await terraform(binary, stackDir, ['destroy', '-auto-approve', '-input=false']);
      // Whatever terraform did (or if it is not installed), nothing of the cluster may keep running.
      const stopped = await providerCleanup(context);
      process.stdout.write(`cluster ${context.cluster.name} is down${stopped.length ? ` (stopped ${stopped.join(', ')})` : ''}\n`);
      return code;
    },
  },
  {
    name: 'status',
    summary: 'Per node: running, reachable over SSH, configured (and up to date), box version.',
    options: { ...OPTIONS, json: { type: 'boolean', description: 'machine-readable output' } as Options[string] },
    async run(values) {
      const context = await contextOf(values);
      const statuses = await clusterStatus(context);
      if (values.json) process.stdout.write(`${JSON.stringify(statuses, null, 2)}\n`);
      else {
        const yes = (flag: boolean) => (flag ? 'yes' : 'no');
        process.stdout.write(table(statuses.map((s) => [s.name, yes(s.running), yes(s.reachable), yes(s.configured), s.box ?? '', s.detail]), ['node', 'running', 'reachable', 'configured', 'box', 'detail']));
      }
      return statuses.every((s) => s.configured) ? EXIT.ok : EXIT.failure;
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
      const key = await clusterKey(context.paths, context.cluster);
      const args = [...sshArgs({ host: record.ssh.host, port: record.ssh.port, user: record.ssh.user, keyFile: key.privateKey }), ...positionals.slice(1)];
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
      const key = await clusterKey(context.paths, context.cluster);
      const result = await execa('ssh', [...sshArgs({ ...record.ssh, keyFile: key.privateKey }), 'sudo kubectl --server=http://127.0.0.1:8080 apply -f /etc/kubernetes/extras/'], { stdio: 'inherit', reject: false });
      return result.exitCode ?? EXIT.failure;
    },
  },
];

export const clusterGroup: Group = {
  name: 'cluster',
  summary: 'Bring the cluster up from baked boxes (CDKTF + terraform/tofu), inspect it, tear it down.',
  commands,
};

/** A `node` step on the node named by the one argument; `step` returns the line that reports it done. */
function nodeStep(command: Pick<Command, 'name' | 'summary' | 'options'>, step: (context: NodeContext, node: string, values: Values) => Promise<string>): Command {
  return {
    args: '<node>',
    options: OPTIONS,
    ...command,
    async run(values, positionals) {
      const context = await contextOf(values);
      process.stdout.write(`${await step(context, nodeArg(positionals), values)}\n`);
      return EXIT.ok;
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
    ),
    nodeStep({ name: 'configure', summary: 'Apply the final configuration to one node over SSH (idempotent: a second run changes nothing).' }, async (context, node) => {
      const result = await nodeConfigure(context, node);
      return `${node} configured: ${result.changedFiles.length} file(s) changed, ${result.ranCommands.length} command(s) run (configuration ${result.hash.slice(0, 12)})`;
    }),
    nodeStep({ name: 'down', summary: 'Stop one node and remove its disk overlay.' }, async (context, node) => {
      await nodeDown(context, node);
      return `${node} is down`;
    }),
  ],
};
