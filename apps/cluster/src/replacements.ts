import type { TerraformResourceType } from '@boxcar/model';
import { BOOT_PREFIX, CONFIG_PREFIX, VM_PREFIX, type NodeInputs } from './stack.ts';

// Terraform only knows what it applied: a node restored from a snapshot runs the configuration of that
// moment, a node whose machine crashed runs nothing, a node taken down by hand is gone, while terraform's
// state still holds what it made, so its plan would keep them. The node records and the providers know
// better: those resources are replaced on request (`-replace=`), and terraform stays the one engine.

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

/** What cluster up saw of a node before planning: its record, and its machine as the provider reports it. */
export interface ObservedNode {
  name: string;
  /** It has a node record (.cluster/<name>/nodes/<node>.json): boxcar brought it up and did not take it down. */
  recorded: boolean;
  /** Its machine: running, paused, stopped-with-state, stopped (disk kept) or absent (nothing left). */
  state: 'running' | 'paused' | 'stopped-with-state' | 'stopped' | 'absent';
  /** The snapshot whose restore failed on it (its memory and disk are undefined): it is made again. */
  restoreFailed?: string;
}

/**
 * The resources to replace so that every node terraform made runs again as configured, whatever happened
 * to it since: a machine that stopped but whose disk is there gets its boot replaced (it starts from that
 * disk, its files kept); a node whose disk is gone, or that was taken down by hand, gets its VM replaced
 * (made again from its box). `made`: the node names whose VM terraform's state holds (the others it
 * creates anyway).
 */
export function driftReplacements(type: TerraformResourceType, observed: ObservedNode[], made: ReadonlySet<string>): ConfigReplacement[] {
  return observed.flatMap((node): ConfigReplacement[] => {
    if (!made.has(node.name)) return [];
    const vm = (reason: string) => [{ node: node.name, address: `${type}.${VM_PREFIX}${node.name}`, reason }];
    const boot = (reason: string) => [{ node: node.name, address: `${type}.${BOOT_PREFIX}${node.name}`, reason }];
    if (!node.recorded) return vm(node.state === 'absent' ? 'it was taken down outside terraform (node down): it is made again' : 'its node record is gone: it is made again');
    if (node.restoreFailed !== undefined) return vm(`its restore of snapshot ${node.restoreFailed} failed: it is made again from its box`);
    switch (node.state) {
      case 'running':
        return [];
      case 'paused':
        return boot('it is paused: it is resumed');
      case 'stopped-with-state':
        return boot('stopped with its state saved (cluster stop): it resumes from it');
      case 'stopped':
        return boot('its machine is not running (it crashed, was killed or the host restarted): it boots from its disk, files kept');
      case 'absent':
        return vm('its disk is gone: it is made again from its box');
    }
  });
}

/** The plan arguments that request those replacements. */
export function replaceArgs(replacements: ConfigReplacement[]): string[] {
  return replacements.map((replacement) => `-replace=${replacement.address}`);
}
