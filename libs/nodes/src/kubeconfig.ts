import { readFile } from 'node:fs/promises';
import { atomicWriteFile } from '@boxcar/kit';
import { adminCredentialFiles } from '@boxcar/node-config';
import { listKubeNodes, nodeReadiness, type KubeApiAccess, type KubeRequestOptions, type NodeReadiness } from './kube-api.ts';
import type { NodeContext, NodeStatus } from './runtime.ts';
import { readNodeRecord } from './state.ts';

// The host's way into the cluster's Kubernetes API (profiles that run Kubernetes as the lab does,
// `cluster.kubernetes`): the port the master's provider forwards on 127.0.0.1 (its node record), the
// cluster CA and the admin client certificate of the cluster PKI, and the kubeconfig made of them.

/** The API server's address and credentials, or why there are none yet. */
export type KubeApiAccessResult = { access: KubeApiAccess } | { problem: string };

/** How the host reaches the cluster's Kubernetes API now; a `problem` when the profile runs none or the master is not up with its API forwarded. */
export async function kubeApiAccess(context: NodeContext): Promise<KubeApiAccessResult> {
  const { cluster, paths } = context;
  if (!cluster.kubernetes) return { problem: `profile ${cluster.profile.name} runs no Kubernetes the host can reach` };
  const master = cluster.master.name;
  const record = await readNodeRecord(paths, master);
  if (!record) return { problem: `the master ${master} is not up` };
  if (!record.api) {
    return { problem: `the master ${master} has no Kubernetes API port on 127.0.0.1 (it was brought up without one): take it down and up again` };
  }
  // Read as cluster up left them: a status must neither make nor renew certificates (ensureClusterPki does).
  const files = adminCredentialFiles(paths.pki);
  let pems: Buffer[];
  try {
    pems = await Promise.all([readFile(files.ca), readFile(files.cert), readFile(files.key)]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return { problem: `the cluster PKI has no admin certificate in ${paths.pki} (cluster up makes it)` };
  }
  const [ca, cert, key] = pems as [Buffer, Buffer, Buffer];
  return { access: { server: `https://${record.api.host}:${record.api.port}`, ca, clientCert: { cert, key } } };
}

/** A kubeconfig (YAML: block style, every string JSON-quoted) whose cluster, context and user are named `name`. */
export function kubeconfigYaml(name: string, access: KubeApiAccess): string {
  const base64 = (pem: string | Buffer) => Buffer.from(pem).toString('base64');
  const q = (value: string) => JSON.stringify(value);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${q(name)}`,
    '  cluster:',
    `    server: ${q(access.server)}`,
    `    certificate-authority-data: ${q(base64(access.ca))}`,
    'users:',
    `- name: ${q(name)}`,
    '  user:',
    `    client-certificate-data: ${q(base64(access.clientCert.cert))}`,
    `    client-key-data: ${q(base64(access.clientCert.key))}`,
    'contexts:',
    `- name: ${q(name)}`,
    '  context:',
    `    cluster: ${q(name)}`,
    `    user: ${q(name)}`,
    `current-context: ${q(name)}`,
    'preferences: {}',
    '',
  ].join('\n');
}

/**
 * Writes .cluster/<name>/kubeconfig (mode 600: it holds the admin's key) for the API through the master's
 * forwarded port; its path and the server it names, or the problem when there is no API to point at (see kubeApiAccess).
 */
export async function writeKubeconfig(context: NodeContext): Promise<{ path: string; server: string } | { problem: string }> {
  const found = await kubeApiAccess(context);
  if ('problem' in found) return found;
  await atomicWriteFile(context.paths.kubeconfig, kubeconfigYaml(context.cluster.name, found.access), { mode: 0o600 });
  return { path: context.paths.kubeconfig, server: found.access.server };
}

/** Every node of the configuration as the Kubernetes API sees it now, or why the API could not tell; never rejects. */
export async function kubernetesReadiness(context: NodeContext, options: KubeRequestOptions = {}): Promise<{ nodes: NodeReadiness[] } | { problem: string }> {
  try {
    const found = await kubeApiAccess(context);
    if ('problem' in found) return found;
    const listed = await listKubeNodes(found.access, options);
    return { nodes: nodeReadiness(context.cluster.nodes.map((node) => node.name), listed) };
  } catch (error) {
    return { problem: (error as Error).message };
  }
}

/**
 * The nodes' status with what the API says: `ready` (null while the API cannot tell, the reason then in the
 * detail of each running node: one that does not run already says why) and each node's kubelet version.
 */
export function withReadiness(statuses: NodeStatus[], readiness: { nodes: NodeReadiness[] } | { problem: string }): NodeStatus[] {
  return statuses.map((status) => {
    const join = (reason: string) => (status.detail ? `${status.detail}; ${reason}` : reason);
    if ('problem' in readiness) return status.state === 'running' ? { ...status, ready: null, detail: join(`Kubernetes: ${readiness.problem}`) } : { ...status, ready: null };
    const node = readiness.nodes.find((candidate) => candidate.name === status.name);
    if (!node) return { ...status, ready: null };
    return {
      ...status,
      ready: node.ready,
      ...(node.kubeletVersion ? { kubeletVersion: node.kubeletVersion } : {}),
      ...(node.ready ? {} : { detail: join(`Kubernetes: ${node.reason ?? 'not Ready'}`) }),
    };
  });
}
