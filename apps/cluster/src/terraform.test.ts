import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { planIsEmpty, plannedChanges, summarizePlan } from './plan-summary.ts';
import { driftReplacements, replaceArgs } from './replacements.ts';
import { synthStack, type NodeInputs } from './stack.ts';
import { terraformBinary, terraformRunner } from './terraform.ts';

// The real terraform (offline: terraform_data needs no provider) on the real stack of the lab
// cluster, whose provisioners here only log the step they would run. The directory's name holds
// `${` and `%{`, so every path in the stack must reach the shell literally.

const binary = await terraformBinary();
const work = mkdtempSync(join(tmpdir(), 'boxcar-tf-${odd}%{x}-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const stepLog = join(work, 'steps.log');

function synth(cluster: Cluster, change: (node: NodeInputs) => NodeInputs = (node) => node): string {
  const nodes = cluster.nodes.map((node) => change({ name: node.name, boxVersion: '1.20261130.0', boxContentKey: `key-${node.role}`, configHash: `hash-${node.name}` }));
  return synthStack(join(work, 'cdktf.out'), {
    cluster,
    nodes,
    command: (step) => `echo ${step.verb} ${step.node} >> '${stepLog}'`,
    stateDir: work,
    sshCommand: (node) => `ssh ${node}`,
  });
}

function stepsSince(mark: number): string[] {
  return readFileSync(stepLog, 'utf8').split('\n').filter(Boolean).slice(mark);
}

describe.skipIf(!binary)(`the stack applied by the real ${binary ?? 'terraform (skipped: neither terraform nor tofu is on PATH)'}`, () => {
  const lab = resolveClusterOrThrow({ profile: 'lab' });
  let terraform: ReturnType<typeof terraformRunner>;
  let mark = 0;
  const apply = async () => {
    mark = stepsSince(0).length;
    await terraform.apply();
    return stepsSince(mark);
  };

  it('init needs no provider download; the first plan creates every resource, in an order the apply follows', async () => {
    writeFileSync(stepLog, '');
    const stackDir = synth(lab);
    terraform = terraformRunner({ binary: binary!, stackDir, logDir: join(work, 'logs') });
    await terraform.init();
    // Nothing applied yet: an empty state, not an error (cluster plan asks before the first up).
    expect(await terraform.stateList()).toEqual([]);
    const plan = await terraform.plan();
    expect(summarizePlan(plan)).toEqual(
      lab.nodes.map((node) => ({ node: node.name, vm: 'create', boot: 'create', configuration: 'create', reasons: ['not running yet', 'not configured yet'] })),
    );
    const steps = await apply();
    expect(steps.filter((step) => step.startsWith('up')).sort()).toEqual(lab.nodes.map((node) => `up ${node.name}`).sort());
    for (const node of lab.nodes) expect(steps.indexOf(`start ${node.name}`)).toBeGreaterThan(steps.indexOf(`up ${node.name}`));
    // No configuration of the lab (no Calico, no Kubernetes) waits for another node's; each after its own VM.
    const configured = steps.filter((step) => step.startsWith('configure'));
    expect(configured.sort()).toEqual(lab.nodes.map((node) => `configure ${node.name}`).sort());
    for (const node of lab.nodes) expect(steps.indexOf(`configure ${node.name}`)).toBeGreaterThan(steps.indexOf(`start ${node.name}`));
    expect(await terraform.stateList()).toHaveLength(9);
  });

  it('the unchanged stack plans no change', async () => {
    const plan = await terraform.plan();
    expect(planIsEmpty(plan)).toBe(true);
    expect(summarizePlan(plan).every((row) => row.vm === 'keep' && row.boot === 'keep' && row.configuration === 'keep' && row.reasons.length === 0)).toBe(true);
  });

  it("a node whose machine stopped gets its boot replaced: node start, then its configuration; never node down (its disk stays)", async () => {
    const observed = lab.nodes.map((node) => ({ name: node.name, recorded: true, state: node.name === 'cni-worker1' ? ('stopped' as const) : ('running' as const) }));
    const made = new Set((await terraform.stateList()).filter((a) => a.startsWith('terraform_data.vm-')).map((a) => a.slice('terraform_data.vm-'.length)));
    const drift = driftReplacements('terraform_data', observed, made);
    const plan = await terraform.plan(replaceArgs(drift));
    expect(summarizePlan(plan, Object.fromEntries(drift.map((r) => [r.address, r.reason]))).find((row) => row.node === 'cni-worker1')).toEqual({
      node: 'cni-worker1', vm: 'keep', boot: 'replace', configuration: 'replace',
      reasons: ['its machine is not running (it crashed, was killed or the host restarted): it boots from its disk, files kept', 'its machine starts anew'],
    });
    expect(await apply()).toEqual(['start cni-worker1', 'configure cni-worker1']);
  });

  it('a node taken down by hand (no record, no machine) gets its VM replaced: node down, node up, start, configure', async () => {
    const observed = lab.nodes.map((node) => (node.name === 'cni-worker2' ? { name: node.name, recorded: false, state: 'absent' as const } : { name: node.name, recorded: true, state: 'running' as const }));
    const drift = driftReplacements('terraform_data', observed, new Set(lab.nodes.map((node) => node.name)));
    const plan = await terraform.plan(replaceArgs(drift));
    expect(summarizePlan(plan, Object.fromEntries(drift.map((r) => [r.address, r.reason]))).find((row) => row.node === 'cni-worker2')?.reasons).toEqual([
      'it was taken down outside terraform (node down): it is made again',
      'its machine starts anew',
    ]);
    expect(await apply()).toEqual(['down cni-worker2', 'up cni-worker2', 'start cni-worker2', 'configure cni-worker2']);
  });

  it("a new box version replaces exactly that node's VM and configuration, and says why", async () => {
    synth(lab, (node) => (node.name === 'cni-worker2' ? { ...node, boxVersion: '1.20261130.1', boxContentKey: 'new' } : node));
    const plan = await terraform.plan();
    expect(plannedChanges(plan).filter((change) => change.action !== 'keep').map((change) => [change.address, change.action, change.reasons])).toEqual([
      ['terraform_data.boot-cni-worker2', 'replace', ['its VM is replaced']],
      ['terraform_data.config-cni-worker2', 'replace', ['its machine starts anew']],
      ['terraform_data.vm-cni-worker2', 'replace', ['box 1.20261130.0 -> 1.20261130.1']],
    ]);
    expect(await apply()).toEqual(['down cni-worker2', 'up cni-worker2', 'start cni-worker2', 'configure cni-worker2']);
  });

  it("a configuration change re-runs only that node's configuration", async () => {
    synth(lab, (node) => ({ ...node, ...(node.name === 'cni-worker2' ? { boxVersion: '1.20261130.1', boxContentKey: 'new' } : {}), ...(node.name === 'cni-master1' ? { configHash: 'changed' } : {}) }));
    const summary = summarizePlan(await terraform.plan());
    expect(summary.find((row) => row.node === 'cni-master1')).toEqual({ node: 'cni-master1', vm: 'keep', boot: 'keep', configuration: 'replace', reasons: ['configuration changed'] });
    expect(summary.filter((row) => row.node !== 'cni-master1').every((row) => row.vm === 'keep' && row.boot === 'keep' && row.configuration === 'keep')).toBe(true);
    expect(await apply()).toEqual(['configure cni-master1']);
  });

  it('a node that left the configuration is only forgotten by terraform: its destroy-time step does not run', async () => {
    synth(resolveClusterOrThrow({ profile: 'lab', workers: 1 }), (node) => (node.name === 'cni-master1' ? { ...node, configHash: 'changed' } : node));
    const summary = summarizePlan(await terraform.plan());
    expect(summary.find((row) => row.node === 'cni-worker2')).toEqual({ node: 'cni-worker2', vm: 'delete', boot: 'delete', configuration: 'delete', reasons: ['left the configuration'] });
    // This is why `cluster up` takes such a node down itself before it applies.
    expect(await apply()).toEqual([]);
    expect(await terraform.stateList()).toHaveLength(6);
  });

  it('destroy runs node down for every node; the state is empty after it', async () => {
    mark = stepsSince(0).length;
    await terraform.destroy();
    expect(stepsSince(mark).sort()).toEqual(['down cni-master1', 'down cni-worker1']);
    expect(await terraform.stateList()).toEqual([]);
  });
});
