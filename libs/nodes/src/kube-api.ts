import { setTimeout as sleep } from 'node:timers/promises';
import { httpGetText, HttpStatusError } from '@boxcar/kit';

// A small client of the cluster's Kubernetes API, from the host: GET /api/v1/nodes over https through the
// port the master's provider forwards on 127.0.0.1, with the cluster CA and the admin client certificate.
// No kubectl on the host. Each request has a short deadline, and a failed one is retried a bounded number
// of times (connection errors and 5xx; an answer that refuses the certificate is final).

/** How to reach and authenticate to the API server. */
export interface KubeApiAccess {
  /** e.g. https://127.0.0.1:41234 */
  server: string;
  /** The cluster CA (PEM): the only authority trusted for the server's certificate. */
  ca: string | Buffer;
  /** The admin client certificate and key (PEM). */
  clientCert: { cert: string | Buffer; key: string | Buffer };
}

export interface KubeRequestOptions {
  /** Deadline of one attempt, connection and body included; default 20 s (a node list under emulation is slow). */
  timeoutMs?: number;
  /** Attempts in all; default 3. */
  attempts?: number;
  /** Pause between attempts; default 1 s. */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

/** What the API says of one node. */
export interface KubeNode {
  name: string;
  /** The node's Ready condition is True. */
  ready: boolean;
  /** The Ready condition as reported, when there is one. */
  readyCondition?: { status: string; reason?: string; message?: string };
  /** status.nodeInfo.kubeletVersion, e.g. v1.20.2. */
  kubeletVersion?: string;
}

/** Per node of the cluster: registered with the API, Ready, and why not. */
export interface NodeReadiness {
  name: string;
  registered: boolean;
  ready: boolean;
  kubeletVersion?: string;
  /** Why the node is not Ready (absent when it is). */
  reason?: string;
}

/** The API could not be asked, or refused to answer; names the server. */
export class KubeApiError extends Error {
  constructor(
    readonly server: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

const NODE_LIST_MAX_BYTES = 16 * 1024 * 1024;

/** GET /api/v1/nodes: every node the API server knows. */
export async function listKubeNodes(access: KubeApiAccess, options: KubeRequestOptions = {}): Promise<KubeNode[]> {
  const body = await kubeGet(access, '/api/v1/nodes', options);
  try {
    return parseNodeList(JSON.parse(body));
  } catch (error) {
    throw new KubeApiError(access.server, `the Kubernetes API at ${access.server} answered GET /api/v1/nodes with no node list: ${(error as Error).message}`);
  }
}

/** GET of an API path, retried on what may pass (no answer, 5xx), not on a refusal or a missing resource. */
async function kubeGet(access: KubeApiAccess, path: string, options: KubeRequestOptions): Promise<string> {
  const url = `${access.server.replace(/\/+$/, '')}${path}`;
  const attempts = Math.max(1, options.attempts ?? 3);
  // Under software emulation the apiserver may take seconds to send a node list.
  const timeoutMs = options.timeoutMs ?? 20_000;
  let last: KubeApiError | undefined;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      return await httpGetText(url, {
        ca: access.ca,
        clientCert: access.clientCert,
        deadlineMs: timeoutMs,
        idleTimeoutMs: timeoutMs,
        maxBytes: NODE_LIST_MAX_BYTES,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      options.signal?.throwIfAborted();
      last = explain(access.server, error);
      if (last.status !== undefined && last.status < 500) throw last;
      if (attempt < attempts) await sleep(options.retryDelayMs ?? 1_000, undefined, options.signal ? { signal: options.signal } : {});
    }
  }
  throw last!;
}

function explain(server: string, error: unknown): KubeApiError {
  if (error instanceof HttpStatusError) {
    const why =
      error.status === 401 ? ': it did not accept the admin client certificate' : error.status === 403 ? ': the admin client certificate may not list nodes (is it in system:masters?)' : '';
    return new KubeApiError(server, `the Kubernetes API at ${server} answered HTTP ${error.status}${error.statusText ? ` ${error.statusText}` : ''}${why}`, error.status);
  }
  const code = (error as NodeJS.ErrnoException).code;
  return new KubeApiError(server, `the Kubernetes API at ${server} could not be reached: ${(error as Error).message}${code && !(error as Error).message.includes(code) ? ` (${code})` : ''}`);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A NodeList (v1) as the API returns it. */
export function parseNodeList(list: unknown): KubeNode[] {
  if (!isObject(list) || list.kind !== 'NodeList' || !Array.isArray(list.items)) throw new Error('expected {"kind": "NodeList", "items": [...]}');
  return list.items.map((item, index) => {
    const name = isObject(item) && isObject(item.metadata) ? item.metadata.name : undefined;
    if (typeof name !== 'string' || !name) throw new Error(`items[${index}] has no metadata.name`);
    const status = isObject(item) && isObject(item.status) ? item.status : {};
    const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isObject) : [];
    const readyCondition = conditions.find((condition) => condition.type === 'Ready');
    const kubeletVersion = isObject(status.nodeInfo) && typeof status.nodeInfo.kubeletVersion === 'string' ? status.nodeInfo.kubeletVersion : undefined;
    const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
    return {
      name,
      ready: readyCondition?.status === 'True',
      ...(readyCondition
        ? {
            readyCondition: {
              status: String(readyCondition.status),
              ...(text(readyCondition.reason) ? { reason: text(readyCondition.reason)! } : {}),
              ...(text(readyCondition.message) ? { message: text(readyCondition.message)! } : {}),
            },
          }
        : {}),
      ...(kubeletVersion ? { kubeletVersion } : {}),
    };
  });
}

/** Each of `names` as the API sees it: not registered, registered but not Ready (and why), or Ready. */
export function nodeReadiness(names: readonly string[], listed: readonly KubeNode[]): NodeReadiness[] {
  return names.map((name) => {
    const node = listed.find((candidate) => candidate.name === name);
    if (!node) return { name, registered: false, ready: false, reason: 'not registered with the API server' };
    const version = node.kubeletVersion ? { kubeletVersion: node.kubeletVersion } : {};
    if (node.ready) return { name, registered: true, ready: true, ...version };
    const condition = node.readyCondition;
    const reason = condition
      ? `Ready ${condition.status}${condition.reason ? `: ${condition.reason}` : ''}${condition.message ? ` (${condition.message})` : ''}`
      : 'registered, no Ready condition yet';
    return { name, registered: true, ready: false, ...version, reason };
  });
}
