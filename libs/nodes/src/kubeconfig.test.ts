import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { DEFAULT_CNI_DIR, resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { ensureClusterPki } from '@boxcar/node-config';
import { listKubeNodes } from './kube-api.ts';
import { kubeApiAccess, kubernetesReadiness, withReadiness, writeKubeconfig } from './kubeconfig.ts';
import type { NodeContext, NodeStatus } from './runtime.ts';
import { clusterPaths, writeNodeRecord, type NodeRecord } from './state.ts';
import { nodeList, startApiServer, type TestApiServer } from './testing/api-server.ts';
import { labKubernetesCluster } from './testing/kube-cluster.ts';

// The host's kubeconfig of a lab-Kubernetes cluster, made from the cluster's real PKI (ensureClusterPki,
// openssl) and the port the master's record names; read back by a real YAML parser (PyYAML) and used
// against an https server on 127.0.0.1 that serves the PKI's apiserver certificate and requires the
// admin client certificate, as kube-apiserver does.

interface Kubeconfig {
  apiVersion: string;
  kind: string;
  'current-context': string;
  clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { name: string; user: { 'client-certificate-data': string; 'client-key-data': string } }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
}

async function parseYaml(text: string): Promise<unknown> {
  const { stdout } = await execa('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))'], { input: text });
  return JSON.parse(stdout);
}

let dir: string;
let cluster: Cluster;
let context: NodeContext;
let api: TestApiServer;

const masterRecord = (extra: Partial<NodeRecord> = {}): NodeRecord => ({
  name: 'cni-master1',
  provider: 'qemu',
  box: { name: 'boxcar/lab-master', version: '1.20261201.0', contentKey: 'k' },
  ssh: { host: '127.0.0.1', port: 40022, user: 'vagrant' },
  ...extra,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-kubeconfig-'));
  cluster = labKubernetesCluster(dir);
  context = { cluster, store: openStore(join(dir, 'store')), paths: clusterPaths(cluster, join(dir, 'state')), cniDir: DEFAULT_CNI_DIR };
  const pki = await ensureClusterPki(context.paths.pki, cluster);
  api = await startApiServer({ server: { cert: await readFile(pki.apiserver.cert), key: await readFile(pki.apiserver.key) }, clientCa: await readFile(pki.caCert) }, (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(nodeList([{ name: 'cni-master1', ready: 'True', kubeletVersion: 'v1.20.2' }, { name: 'cni-worker1', ready: 'False', reason: 'KubeletNotReady' }])),
  );
}, 120_000);
afterAll(async () => {
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the host kubeconfig', () => {
  it('is not written while the master is not up, nor for a master without a forwarded API port', async () => {
    expect(await writeKubeconfig(context)).toEqual({ problem: 'the master cni-master1 is not up' });
    await writeNodeRecord(context.paths, masterRecord());
    expect(await writeKubeconfig(context)).toEqual({ problem: 'the master cni-master1 has no Kubernetes API port on 127.0.0.1 (it was brought up without one): take it down and up again' });
    await expect(stat(context.paths.kubeconfig)).rejects.toThrow(/ENOENT/);
  });

  it('points at the forwarded port on 127.0.0.1 with the cluster CA and the admin pair, mode 600, everything named after the cluster', async () => {
    await writeNodeRecord(context.paths, masterRecord({ api: { host: '127.0.0.1', port: api.port } }));
    expect(await writeKubeconfig(context)).toEqual({ path: join(dir, 'state', 'lab', 'kubeconfig'), server: `https://127.0.0.1:${api.port}` });
    expect((await stat(context.paths.kubeconfig)).mode & 0o777).toBe(0o600);
    const config = (await parseYaml(await readFile(context.paths.kubeconfig, 'utf8'))) as Kubeconfig;
    expect(config).toMatchObject({ apiVersion: 'v1', kind: 'Config', 'current-context': 'lab' });
    expect(config.clusters.map((entry) => [entry.name, entry.cluster.server])).toEqual([['lab', `https://127.0.0.1:${api.port}`]]);
    expect(config.contexts).toEqual([{ name: 'lab', context: { cluster: 'lab', user: 'lab' } }]);
    expect(config.users.map((entry) => entry.name)).toEqual(['lab']);
    const data = (value: string) => Buffer.from(value, 'base64').toString('utf8');
    const pki = join(dir, 'state', 'lab', 'pki');
    expect(data(config.clusters[0]!.cluster['certificate-authority-data'])).toBe(await readFile(join(pki, 'ca.pem'), 'utf8'));
    expect(data(config.users[0]!.user['client-certificate-data'])).toBe(await readFile(join(pki, 'admin.pem'), 'utf8'));
    expect(data(config.users[0]!.user['client-key-data'])).toBe(await readFile(join(pki, 'admin-key.pem'), 'utf8'));

    // What it holds is enough to list the nodes over TLS on 127.0.0.1: the apiserver certificate of the PKI
    // is valid for 127.0.0.1, and the server accepts the admin certificate (system:masters).
    const listed = await listKubeNodes({
      server: config.clusters[0]!.cluster.server,
      ca: data(config.clusters[0]!.cluster['certificate-authority-data']),
      clientCert: { cert: data(config.users[0]!.user['client-certificate-data']), key: data(config.users[0]!.user['client-key-data']) },
    });
    expect(listed.map((node) => node.name)).toEqual(['cni-master1', 'cni-worker1']);
    expect(api.requests.at(-1)).toEqual({ path: '/api/v1/nodes', client: { O: 'system:masters', CN: 'kube-admin' } });
  });

  it('gives the status every node as the API sees it, or why it cannot', async () => {
    expect(await kubernetesReadiness(context)).toEqual({
      nodes: [
        { name: 'cni-master1', registered: true, ready: true, kubeletVersion: 'v1.20.2' },
        { name: 'cni-worker1', registered: true, ready: false, reason: 'Ready False: KubeletNotReady' },
        { name: 'cni-worker2', registered: false, ready: false, reason: 'not registered with the API server' },
      ],
    });
    const closed = masterRecord({ api: { host: '127.0.0.1', port: 1 } });
    await writeNodeRecord(context.paths, closed);
    expect(await kubernetesReadiness(context, { attempts: 1 })).toEqual({ problem: 'the Kubernetes API at https://127.0.0.1:1 could not be reached: connect ECONNREFUSED 127.0.0.1:1' });
    await writeNodeRecord(context.paths, masterRecord({ api: { host: '127.0.0.1', port: api.port } }));
  });

  it('is only for a profile that runs Kubernetes as the lab does', async () => {
    const lab = resolveClusterOrThrow({ profile: 'lab' });
    const plain = { ...context, cluster: { ...lab, kubernetes: undefined } as Cluster };
    expect(await kubeApiAccess(plain)).toEqual({ problem: 'profile lab runs no Kubernetes the host can reach' });
  });
});

describe('withReadiness (the status columns)', () => {
  const status = (name: string, state: NodeStatus['state'], detail = ''): NodeStatus => ({ name, state, reachable: state === 'running', configured: state === 'running', ready: null, detail });
  const statuses = [status('cni-master1', 'running'), status('cni-worker1', 'running', 'configuration is out of date'), status('cni-worker2', 'absent', 'not brought up')];

  it('sets ready and the kubelet version per node, and the reason of a node that is not Ready in its detail', () => {
    const merged = withReadiness(statuses, {
      nodes: [
        { name: 'cni-master1', registered: true, ready: true, kubeletVersion: 'v1.20.2' },
        { name: 'cni-worker1', registered: true, ready: false, kubeletVersion: 'v1.20.2', reason: 'Ready False: KubeletNotReady' },
        { name: 'cni-worker2', registered: false, ready: false, reason: 'not registered with the API server' },
      ],
    });
    expect(merged.map((s) => [s.name, s.ready, s.kubeletVersion, s.detail])).toEqual([
      ['cni-master1', true, 'v1.20.2', ''],
      ['cni-worker1', false, 'v1.20.2', 'configuration is out of date; Kubernetes: Ready False: KubeletNotReady'],
      ['cni-worker2', false, undefined, 'not brought up; Kubernetes: not registered with the API server'],
    ]);
  });

  it('leaves ready unknown when the API cannot be asked, saying why on each running node', () => {
    const merged = withReadiness(statuses, { problem: 'the Kubernetes API at https://127.0.0.1:41234 could not be reached: socket hang up' });
    expect(merged.map((s) => [s.name, s.ready, s.detail])).toEqual([
      ['cni-master1', null, 'Kubernetes: the Kubernetes API at https://127.0.0.1:41234 could not be reached: socket hang up'],
      ['cni-worker1', null, 'configuration is out of date; Kubernetes: the Kubernetes API at https://127.0.0.1:41234 could not be reached: socket hang up'],
      ['cni-worker2', null, 'not brought up'],
    ]);
  });
});
