export type { ApplyResult, CniFile, Exec, NodeCertificates, NodePlan, PlanFile, PlanInputs, Step, StepEvent } from './types.ts';
export { planNode } from './plan.ts';
export { applyPlan, type ApplyOptions } from './apply.ts';
export { ensureClusterPki, readNodeCertificates, certificateSpecs, type CertPair, type CertificateSpec, type ClusterPki } from './certificates.ts';
export { readCniDir } from './cni-files.ts';
export { GUEST, SSL_FILES } from './guest-layout.ts';
export { kubernetesImages } from './render/kubernetes.ts';
export { calicoEtcd } from './render/calico.ts';
