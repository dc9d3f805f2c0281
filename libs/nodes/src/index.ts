// The public API of @boxcar/nodes: the per-node steps the cluster stack's provisioners call, and what
// the CLI reads about a cluster. What is not named here is private to the library.

// The steps: boot from the store's box, configure over SSH, take down; and the whole cluster's state.
export {
  clusterStatus,
  departedNodes,
  nodeConfigure,
  nodeContext,
  nodeDown,
  nodesOnOtherProviders,
  nodeUp,
  providerCleanup,
  type ConfigureResult,
  type NodeContext,
  type NodeStatus,
} from './runtime.ts';

// What the stack's triggers are made of: each node's box and the hash of its final configuration.
export { clusterSshKey, nodeBox, nodeSshTarget, planFor, planHash, type NodeBox } from './runtime.ts';

// The cluster's Kubernetes API from the host (profiles that run Kubernetes as the lab does): a small
// client of GET /api/v1/nodes through the master's forwarded port, the host's kubeconfig, and the wait
// of cluster up until every node is Ready.
export { KubeApiError, listKubeNodes, nodeReadiness, parseNodeList, type KubeApiAccess, type KubeNode, type KubeRequestOptions, type NodeReadiness } from './kube-api.ts';
export { kubeApiAccess, kubeconfigYaml, kubernetesReadiness, withReadiness, writeKubeconfig, type KubeApiAccessResult } from './kubeconfig.ts';
export { forgetKubernetesNode, JOURNAL_LINES, kubeletJournal, labelMasterNode, KubernetesNotReadyError, waitForKubernetes, waitForNodesReady, type Clock, type ReadyWaitOptions } from './kube-ready.ts';

// Host-side state under .cluster/<name>/: paths and the record of each node that is up.
export { clusterPaths, readNodeRecord, stateRoot, writeNodeRecord, type ClusterPaths, type NodeRecord } from './state.ts';

// Whole-cluster snapshots (every node paused, saved or restored, resumed together) and stop/start
// with the running state kept; what each snapshot was taken from, under .cluster/<name>/snapshots/.
export {
  clusterStart,
  clusterStop,
  dropSnapshotRecords,
  nodesStoppedWithState,
  readSnapshotRecords,
  restoreProblem,
  snapshotDelete,
  snapshotList,
  snapshotRestore,
  snapshotSave,
  type SnapshotRecord,
  type SnapshotResult,
  type SnapshotSummary,
} from './snapshots.ts';
