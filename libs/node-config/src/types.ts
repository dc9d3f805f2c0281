// A node plan is data: what the final configuration of one booted node consists of. `applyPlan` turns it
// into remote commands; nothing here knows how commands reach the node (SSH in the product, a chroot in tests).

export interface PlanFile {
  /** Absolute path on the node. */
  path: string;
  content: string | Uint8Array;
  /** Octal permission bits, e.g. '0644'. */
  mode: string;
  /** `user:group`; root:root when absent. */
  owner?: string;
  /** Private key material: callers must not print `content`. */
  secret?: boolean;
}

export interface Step {
  /** Unique within a plan: 'hostname', 'cluster-ip', 'etcd', ... */
  id: string;
  description: string;
  files: PlanFile[];
  /** Bash snippets run as root after the files are in place, in order; each one is idempotent. */
  commands: string[];
  /** Run `commands` only when a file of this step changed (or a previous run changed it but failed before its commands finished). */
  onlyIfChanged?: boolean;
}

export interface NodePlan {
  node: string;
  steps: Step[];
}

/** One file of the repository's cni/conf or cni/bin folder, passed in as data. */
export interface CniFile {
  name: string;
  content: string | Uint8Array;
  /** Octal permission bits, e.g. '0755'. */
  mode: string;
}

/** PEM texts for one node: the CA certificate and the node's own certificate and private key. */
export interface NodeCertificates {
  ca: string;
  cert: string;
  key: string;
}

/** PEM texts of one identity: its certificate (for the service-account pair, the public key) and private key. */
export interface PemPair {
  cert: string;
  key: string;
}

/** PEM texts one node of the lab's Kubernetes (cluster.kubernetes) needs, from the host's cluster PKI. */
export interface KubernetesPems {
  ca: string;
  /** system:node:<name> in system:nodes: the kubelet's client identity and its serving certificate. */
  kubelet: PemPair;
  /** system:kube-proxy, the same on every node. */
  proxy: PemPair;
  /** The control plane's, given to the master only. */
  master?: {
    apiserver: PemPair;
    /** system:masters: kubectl's, and the apiserver's client identity towards the kubelets. */
    admin: PemPair;
    controllerManager: PemPair;
    scheduler: PemPair;
    /** Signs (controller-manager) and checks (apiserver) service-account tokens; `cert` holds the public key. */
    serviceAccount: PemPair;
  };
}

/** What a node plan needs from the host, beyond the cluster model. */
export interface PlanInputs {
  /** OpenSSH public key line of the per-cluster key that replaces the bootstrap key. */
  clusterPublicKey: string;
  /** Required when the profile runs the 2016 Kubernetes: apiserver pair for the master, the node's pair for a worker. */
  certificates?: NodeCertificates;
  /** Required instead of `certificates` where the cluster runs the lab's Kubernetes (cluster.kubernetes). */
  kubernetes?: KubernetesPems;
  cni: { conf: CniFile[]; bin: CniFile[] };
}

/**
 * Runs `command` with bash as root on the node, `input` on stdin. Resolves with its stdout when it exits 0,
 * rejects otherwise (an execa result satisfies the resolved type).
 */
export type Exec = (command: string, input?: string | Uint8Array) => Promise<{ stdout: string }>;

export type StepEvent =
  | { phase: 'start'; step: Step }
  | { phase: 'done'; step: Step; changedFiles: string[]; ranCommands: string[] };

export interface ApplyResult {
  changedFiles: string[];
  ranCommands: string[];
}
