import { CONFIG_PREFIX, VM_PREFIX } from './stack.ts';

// What a user wants to know before a morning `up`, read from terraform's own plan
// (`terraform show -json <planfile>`): per node, is its VM and its configuration created, replaced,
// kept or destroyed, and why. Nothing here recomputes what terraform decided.

export type PlannedAction = 'create' | 'replace' | 'update' | 'delete' | 'keep';

export interface PlannedChange {
  /** Terraform's address, e.g. `terraform_data.vm-cni-worker1`. */
  address: string;
  node: string;
  part: 'vm' | 'configuration';
  action: PlannedAction;
  reasons: string[];
}

export interface NodePlanSummary {
  node: string;
  vm: PlannedAction | 'absent';
  configuration: PlannedAction | 'absent';
  reasons: string[];
}

interface ResourceChange {
  address: string;
  mode: string;
  name: string;
  /** e.g. `replace_by_request` for a `-replace=` of the plan. */
  action_reason?: string;
  change: {
    actions: string[];
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
    after_unknown?: Record<string, unknown>;
  };
}

export interface TerraformPlanJson {
  resource_changes?: ResourceChange[];
}

function actionOf(actions: string[]): PlannedAction {
  const set = [...actions].sort().join(',');
  if (set === 'no-op' || set === 'read') return 'keep';
  if (set === 'create') return 'create';
  if (set === 'delete') return 'delete';
  if (set === 'create,delete') return 'replace';
  if (set === 'update') return 'update';
  throw new Error(`terraform plan: unknown actions ${JSON.stringify(actions)}`);
}

/** The triggers of either resource type: `triggers_replace` (terraform_data) or `triggers` (null_resource). */
function triggersOf(values: Record<string, unknown> | null | undefined): Record<string, unknown> {
  const triggers = values?.triggers_replace ?? values?.triggers;
  return triggers && typeof triggers === 'object' ? (triggers as Record<string, unknown>) : {};
}

function reasonsFor(part: PlannedChange['part'], action: PlannedAction, change: ResourceChange['change'], requested?: string): string[] {
  if (action === 'create') return [part === 'vm' ? 'not running yet' : 'not configured yet'];
  if (action === 'delete') return ['left the configuration'];
  if (action === 'keep') return [];
  const byRequest = requested ? [requested] : [];
  const before = triggersOf(change.before);
  const after = triggersOf(change.after);
  const unknown = triggersOf(change.after_unknown);
  const reasons: string[] = [];
  const changed = (key: string) => unknown[key] === true || JSON.stringify(before[key]) !== JSON.stringify(after[key]);
  if (changed('box_version')) reasons.push(`box ${before.box_version ?? '?'} -> ${after.box_version ?? '?'}`);
  else if (changed('box_content_key')) reasons.push('box content changed');
  if (changed('provider')) reasons.push(`provider ${before.provider ?? '?'} -> ${after.provider ?? '?'}`);
  if (changed('config_hash')) reasons.push('configuration changed');
  if (changed('vm')) reasons.push('its VM is replaced');
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const key of keys) {
    if (!['box_version', 'box_content_key', 'provider', 'config_hash', 'vm'].includes(key) && changed(key)) reasons.push(`${key} changed`);
  }
  // Boxcar's own reason for a replacement it requested only where the triggers do not already say why.
  if (!reasons.length) reasons.push(...byRequest);
  return reasons.length ? reasons : ['terraform says so'];
}

/**
 * Every change to the stack's node resources, in terraform's order. `requested`: why boxcar asked for
 * the replacement of an address (`-replace=`), shown where terraform's plan says it replaces it on request.
 */
export function plannedChanges(plan: TerraformPlanJson, requested: Record<string, string> = {}): PlannedChange[] {
  return (plan.resource_changes ?? [])
    .filter((resource) => resource.mode === 'managed')
    .flatMap((resource) => {
      const part = resource.name.startsWith(VM_PREFIX) ? 'vm' : resource.name.startsWith(CONFIG_PREFIX) ? 'configuration' : undefined;
      if (!part) return [];
      const node = resource.name.slice(part === 'vm' ? VM_PREFIX.length : CONFIG_PREFIX.length);
      const action = actionOf(resource.change.actions);
      const why = resource.action_reason === 'replace_by_request' ? requested[resource.address] : undefined;
      return [{ address: resource.address, node, part, action, reasons: reasonsFor(part, action, resource.change, why) }];
    });
}

/** One row per node: what happens to its VM and to its configuration, and why. */
export function summarizePlan(plan: TerraformPlanJson, requested: Record<string, string> = {}): NodePlanSummary[] {
  const byNode = new Map<string, NodePlanSummary>();
  // A node's VM first: its reasons come before those of its configuration.
  const changes = plannedChanges(plan, requested).sort((a, b) => (a.part === b.part ? 0 : a.part === 'vm' ? -1 : 1));
  for (const change of changes) {
    const row = byNode.get(change.node) ?? { node: change.node, vm: 'absent', configuration: 'absent', reasons: [] };
    row[change.part] = change.action;
    for (const reason of change.reasons) if (!row.reasons.includes(reason)) row.reasons.push(reason);
    byNode.set(change.node, row);
  }
  return [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node));
}

/** True when applying the plan would change nothing. */
export function planIsEmpty(plan: TerraformPlanJson): boolean {
  return plannedChanges(plan).every((change) => change.action === 'keep');
}
