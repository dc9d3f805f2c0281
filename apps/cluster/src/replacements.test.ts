import { describe, expect, it } from 'vitest';
import { summarizePlan, type TerraformPlanJson } from './plan-summary.ts';
import { configReplacements, driftReplacements, replaceArgs, type ObservedNode } from './replacements.ts';

const nodes = ['cni-master1', 'cni-worker1', 'cni-worker2'].map((name) => ({ name, boxVersion: '1.1', boxContentKey: `key-${name}`, configHash: `${'c'.repeat(60)}${name.slice(-4)}` }));

describe('configReplacements', () => {
  it('replaces the configuration of the nodes whose record holds another configuration than the stack, naming the snapshot', () => {
    const replacements = configReplacements('terraform_data', nodes, {
      'cni-master1': { configHash: nodes[0]!.configHash },
      'cni-worker1': { configHash: `${'a'.repeat(64)}`, snapshot: 'monday' },
      'cni-worker2': { configHash: `${'b'.repeat(64)}` },
    });
    expect(replacements.map((r) => [r.node, r.address])).toEqual([
      ['cni-worker1', 'terraform_data.config-cni-worker1'],
      ['cni-worker2', 'terraform_data.config-cni-worker2'],
    ]);
    expect(replacements[0]!.reason).toBe('runs configuration aaaaaaaaaaaa (restored from snapshot monday), not the current cccccccccccc');
    expect(replacements[1]!.reason).toBe('runs configuration bbbbbbbbbbbb, not the current cccccccccccc');
    expect(replaceArgs(replacements)).toEqual(['-replace=terraform_data.config-cni-worker1', '-replace=terraform_data.config-cni-worker2']);
  });

  it('leaves nodes never configured or not up to terraform, and uses the stack\'s resource type', () => {
    expect(configReplacements('terraform_data', nodes, { 'cni-master1': {}, 'cni-worker1': undefined })).toEqual([]);
    expect(configReplacements('null_resource', nodes, { 'cni-master1': { configHash: 'x'.repeat(64) } }).map((r) => r.address)).toEqual(['null_resource.config-cni-master1']);
  });
});

describe('driftReplacements', () => {
  const observed = (state: ObservedNode['state'], recorded = true): ObservedNode[] => [{ name: 'cni-worker1', recorded, state }];
  const all = new Set(['cni-worker1']);
  const planned = (nodes: ObservedNode[], made: ReadonlySet<string> = all) => driftReplacements('terraform_data', nodes, made).map((r) => [r.address, r.reason]);

  it('leaves a running node alone', () => expect(planned(observed('running'))).toEqual([]));

  it("replaces the boot (never the VM) of a node whose machine stopped, paused or was stopped with its state: its disk is kept", () => {
    expect(planned(observed('stopped'))).toEqual([['terraform_data.boot-cni-worker1', 'its machine is not running (it crashed, was killed or the host restarted): it boots from its disk, files kept']]);
    expect(planned(observed('paused'))).toEqual([['terraform_data.boot-cni-worker1', 'it is paused: it is resumed']]);
    expect(planned(observed('stopped-with-state'))).toEqual([['terraform_data.boot-cni-worker1', 'stopped with its state saved (cluster stop): it resumes from it']]);
  });

  it('replaces the VM of a node whose disk is gone, or that has no record (taken down by hand)', () => {
    expect(planned(observed('absent'))).toEqual([['terraform_data.vm-cni-worker1', 'its disk is gone: it is made again from its box']]);
    expect(planned(observed('absent', false))).toEqual([['terraform_data.vm-cni-worker1', 'it was taken down outside terraform (node down): it is made again']]);
    expect(planned(observed('running', false))).toEqual([['terraform_data.vm-cni-worker1', 'its node record is gone: it is made again']]);
  });

  it('replaces the VM of a node whose restore failed, whatever its machine says (its memory and disk are undefined)', () => {
    expect(planned([{ name: 'cni-worker1', recorded: true, state: 'paused', restoreFailed: 'monday' }])).toEqual([['terraform_data.vm-cni-worker1', 'its restore of snapshot monday failed: it is made again from its box']]);
  });

  it('asks nothing for nodes terraform never made (it creates them anyway), and uses the stack\'s resource type', () => {
    expect(planned(observed('absent', false), new Set())).toEqual([]);
    expect(driftReplacements('null_resource', observed('stopped'), all).map((r) => r.address)).toEqual(['null_resource.boot-cni-worker1']);
  });
});

describe('summarizePlan with replacements requested', () => {
  const change = (name: string, reason?: string, hashAfter = 'h') => ({
    address: `terraform_data.${name}`,
    mode: 'managed',
    name,
    ...(reason ? { action_reason: reason } : {}),
    change: { actions: ['delete', 'create'], before: { triggers_replace: { vm: 'id', config_hash: 'h' } }, after: { triggers_replace: { vm: 'id', config_hash: hashAfter } } },
  });
  const requested = (node: string) => ({ [`terraform_data.config-${node}`]: 'runs configuration aaa (restored from snapshot monday), not the current ccc' });

  it("gives boxcar's reason where terraform replaces on request, and terraform's own otherwise", () => {
    const plan: TerraformPlanJson = { resource_changes: [change('config-cni-worker1', 'replace_by_request'), change('config-cni-worker2')] };
    const rows = summarizePlan(plan, requested('cni-worker1'));
    expect(rows.map((row) => [row.node, row.configuration, row.reasons])).toEqual([
      ['cni-worker1', 'replace', ['runs configuration aaa (restored from snapshot monday), not the current ccc']],
      ['cni-worker2', 'replace', ['terraform says so']],
    ]);
  });

  it('keeps to the triggers where they already say why', () => {
    const rows = summarizePlan({ resource_changes: [change('config-cni-worker1', 'replace_by_request', 'new')] }, requested('cni-worker1'));
    expect(rows.map((row) => row.reasons)).toEqual([['configuration changed']]);
  });
});
