import { App, LocalBackend, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { Resource } from '@cdktf/provider-null/lib/resource/index.js';
import type { Cluster } from '@boxcar/model';

// The only place that knows CDKTF (so that a move to the maintained fork, cdktn, stays small).
// Every provisioner calls boxcar's own CLI: the step logic lives in TypeScript and can run without
// terraform, and terraform only decides what to (re)create and in which order.

export interface NodeInputs {
  name: string;
  /** Box version from the store's catalog: a new bake changes it, and so replaces this node. */
  boxVersion: string;
  boxKey: string;
  /** Hash of the node's rendered final configuration: a change re-runs `node configure`. */
  configHash: string;
}

export interface StackInputs {
  cluster: Cluster;
  nodes: NodeInputs[];
  /** Command prefix that runs boxcar with the same config, profile and provider, e.g. `node --import tsx /repo/apps/cli/src/main.ts --config ...`. */
  cli: (args: string) => string;
  /** .cluster/<name>/: terraform state lives here, not where synth happened to run. */
  stateDir: string;
  kubeconfigPath?: string;
  sshCommand: (node: string) => string;
}

export class ClusterStack extends TerraformStack {
  constructor(scope: Construct, id: string, inputs: StackInputs) {
    super(scope, id);
    const { cluster } = inputs;
    new NullProvider(this, 'null');
    new LocalBackend(this, { path: `${inputs.stateDir}/terraform.tfstate` });

    const vms = new Map<string, Resource>();
    for (const node of inputs.nodes) {
      vms.set(
        node.name,
        new Resource(this, `vm-${node.name}`, {
          triggers: { box_version: node.boxVersion, box_key: node.boxKey, provider: cluster.provider },
          provisioners: [
            { type: 'local-exec', command: inputs.cli(`node up ${node.name}`) },
            { type: 'local-exec', when: 'destroy', command: inputs.cli(`node down ${node.name}`) },
          ],
        }),
      );
    }

    // The etcd node is configured first (Calico's store must answer before anyone uses it), then the
    // master, then the other workers; each configuration waits for the VMs it talks to.
    const configs = new Map<string, Resource>();
    const order = [...cluster.nodes].sort((a, b) => configurationRank(a, cluster) - configurationRank(b, cluster));
    for (const node of order) {
      const inputsOfNode = inputs.nodes.find((candidate) => candidate.name === node.name)!;
      const dependsOn = [vms.get(node.name)!];
      if (node.name !== cluster.etcd.node) dependsOn.push(configs.get(cluster.etcd.node)!);
      if (node.role !== 'master' && node.name !== cluster.etcd.node) dependsOn.push(configs.get(cluster.master.name)!);
      configs.set(
        node.name,
        new Resource(this, `config-${node.name}`, {
          triggers: { vm: vms.get(node.name)!.id, config_hash: inputsOfNode.configHash },
          dependsOn,
          provisioners: [{ type: 'local-exec', command: inputs.cli(`node configure ${node.name}`) }],
        }),
      );
    }

    new TerraformOutput(this, 'node_ips', { value: Object.fromEntries(cluster.nodes.map((node) => [node.name, node.ip])) });
    new TerraformOutput(this, 'ssh_commands', { value: Object.fromEntries(cluster.nodes.map((node) => [node.name, inputs.sshCommand(node.name)])) });
    new TerraformOutput(this, 'box_versions', { value: Object.fromEntries(inputs.nodes.map((node) => [node.name, node.boxVersion])) });
    if (inputs.kubeconfigPath) new TerraformOutput(this, 'kubeconfig', { value: inputs.kubeconfigPath });
  }
}

/** etcd node, then master, then the rest: the order configurations can be applied in. */
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
