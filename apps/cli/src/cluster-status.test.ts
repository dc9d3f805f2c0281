import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, resolveClusterOrThrow } from '@boxcar/model';
import { ensureClusterPki } from '@boxcar/node-config';
import { nextCommands } from './commands/cluster.ts';

// `cluster status` of the lab (which runs Kubernetes) through the real CLI: its `ready` column and JSON
// field, from an https server on 127.0.0.1 that stands in for the API server behind the master's forwarded
// port. It serves the apiserver certificate of the cluster's own PKI (made here as cluster up makes it) and,
// like kube-apiserver, requires a client certificate of the cluster CA. No VM runs: the nodes are absent.
const BOXCAR = `${REPO_ROOT}/apps/cli/bin/boxcar.mjs`;

let dir: string;
let state: string;
let server: Server | undefined;

async function boxcar(...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BOXCAR_')));
  const result = await execa(process.execPath, [BOXCAR, ...args], { cwd: dir, env, extendEnv: false, reject: false });
  return { code: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}
const status = (...extra: string[]) => boxcar('cluster', 'status', '--profile', 'lab', '--store', join(dir, 'store'), '--state-dir', state, ...extra);

async function masterRecord(apiPort: number): Promise<void> {
  const record = {
    name: 'cni-master1',
    provider: 'qemu',
    box: { name: 'boxcar/lab-master', version: '1.20261201.0', contentKey: 'k' },
    ssh: { host: '127.0.0.1', port: 2222, user: 'vagrant' },
    api: { host: '127.0.0.1', port: apiPort },
  };
  await mkdir(join(state, 'lab', 'nodes'), { recursive: true });
  await writeFile(join(state, 'lab', 'nodes', 'cni-master1.json'), JSON.stringify(record));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-cli-status-'));
  state = join(dir, 'state');
});
afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

type Status = { name: string; ready: boolean | null; kubeletVersion?: string; detail: string };

describe('cluster status of a cluster that runs Kubernetes', () => {
  it("shows ready '-' (null in JSON) while the API cannot be reached", async () => {
    expect(resolveClusterOrThrow({ profile: 'lab' }).kubernetes, 'the lab runs Kubernetes').toBeDefined();
    await masterRecord(1);
    const json = await status('--json');
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as Status[]).map((s) => [s.name, s.ready])).toEqual([['cni-master1', null], ['cni-worker1', null], ['cni-worker2', null]]);
    // A status reads the cluster's credentials; it never makes (nor renews) a PKI: that is cluster up's.
    expect(existsSync(join(state, 'lab', 'pki'))).toBe(false);
    const text = await status();
    const [header, , ...rows] = text.stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['node', 'state', 'reachable', 'configured', 'ready', 'box', 'detail']);
    expect(rows.map((row) => row.split(/\s{2,}/).slice(0, 5))).toEqual([
      ['cni-master1', 'absent', 'no', 'no', '-'],
      ['cni-worker1', 'absent', 'no', 'no', '-'],
      ['cni-worker2', 'absent', 'no', 'no', '-'],
    ]);
  }, 120_000);

  it('shows per node whether the API says it is Ready, why not in the detail, and the kubelet version in JSON', async () => {
    // The cluster's PKI as cluster up makes it: the server presents its apiserver certificate.
    const pki = join(state, 'lab', 'pki');
    await ensureClusterPki(pki, resolveClusterOrThrow({ profile: 'lab' }));
    server = createServer(
      { cert: await readFile(join(pki, 'apiserver.pem')), key: await readFile(join(pki, 'apiserver-key.pem')), ca: await readFile(join(pki, 'ca.pem')), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const ready = (name: string, status: string, reason?: string) => ({
          metadata: { name },
          status: { conditions: [{ type: 'Ready', status, ...(reason ? { reason } : {}) }], nodeInfo: { kubeletVersion: 'v1.20.2' } },
        });
        if (req.url !== '/api/v1/nodes') return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'NodeList', items: [ready('cni-master1', 'True'), ready('cni-worker1', 'False', 'KubeletNotReady')] }));
      },
    );
    await new Promise<void>((listening) => server!.listen(0, '127.0.0.1', listening));
    await masterRecord((server.address() as AddressInfo).port);

    const json = JSON.parse((await status('--json')).stdout) as Status[];
    expect(json.map((s) => [s.name, s.ready, s.kubeletVersion])).toEqual([['cni-master1', true, 'v1.20.2'], ['cni-worker1', false, 'v1.20.2'], ['cni-worker2', false, undefined]]);
    const rows = (await status()).stdout.trimEnd().split('\n').slice(2);
    expect(rows.map((row) => row.split(/\s{2,}/)[4])).toEqual(['yes', 'no', 'no']);
    expect(rows[1]).toMatch(/  not brought up; Kubernetes: Ready False: KubeletNotReady$/);
    expect(rows[2]).toMatch(/  not brought up; Kubernetes: not registered with the API server$/);
  }, 120_000);
});

describe("cluster up's next commands", () => {
  const lab = resolveClusterOrThrow({ profile: 'lab' });

  it('start with the export of KUBECONFIG where the cluster runs Kubernetes', () => {
    const text = nextCommands(lab, ' --profile lab', { kubeconfig: '/srv/boxcar/.cluster/lab/kubeconfig', server: 'https://127.0.0.1:41234' });
    expect(text.split('\n')[0]).toMatch(/^ {2}export KUBECONFIG=\/srv\/boxcar\/\.cluster\/lab\/kubeconfig +kubectl on this host reaches the API \(https:\/\/127\.0\.0\.1:41234\)$/);
    expect(text).toContain('  npx nx run cluster:down --profile lab');
  });

  it('quote a path a shell would split, and say nothing of Kubernetes without it', () => {
    expect(nextCommands(lab, '', { kubeconfig: '/home/a b/.cluster/lab/kubeconfig', server: 'https://127.0.0.1:1' }).split('\n')[0]).toMatch(/^ {2}export KUBECONFIG='\/home\/a b\/\.cluster\/lab\/kubeconfig' /);
    const xenial = resolveClusterOrThrow({});
    const text = nextCommands(xenial, '');
    expect(text).not.toContain('KUBECONFIG');
    expect(text.split('\n')[0]).toMatch(/^ {2}npx nx run cluster:ssh cni-master1 +a shell on a node$/);
  });
});
