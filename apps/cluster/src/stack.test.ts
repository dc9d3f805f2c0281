import { DataResource, Testing, testingMatchers } from 'cdktf';
import { Resource } from '@cdktf/provider-null/lib/resource/index.js';
import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { ClusterStack, templateLiteral, type NodeInputs, type NodeStep } from './stack.ts';

// cdktf's Testing.synth gives the stack's JSON without the terraform binary. Its jest matchers are
// plain functions (testingMatchers); vitest gets them through expect.extend.
expect.extend({
  toHaveResourceWithProperties(received: string, type: typeof Resource | typeof DataResource, properties: Record<string, unknown>) {
    const result = testingMatchers.getToHaveResourceWithProperties()(received, type, properties);
    return { pass: result.pass, message: () => result.message };
  },
  toHaveProvider(received: string, type: typeof NullProvider) {
    const result = testingMatchers.getToHaveProviderWithProperties()(received, type, {});
    return { pass: result.pass, message: () => result.message };
  },
});
declare module 'vitest' {
  interface Assertion {
    toHaveResourceWithProperties(type: typeof Resource | typeof DataResource, properties: Record<string, unknown>): void;
    toHaveProvider(type: typeof NullProvider): void;
  }
}

const cluster = resolveClusterOrThrow({});
const nullCluster = resolveClusterOrThrow({ terraform: { resource: 'null_resource' } });
const baseNodes: NodeInputs[] = cluster.nodes.map((node) => ({ name: node.name, boxVersion: '1.20261128.0', boxContentKey: `key-${node.role}`, configHash: `hash-${node.name}` }));
const stepText = (step: NodeStep) => `boxcar node ${step.verb} ${step.node}${step.verb === 'up' ? ` --box-version ${step.boxVersion}` : ''}`;

function synth(nodes = baseNodes, of = cluster): { text: string; json: any } {
  const stack = new ClusterStack(Testing.app(), 'cni-dev', {
    cluster: of,
    nodes,
    command: stepText,
    stateDir: '/state/cni-dev',
    kubeconfigPath: '/state/cni-dev/pki/admin-kubeconfig.yaml',
    sshCommand: (node) => `boxcar cluster ssh ${node}`,
  });
  const text = Testing.synth(stack);
  return { text, json: JSON.parse(text) };
}

type Resources = Record<string, { triggers_replace: Record<string, string>; depends_on?: string[]; provisioner: any[] }>;

describe('the cluster stack', () => {
  const { text, json } = synth();
  const resources = json.resource.terraform_data as Resources;

  it("uses Terraform's built-in terraform_data and no provider at all (nothing to download)", () => {
    expect(Object.keys(json.resource)).toEqual(['terraform_data']);
    expect(json.provider).toBeUndefined();
    expect(json.terraform.required_providers).toBeUndefined();
  });

  it('has one VM, one boot and one configuration resource per node', () =>
    expect(Object.keys(resources).sort()).toEqual(cluster.nodes.flatMap((n) => [`boot-${n.name}`, `config-${n.name}`, `vm-${n.name}`]).sort()));

  it("triggers a VM on its box version and content key, and the provider", () => {
    expect(text).toHaveResourceWithProperties(DataResource, { triggers_replace: { box_version: '1.20261128.0', box_content_key: 'key-worker', provider: 'virtualbox' } });
    expect(resources['vm-cni-master1']!.triggers_replace).toEqual({ box_version: '1.20261128.0', box_content_key: 'key-master', provider: 'virtualbox' });
  });

  it("triggers a boot on its VM's id, a configuration on its boot's id and its configuration hash", () => {
    expect(resources['boot-cni-worker2']!.triggers_replace).toEqual({ vm: '${terraform_data.vm-cni-worker2.id}' });
    expect(resources['config-cni-worker2']!.triggers_replace).toEqual({ boot: '${terraform_data.boot-cni-worker2.id}', config_hash: 'hash-cni-worker2' });
  });

  it('starts a node from its disk with node start, and has no destroy-time step there (a replaced boot keeps the disk)', () =>
    expect(resources['boot-cni-worker1']!.provisioner).toEqual([{ 'local-exec': { command: 'boxcar node start cni-worker1' } }]));

  it('boots the recorded box version with node up and tears down with node down at destroy time', () => {
    expect(resources['vm-cni-worker1']!.provisioner).toEqual([
      { 'local-exec': { command: 'boxcar node up cni-worker1 --box-version 1.20261128.0' } },
      { 'local-exec': { command: 'boxcar node down cni-worker1', when: 'destroy' } },
    ]);
    expect(resources['config-cni-worker1']!.provisioner).toEqual([{ 'local-exec': { command: 'boxcar node configure cni-worker1' } }]);
  });

  it('configures the etcd node first, then the master, then the other workers (Calico and Kubernetes need them)', () => {
    expect(resources['config-cni-worker1']!.depends_on).toEqual(['terraform_data.boot-cni-worker1']);
    expect(resources['config-cni-master1']!.depends_on).toEqual(['terraform_data.boot-cni-master1', 'terraform_data.config-cni-worker1']);
    expect(resources['config-cni-worker2']!.depends_on).toEqual([
      'terraform_data.boot-cni-worker2',
      'terraform_data.config-cni-worker1',
      'terraform_data.config-cni-master1',
    ]);
  });

  it('outputs node IPs, SSH commands, box versions and the kubeconfig path', () => {
    expect(json.output.node_ips.value).toEqual({ 'cni-master1': '192.168.10.10', 'cni-worker1': '192.168.10.21', 'cni-worker2': '192.168.10.22' });
    expect(json.output.ssh_commands.value['cni-worker2']).toBe('boxcar cluster ssh cni-worker2');
    expect(json.output.box_versions.value['cni-master1']).toBe('1.20261128.0');
    expect(json.output.kubeconfig.value).toBe('/state/cni-dev/pki/admin-kubeconfig.yaml');
  });

  it('pins the local backend state under the cluster state directory', () =>
    expect(json.terraform.backend.local.path).toBe('/state/cni-dev/terraform.tfstate'));

  it("a new box version changes only that node's trigger", () => {
    const after = synth(baseNodes.map((n) => (n.name === 'cni-worker2' ? { ...n, boxVersion: '1.20261129.0', boxContentKey: 'new' } : n))).json.resource.terraform_data;
    const changed = Object.keys(resources).filter((name) => JSON.stringify(resources[name]!.triggers_replace) !== JSON.stringify(after[name].triggers_replace));
    expect(changed).toEqual(['vm-cni-worker2']);
  });
});

describe('terraform.resource: null_resource', () => {
  const { text, json } = synth(baseNodes, nullCluster);

  it('uses the null provider', () => expect(text).toHaveProvider(NullProvider));

  it('gives the same graph as terraform_data: names, dependencies, triggers, commands; only the type differs', () => {
    const normalize = (resources: Record<string, any>, type: string, triggersKey: string) =>
      Object.fromEntries(
        Object.entries(resources).map(([name, resource]) => [
          name,
          {
            triggers: JSON.parse(JSON.stringify(resource[triggersKey]).replaceAll(`\${${type}.`, '${TYPE.')),
            depends_on: (resource.depends_on ?? []).map((dependency: string) => dependency.replace(`${type}.`, 'TYPE.')),
            provisioner: resource.provisioner,
          },
        ]),
      );
    const withData = synth().json.resource.terraform_data;
    expect(Object.keys(json.resource)).toEqual(['null_resource']);
    expect(normalize(json.resource.null_resource, 'null_resource', 'triggers')).toEqual(normalize(withData, 'terraform_data', 'triggers_replace'));
    // And the normalization did not hide everything: the graph has its 9 resources and 6 dependencies.
    expect(Object.keys(withData)).toHaveLength(9);
    expect(Object.values(normalize(withData, 'terraform_data', 'triggers_replace')).flatMap((r: any) => r.depends_on)).toHaveLength(6);
  });
});

describe('provisioner commands are Terraform templates', () => {
  it('escapes ${ and %{ so that a path keeps them literally', () => {
    expect(templateLiteral('/tmp/a${b}/c%{d}/e$f%g')).toBe('/tmp/a$${b}/c%%{d}/e$f%g');
  });

  it('every command, output and the backend path of a stack under such a directory is escaped', () => {
    const stack = new ClusterStack(Testing.app(), 'cni-dev', {
      cluster,
      nodes: baseNodes,
      command: (step) => `boxcar --config '/home/dev/\${x}/%{y}.json' node ${step.verb} ${step.node}`,
      stateDir: '/state/${odd}',
      sshCommand: (node) => `boxcar --state-dir /state/\${odd} cluster ssh ${node}`,
    });
    const json = JSON.parse(Testing.synth(stack));
    expect(json.resource.terraform_data['vm-cni-worker1'].provisioner[0]['local-exec'].command).toBe("boxcar --config '/home/dev/$${x}/%%{y}.json' node up cni-worker1");
    expect(json.output.ssh_commands.value['cni-worker1']).toBe('boxcar --state-dir /state/$${odd} cluster ssh cni-worker1');
    expect(json.terraform.backend.local.path).toBe('/state/$${odd}/terraform.tfstate');
  });
});
