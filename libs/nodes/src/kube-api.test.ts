import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubeApiError, listKubeNodes, nodeReadiness, parseNodeList, type KubeApiAccess } from './kube-api.ts';
import { makeTestPki, nodeList, startApiServer, type TestApiServer, type TestPki } from './testing/api-server.ts';

// The Kubernetes API client against a real https server on 127.0.0.1 that, like kube-apiserver, requires a
// client certificate of the cluster CA; throwaway certificates made by openssl.

let dir: string;
let pki: TestPki;
const servers: TestApiServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-kube-api-'));
  pki = await makeTestPki(dir);
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function serve(handler: Parameters<typeof startApiServer>[1]): Promise<TestApiServer> {
  const server = await startApiServer({ server: pki.server, clientCa: pki.ca.cert }, handler);
  servers.push(server);
  return server;
}

const access = (server: TestApiServer, client = pki.admin, ca = pki.ca.cert): KubeApiAccess => ({ server: server.server, ca, clientCert: client });
const CLUSTER = ['cni-master1', 'cni-worker1', 'cni-worker2'];

describe('listKubeNodes and nodeReadiness', () => {
  it('reads Ready, not Ready (with the reason) and unregistered nodes, and their kubelet versions', async () => {
    const server = await serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        nodeList([
          { name: 'cni-master1', ready: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', kubeletVersion: 'v1.20.2' },
          { name: 'cni-worker1', ready: 'False', reason: 'KubeletNotReady', message: 'container runtime network not ready', kubeletVersion: 'v1.20.2-boxcar' },
          // A node of another cluster (or renamed) is listed but not asked about.
          { name: 'stranger', ready: 'True', kubeletVersion: 'v1.19.0' },
        ]),
      ),
    );
    const listed = await listKubeNodes(access(server));
    expect(listed.map((node) => [node.name, node.ready, node.kubeletVersion])).toEqual([
      ['cni-master1', true, 'v1.20.2'],
      ['cni-worker1', false, 'v1.20.2-boxcar'],
      ['stranger', true, 'v1.19.0'],
    ]);
    expect(nodeReadiness(CLUSTER, listed)).toEqual([
      { name: 'cni-master1', registered: true, ready: true, kubeletVersion: 'v1.20.2' },
      { name: 'cni-worker1', registered: true, ready: false, kubeletVersion: 'v1.20.2-boxcar', reason: 'Ready False: KubeletNotReady (container runtime network not ready)' },
      { name: 'cni-worker2', registered: false, ready: false, reason: 'not registered with the API server' },
    ]);
    // One GET of the node list, with the admin client certificate (its subject as the server verified it).
    expect(server.requests).toEqual([{ path: '/api/v1/nodes', client: { O: 'system:masters', CN: 'kube-admin' } }]);
  });

  it('counts only a Ready condition that is True: Unknown and a missing condition are not Ready', () => {
    const listed = parseNodeList(JSON.parse(nodeList([{ name: 'a', ready: 'Unknown', reason: 'NodeStatusUnknown' }, { name: 'b' }])));
    expect(nodeReadiness(['a', 'b'], listed)).toEqual([
      { name: 'a', registered: true, ready: false, reason: 'Ready Unknown: NodeStatusUnknown' },
      { name: 'b', registered: true, ready: false, reason: 'registered, no Ready condition yet' },
    ]);
    expect(() => parseNodeList({ kind: 'Status', status: 'Failure' })).toThrow('expected {"kind": "NodeList", "items": [...]}');
    expect(() => parseNodeList({ kind: 'NodeList', items: [{ metadata: {} }] })).toThrow('items[0] has no metadata.name');
  });

  it('is refused by a server that requires a client certificate of its CA when it presents another', async () => {
    const server = await serve((_req, res) => res.writeHead(200).end(nodeList([])));
    const error = await listKubeNodes(access(server, pki.rogueAdmin), { attempts: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as Error).message).toMatch(new RegExp(`^the Kubernetes API at ${server.server} could not be reached: `));
    // The handshake failed: no request reached the handler.
    expect(server.requests).toEqual([]);
    expect(server.refusedHandshakes()).toBe(1);
  });

  it('trusts only the cluster CA for the server', async () => {
    const server = await serve((_req, res) => res.writeHead(200).end(nodeList([])));
    await expect(listKubeNodes(access(server, pki.admin, pki.rogueCa.cert), { attempts: 1 })).rejects.toThrow(/could not be reached: .*(self-signed|unable to verify|unable to get local issuer)/i);
    expect(server.requests).toEqual([]);
  });

  it('does not retry an answer that refuses the certificate, and says what it means', async () => {
    const server = await serve((_req, res) => res.writeHead(401, 'Unauthorized').end('{"kind":"Status"}'));
    await expect(listKubeNodes(access(server), { attempts: 3, retryDelayMs: 10 })).rejects.toThrow(
      `the Kubernetes API at ${server.server} answered HTTP 401 Unauthorized: it did not accept the admin client certificate`,
    );
    expect(server.requests).toHaveLength(1);
  });

  it('retries a server error a bounded number of times', async () => {
    const flaky = await serve((_req, res, index) => (index < 2 ? res.writeHead(503).end() : res.writeHead(200).end(nodeList([{ name: 'cni-master1', ready: 'True' }]))));
    expect((await listKubeNodes(access(flaky), { attempts: 3, retryDelayMs: 10 })).map((node) => node.name)).toEqual(['cni-master1']);
    expect(flaky.requests).toHaveLength(3);
    const down = await serve((_req, res) => res.writeHead(503, 'Service Unavailable').end());
    await expect(listKubeNodes(access(down), { attempts: 2, retryDelayMs: 10 })).rejects.toThrow(`answered HTTP 503 Service Unavailable`);
    expect(down.requests).toHaveLength(2);
  });

  it('gives up on a server that does not answer after its timeout, each attempt', async () => {
    // Accepts the TLS connection and the request, never answers.
    const silent = await serve(() => undefined);
    const started = Date.now();
    const error = await listKubeNodes(access(silent), { attempts: 2, timeoutMs: 300, retryDelayMs: 50 }).catch((caught: unknown) => caught);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as Error).message).toMatch(/could not be reached: .*(300 ms)/);
    expect(silent.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(5_000);
  });

  it('says when nothing listens on the port', async () => {
    const server = await serve(() => undefined);
    await server.close();
    await expect(listKubeNodes(access(server), { attempts: 1 })).rejects.toThrow(`the Kubernetes API at ${server.server} could not be reached: connect ECONNREFUSED 127.0.0.1:${server.port}`);
  });
});
