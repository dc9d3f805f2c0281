import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { kubernetesApiPort, listening, ownForward } from './api-port.ts';

// The port a Vagrant cluster forwards on 127.0.0.1 to its master's Kubernetes API: chosen once, the same in
// every node's Vagrantfile, given up by the master only for a port that something else holds.

let dir: string;
const lab = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });
const { kubernetes: _none, ...plain } = lab;
const children: ChildProcess[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-api-port-'));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const server of servers) server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Something else listening on 127.0.0.1:`port`. */
async function hold(port: number): Promise<void> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((done) => server.listen({ host: '127.0.0.1', port }, done));
}

const recorded = async (stateDir: string) => JSON.parse(await readFile(join(stateDir, 'api-port.json'), 'utf8')) as { port: number };

describe('kubernetesApiPort', () => {
  it('is chosen once and recorded; every node of the cluster gets the same', async () => {
    expect(lab.kubernetes, 'the lab runs Kubernetes').toBeDefined();
    const context = { cluster: lab, stateDir: join(dir, 'once') };
    const first = await kubernetesApiPort(context, lab, 'libvirt', 'cni-worker1');
    expect(first).toBeGreaterThanOrEqual(1024);
    expect(await recorded(context.stateDir)).toEqual({ port: first });
    const all = await Promise.all(lab.nodes.map((node) => kubernetesApiPort(context, lab, 'libvirt', node.name)));
    expect(all).toEqual([first, first, first]);
  });

  it("moves, on the master's up, off a port something else holds; a worker's up never moves it", async () => {
    const context = { cluster: lab, stateDir: join(dir, 'taken') };
    const port = (await kubernetesApiPort(context, lab, 'libvirt', 'cni-master1'))!;
    await hold(port);
    expect(await kubernetesApiPort(context, lab, 'libvirt', 'cni-worker2')).toBe(port);
    const moved = await kubernetesApiPort(context, lab, 'libvirt', 'cni-master1');
    expect(moved).not.toBe(port);
    expect(await recorded(context.stateDir)).toEqual({ port: moved });
  });

  it('keeps a port held by the master\'s own running forward (vagrant-libvirt\'s ssh tunnel and its pid file)', async () => {
    const context = { cluster: lab, stateDir: join(dir, 'own') };
    const port = (await kubernetesApiPort(context, lab, 'libvirt', 'cni-master1'))!;
    await hold(port);
    // A process whose command line is that of vagrant-libvirt's tunnel (it sleeps instead; the port is held above).
    const tunnel = spawn('sh', ['-c', 'sleep 60; true', '-L', `127.0.0.1:${port}:127.0.0.1:443`], { argv0: 'ssh', stdio: 'ignore' });
    children.push(tunnel);
    const pids = join(context.stateDir, '.vagrant', 'machines', 'cni-master1', 'libvirt', 'pids');
    await mkdir(pids, { recursive: true });
    await writeFile(join(pids, `ssh_${port}.pid`), String(tunnel.pid));
    await new Promise((started) => setTimeout(started, 100));
    expect(await ownForward(context, 'libvirt', 'cni-master1', port)).toBe(true);
    expect(await kubernetesApiPort(context, lab, 'libvirt', 'cni-master1')).toBe(port);
    // The same pid file naming another port is not this forward.
    expect(await ownForward(context, 'libvirt', 'cni-worker1', port)).toBe(false);
  });

  it('is none for a profile without Kubernetes', async () => {
    const context = { cluster: plain as Cluster, stateDir: join(dir, 'plain') };
    expect(await kubernetesApiPort(context, plain as Cluster, 'libvirt', 'cni-master1')).toBeUndefined();
  });
});

describe('listening', () => {
  it('tells a port that accepts connections from one that does not, within its wait', async () => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((done) => server.listen({ host: '127.0.0.1', port: 0 }, done));
    const port = (server.address() as { port: number }).port;
    expect(await listening(port, 1_000)).toBe(true);
    server.close();
    const started = Date.now();
    expect(await listening(port, 600)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
  });
});
