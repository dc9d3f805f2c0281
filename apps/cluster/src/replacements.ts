import type { TerraformResourceType } from '@boxcar/model';
import { CONFIG_PREFIX, type NodeInputs } from './stack.ts';

// Terraform only knows what it applied: a node restored from a snapshot runs the configuration of that
// moment while terraform's state still holds the current one, so the plan would keep it. The node
// records know better; their configuration resources are replaced on request (`-replace=`).

export interface RecordedConfiguration {
  /** The hash of the configuration the node runs, as its record says. */
  configHash?: string;
  /** The snapshot it was restored from, if any (for the reason shown). */
  snapshot?: string;
}

export interface ConfigReplacement {
  node: string;
  /** Terraform's address of the node's configuration resource. */
  address: string;
  reason: string;
}

/** The configuration resources to replace: nodes whose recorded configuration is not the one the stack now has. */
export function configReplacements(type: TerraformResourceType, nodes: NodeInputs[], recorded: Record<string, RecordedConfiguration | undefined>): ConfigReplacement[] {
  return nodes.flatMap((node) => {
    const record = recorded[node.name];
    // Never configured: terraform creates its configuration anyway.
    if (!record?.configHash || record.configHash === node.configHash) return [];
    const from = record.snapshot ? ` (restored from snapshot ${record.snapshot})` : '';
    return [{ node: node.name, address: `${type}.${CONFIG_PREFIX}${node.name}`, reason: `runs configuration ${record.configHash.slice(0, 12)}${from}, not the current ${node.configHash.slice(0, 12)}` }];
  });
}

/** The plan arguments that request those replacements. */
export function replaceArgs(replacements: ConfigReplacement[]): string[] {
  return replacements.map((replacement) => `-replace=${replacement.address}`);
}
