import type { Cluster, ClusterNode } from './types.ts';
import { ActionableError } from '@boxcar/kit';

/** The named node of the cluster; an error that lists the cluster's nodes when there is none. */
export function findNode(cluster: Cluster, name: string): ClusterNode {
  const node = cluster.nodes.find((candidate) => candidate.name === name);
  if (!node) throw new ActionableError(`cluster ${cluster.name} has no node "${name}"; nodes: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  return node;
}

/** A node's name: a hostname label, the cluster config schema's nodes[].name pattern (a test holds them equal). */
export const NODE_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The name when it can be a node's: a name from the command line names files and directories of the
 * cluster's state (`node down ../../x` must not reach outside it), so it is held to the config's rule.
 */
export function checkNodeName(name: string): string {
  if (!NODE_NAME_PATTERN.test(name)) throw new Error(`node name ${JSON.stringify(name)}: lowercase letters, digits and '-', not starting or ending with '-', at most 63 characters`);
  return name;
}
