import { Testing, testingMatchers } from 'cdktf';
import { Resource } from '@cdktf/provider-null/lib/resource/index.js';
import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { ClusterStack, type NodeInputs } from './stack.ts';

// cdktf's Testing.synth gives the stack's JSON without the terraform binary. Its jest matchers are
// plain functions (testingMatchers); vitest gets them through expect.extend.
expect.extend({
  toHaveResourceWithProperties(received: string, type: typeof Resource, properties: Record<string, unknown>) {
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
    toHaveResourceWithProperties(type: typeof Resource, properties: Record<string, unknown>): void;
    toHaveProvider(type: typeof NullProvider): void;
  }
}

const cluster = resolveClusterOrThrow({});
const baseNodes: NodeInputs[] = cluster.nodes.map((node) => ({ name: node.name, boxVersion: '1.20261128.0', boxKey: `key-${node.role}`, configHash: `hash-${node.name}` }));

function synth(nodes = baseNodes): { text: string; json: any } {
  const stack = new ClusterStack(Testing.app(), 'cni-dev', {
    cluster,
    nodes,
    cli: (args) => `boxcar ${args}`,
    stateDir: '/state/cni-dev',
    kubeconfigPath: '/state/cni-dev/pki/admin-kubeconfig.yaml',
    sshCommand: (node) => `boxcar cluster ssh ${node}`,
  });
  const text = Testing.synth(stack);
  return { text, json: JSON.parse(text) };
}

describe('the cluster stack', () => {
  const { text, json } = synth();
  const resources = json.resource.null_resource as Record<string, { triggers: Record<string, string>; depends_on?: string[]; provisioner: any[] }>;

  it('uses the null provider', () => expect(text).toHaveProvider(NullProvider));

  it('has one VM and one configuration resource per node', () =>
    expect(Object.keys(resources).sort()).toEqual(cluster.nodes.flatMap((n) => [`config-${n.name}`, `vm-${n.name}`]).sort()));

  it("triggers a VM on its box version and key, and the provider", () => {
    expect(text).toHaveResourceWithProperties(Resource, { triggers: { box_version: '1.20261128.0', box_key: 'key-worker', provider: 'virtualbox' } });
    expect(resources['vm-cni-master1']!.triggers).toEqual({ box_version: '1.20261128.0', box_key: 'key-master', provider: 'virtualbox' });
  });

  it("triggers a configuration on its VM's id and its configuration hash", () =>
    expect(resources['config-cni-worker2']!.triggers).toEqual({ vm: '${null_resource.vm-cni-worker2.id}', config_hash: 'hash-cni-worker2' }));

  it('boots with node up and tears down with node down at destroy time', () => {
    expect(resources['vm-cni-worker1']!.provisioner).toEqual([
      { 'local-exec': { command: 'boxcar node up cni-worker1' } },
      { 'local-exec': { command: 'boxcar node down cni-worker1', when: 'destroy' } },
    ]);
    expect(resources['config-cni-worker1']!.provisioner).toEqual([{ 'local-exec': { command: 'boxcar node configure cni-worker1' } }]);
  });

  it('configures the etcd node first, then the master, then the other workers', () => {
    expect(resources['config-cni-worker1']!.depends_on).toEqual(['null_resource.vm-cni-worker1']);
    expect(resources['config-cni-master1']!.depends_on).toEqual(['null_resource.vm-cni-master1', 'null_resource.config-cni-worker1']);
    expect(resources['config-cni-worker2']!.depends_on).toEqual([
      'null_resource.vm-cni-worker2',
      'null_resource.config-cni-worker1',
      'null_resource.config-cni-master1',
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
    const after = synth(baseNodes.map((n) => (n.name === 'cni-worker2' ? { ...n, boxVersion: '1.20261129.0', boxKey: 'new' } : n))).json.resource.null_resource;
    const changed = Object.keys(resources).filter((name) => JSON.stringify(resources[name]!.triggers) !== JSON.stringify(after[name].triggers));
    expect(changed).toEqual(['vm-cni-worker2']);
  });
});
