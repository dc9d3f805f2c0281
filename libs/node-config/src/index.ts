// The public API of @boxcar/node-config; what is not named here is private to the library.

// A node's final configuration as a plan of files and commands, and applying it idempotently.
export { planNode } from './plan.ts';
// Run on the master by cluster up once its node is registered (no step of a plan can wait for that cheaply).
export { masterRoleArgs } from './render/kubernetes-units.ts';
export { applyPlan } from './apply.ts';
export type { NodePlan } from './types.ts';

// The cluster PKI on the host, and each node's certificates from it.
export { adminCredentialFiles, ensureClusterPki, readKubernetesPems, readNodeCertificates } from './certificates.ts';

// The repository's cni/ files as plan input.
export { readCniDir } from './cni-files.ts';
