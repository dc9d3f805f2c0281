// The public API of @boxcar/nodes: the per-node steps the cluster stack's provisioners call, and what
// the CLI reads about a cluster. What is not named here is private to the library.

// The steps: boot from the store's box, configure over SSH, take down; and the whole cluster's state.
export {
  clusterStatus,
  departedNodes,
  nodeConfigure,
  nodeContext,
  nodeDown,
  nodeMachines,
  nodesOnOtherProviders,
  nodeUp,
  providerCleanup,
  type ConfigureResult,
  type NodeContext,
  type NodeStatus,
} from './runtime.ts';

// What the stack's triggers are made of: each node's box and the hash of its final configuration.
export { clusterSshKey, nodeBox, nodeSshTarget, planFor, planHash, type NodeBox } from './runtime.ts';

// Where a profile runs Kubernetes as the lab does: the host's kubeconfig (the master's forwarded port),
// cluster up's wait until every node is Ready, and its care of the master's label and of departed nodes.
export { writeKubeconfig } from './kubeconfig.ts';
export { forgetKubernetesNode, KubernetesNotReadyError, labelMasterNode, waitForKubernetes } from './kube-ready.ts';

// A node's machine running from its own disk again, whatever stopped it (the stack's boot resource).
export { NodeDiskGoneError, nodeStart, type NodeStartResult } from './node-start.ts';

// Host-side state under .cluster/<name>/: paths and the record of each node that is up.
export { checkStateOwnership, clusterPaths, DEFAULT_STATE_ROOT, readNodeRecord, writeNodeRecord, type ClusterPaths, type NodeRecord } from './state.ts';

// Whole-cluster snapshots (every node paused, saved or restored, resumed together) and stop/start
// with the running state kept; what each snapshot was taken from, under .cluster/<name>/snapshots/.
export {
  clusterStart,
  clusterStop,
  dropSnapshotRecords,
  readSnapshotRecords,
  restoreProblem,
  snapshotDelete,
  snapshotList,
  snapshotRestore,
  snapshotSave,
  type ClusterVerbResult,
  type NodeOutcome,
  type SnapshotRecord,
  type SnapshotResult,
  type SnapshotSummary,
} from './snapshots.ts';
