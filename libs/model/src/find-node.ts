import type { Cluster, ClusterNode } from './types.ts';

/** The named node of the cluster; an error that lists the cluster's nodes when there is none. */
export function findNode(cluster: Cluster, name: string): ClusterNode {
  const node = cluster.nodes.find((candidate) => candidate.name === name);
  if (!node) throw new Error(`cluster ${cluster.name} has no node "${name}"; nodes: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  return node;
}
