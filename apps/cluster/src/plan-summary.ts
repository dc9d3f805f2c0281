import { BOOT_PREFIX, CONFIG_PREFIX, VM_PREFIX } from './stack.ts';

// What a user wants to know before a morning `up`, read from terraform's own plan
// (`terraform show -json <planfile>`): per node, is its VM (disk and first boot), its boot (its machine
// running from that disk) and its configuration created, replaced, kept or destroyed, and why. Nothing here recomputes what terraform decided.

export type PlannedAction = 'create' | 'replace' | 'update' | 'delete' | 'keep';

export interface PlannedChange {
  /** Terraform's address, e.g. `terraform_data.vm-cni-worker1`. */
  address: string;
  node: string;
  part: 'vm' | 'boot' | 'configuration';
  action: PlannedAction;
  reasons: string[];
}

export interface NodePlanSummary {
  node: string;
  vm: PlannedAction | 'absent';
  boot: PlannedAction | 'absent';
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
  if (action === 'create') return [{ vm: 'not running yet', boot: 'its machine is started', configuration: 'not configured yet' }[part]];
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
  if (changed('boot')) reasons.push('its machine starts anew');
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const key of keys) {
    if (!['box_version', 'box_content_key', 'provider', 'config_hash', 'vm', 'boot'].includes(key) && changed(key)) reasons.push(`${key} changed`);
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
      const prefix = ([['vm', VM_PREFIX], ['boot', BOOT_PREFIX], ['configuration', CONFIG_PREFIX]] as const).find(([, candidate]) => resource.name.startsWith(candidate));
      if (!prefix) return [];
      const [part, name] = prefix;
      const node = resource.name.slice(name.length);
      const action = actionOf(resource.change.actions);
      const why = resource.action_reason === 'replace_by_request' ? requested[resource.address] : undefined;
      return [{ address: resource.address, node, part, action, reasons: reasonsFor(part, action, resource.change, why) }];
    });
}

/** One row per node: what happens to its VM and to its configuration, and why. */
export function summarizePlan(plan: TerraformPlanJson, requested: Record<string, string> = {}): NodePlanSummary[] {
  const byNode = new Map<string, NodePlanSummary>();
  // A node's VM first, then its boot: their reasons come before those of its configuration.
  const rank = { vm: 0, boot: 1, configuration: 2 } as const;
  const changes = plannedChanges(plan, requested).sort((a, b) => rank[a.part] - rank[b.part]);
  for (const change of changes) {
    const row = byNode.get(change.node) ?? { node: change.node, vm: 'absent', boot: 'absent', configuration: 'absent', reasons: [] };
    row[change.part] = change.action;
    // A VM made or replaced starts its machine: the boot's own reason would only repeat it.
    const vmNew = row.vm === 'create' || row.vm === 'replace';
    if (!(change.part === 'boot' && vmNew)) for (const reason of change.reasons) if (!row.reasons.includes(reason)) row.reasons.push(reason);
    byNode.set(change.node, row);
  }
  return [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node));
}

/** True when applying the plan would change nothing. */
export function planIsEmpty(plan: TerraformPlanJson): boolean {
  return plannedChanges(plan).every((change) => change.action === 'keep');
}
