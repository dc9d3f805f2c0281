import { describe, expect, it } from 'vitest';
import { summarizePlan, type TerraformPlanJson } from './plan-summary.ts';
import { configReplacements, replaceArgs } from './replacements.ts';

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
