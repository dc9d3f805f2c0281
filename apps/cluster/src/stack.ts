import { App, DataResource, LocalBackend, TerraformOutput, TerraformStack, type TerraformResource } from 'cdktf';
import type { Construct } from 'constructs';
import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { Resource as NullResource } from '@cdktf/provider-null/lib/resource/index.js';
import type { Cluster, TerraformResourceType } from '@boxcar/model';

// The only place that knows CDKTF (so that a move to the maintained fork, cdktn, stays small).
// Every provisioner calls boxcar's own CLI: the step logic lives in TypeScript and can run without
// terraform, and terraform only decides what to (re)create and in which order.

export interface NodeInputs {
  name: string;
  /** Box version from the store's catalog: a new bake changes it, and so replaces this node. */
  boxVersion: string;
  /** Content key of the layer the box was baked from. */
  boxContentKey: string;
  /** Hash of the node's rendered final configuration: a change re-runs `node configure`. */
  configHash: string;
}

/** One step of one node, as a provisioner runs it: `boxcar node <verb> <node>`. */
export type NodeStep = { verb: 'up'; node: string; boxVersion: string } | { verb: 'start' | 'configure' | 'down'; node: string };

export interface StackInputs {
  cluster: Cluster;
  nodes: NodeInputs[];
  /** The shell command that runs a step with the same config, profile, provider, store and state dir, from any directory. */
  command: (step: NodeStep) => string;
  /** .cluster/<name>/: terraform state lives here, not where synth happened to run. */
  stateDir: string;
  kubeconfigPath?: string;
  sshCommand: (node: string) => string;
}

/**
 * Resource names in the stack: what terraform's plan and state call each node's three resources. The VM
 * is the node's disk made from its box and its first boot (destroyed: node down, the disk gone); the boot
 * is its machine running from that disk (node start: a no-op on a running node), which cluster up
 * replaces when the machine stopped but the disk is there; the configuration follows the boot.
 */
export const VM_PREFIX = 'vm-';
export const BOOT_PREFIX = 'boot-';
export const CONFIG_PREFIX = 'config-';

interface NodeResourceSpec {
  triggers: Record<string, string>;
  dependsOn?: TerraformResource[];
  provisioners: { type: 'local-exec'; command: string; when?: 'destroy' }[];
}

/**
 * The one place where the two resource types differ: `terraform_data` is built into Terraform 1.4+
 * and OpenTofu 1.6+ (nothing to download: works offline and in air-gapped labs); `null_resource`
 * needs the hashicorp/null provider. Same triggers, dependencies and provisioners for both.
 */
function nodeResource(scope: Construct, type: TerraformResourceType, id: string, spec: NodeResourceSpec): TerraformResource {
  const common = { ...(spec.dependsOn ? { dependsOn: spec.dependsOn } : {}), provisioners: spec.provisioners };
  return type === 'terraform_data'
    ? new DataResource(scope, id, { triggersReplace: spec.triggers, ...common })
    : new NullResource(scope, id, { triggers: spec.triggers, ...common });
}

/**
 * A provisioner command is a Terraform string template: `${` and `%{` in it (a path, a config file
 * name) would be read as interpolation or a directive. `$${` and `%%{` are their literal forms.
 */
export function templateLiteral(text: string): string {
  // Replacer functions: in a replacement string, `$$` would itself mean one `$`.
  return text.replaceAll('${', () => '$${').replaceAll('%{', () => '%%{');
}

export class ClusterStack extends TerraformStack {
  constructor(scope: Construct, id: string, inputs: StackInputs) {
    super(scope, id);
    const { cluster } = inputs;
    const type = cluster.terraform.resource;
    if (type === 'null_resource') new NullProvider(this, 'null');
    new LocalBackend(this, { path: templateLiteral(`${inputs.stateDir}/terraform.tfstate`) });
    const command = (step: NodeStep) => templateLiteral(inputs.command(step));

    const boots = new Map<string, TerraformResource>();
    for (const node of inputs.nodes) {
      const vm = nodeResource(this, type, `${VM_PREFIX}${node.name}`, {
        triggers: { box_version: node.boxVersion, box_content_key: node.boxContentKey, provider: cluster.provider },
        provisioners: [
          { type: 'local-exec', command: command({ verb: 'up', node: node.name, boxVersion: node.boxVersion }) },
          { type: 'local-exec', when: 'destroy', command: command({ verb: 'down', node: node.name }) },
        ],
      });
      // No destroy-time step: replacing the boot must never take the disk with it.
      boots.set(
        node.name,
        nodeResource(this, type, `${BOOT_PREFIX}${node.name}`, {
          triggers: { vm: vm.getStringAttribute('id') },
          provisioners: [{ type: 'local-exec', command: command({ verb: 'start', node: node.name }) }],
        }),
      );
    }

    // Each configuration waits for its VM and for what it talks to, nothing more: where Calico or the
    // 2016 Kubernetes run, the etcd node is configured first (their store must answer before anyone uses
    // it), and with that Kubernetes the master before the other workers (their kubelets register with its
    // apiserver). The lab's Kubernetes (cluster.kubernetes) keeps its store on the master and its kubelets
    // retry until the apiserver answers, so, as without Kubernetes, every node is configured at once;
    // cluster up then waits for every node to be Ready.
    const { calico } = cluster.profile.features;
    const kubernetes = cluster.profile.features.kubernetes && !cluster.kubernetes;
    const configs = new Map<string, TerraformResource>();
    const order = [...cluster.nodes].sort((a, b) => configurationRank(a, cluster) - configurationRank(b, cluster));
    for (const node of order) {
      const inputsOfNode = inputs.nodes.find((candidate) => candidate.name === node.name)!;
      const dependsOn = [boots.get(node.name)!];
      if ((calico || kubernetes) && node.name !== cluster.etcd.node) dependsOn.push(configs.get(cluster.etcd.node)!);
      if (kubernetes && node.role !== 'master' && node.name !== cluster.etcd.node) dependsOn.push(configs.get(cluster.master.name)!);
      configs.set(
        node.name,
        nodeResource(this, type, `${CONFIG_PREFIX}${node.name}`, {
          triggers: { boot: boots.get(node.name)!.getStringAttribute('id'), config_hash: inputsOfNode.configHash },
          dependsOn,
          provisioners: [{ type: 'local-exec', command: command({ verb: 'configure', node: node.name }) }],
        }),
      );
    }

    new TerraformOutput(this, 'node_ips', { value: Object.fromEntries(cluster.nodes.map((node) => [node.name, node.ip])) });
    new TerraformOutput(this, 'ssh_commands', { value: Object.fromEntries(cluster.nodes.map((node) => [node.name, templateLiteral(inputs.sshCommand(node.name))])) });
    new TerraformOutput(this, 'box_versions', { value: Object.fromEntries(inputs.nodes.map((node) => [node.name, node.boxVersion])) });
    if (inputs.kubeconfigPath) new TerraformOutput(this, 'kubeconfig', { value: templateLiteral(inputs.kubeconfigPath) });
  }
}

/** The order in which nodes are configured: the etcd node (0), the master (1), the other workers (2). */
export function configurationRank(node: Cluster['nodes'][number], cluster: Cluster): number {
  if (node.name === cluster.etcd.node) return 0;
  return node.role === 'master' ? 1 : 2;
}

export function synthStack(outdir: string, inputs: StackInputs): string {
  const app = new App({ outdir, skipValidation: false });
  new ClusterStack(app, inputs.cluster.name, inputs);
  app.synth();
  return `${outdir}/stacks/${inputs.cluster.name}`;
}
