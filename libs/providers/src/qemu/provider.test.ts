import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '@boxcar/kit';
import { resolveClusterOrThrow } from '@boxcar/model';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TCG_ARGS } from '../accel.ts';
import { stateLayout } from './layout.ts';
import { processesMentioning } from './processes.ts';
import { ensureOverlay, QemuNodeError, qemuDown, qemuNodeDown, qemuNodeUp, qemuStatus, qemuUp, type QemuProgress } from './provider.ts';

// The provider's process and file handling with real qemu and real vde_switch processes, booting a blank
// disk: the firmware finds nothing to boot and waits, which costs no CPU and a few seconds. Booting real
// guests (SSH, NIC names, the ping matrix) is provider.slow.test.ts.

const cluster = resolveClusterOrThrow({ profile: 'lab' });
const tcg = { accel: 'tcg' as const, reason: 'given by the test', qemuArgs: [...TCG_ARGS] };
let work: string;
let blank: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'boxcar-qemu-'));
  blank = join(work, 'blank.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '64M']);
});
afterAll(async () => {
  // Whatever a failed test left running.
  for (const stray of await processesMentioning(work)) process.kill(stray.pid, 'SIGKILL');
  await rm(work, { recursive: true, force: true });
});

/** Listening TCP sockets on 127.0.0.1 (from /proc/net/tcp), as host:port strings. */
async function listeners(): Promise<string[]> {
  const rows = (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1).map((row) => row.trim().split(/\s+/));
  return rows
    .filter((row) => row[3] === '0A')
    .map((row) => {
      const [hex, port] = row[1]!.split(':') as [string, string];
      const ip = hex.match(/../g)!.reverse().map((byte) => parseInt(byte, 16)).join('.');
      return `${ip}:${parseInt(port, 16)}`;
    });
}

describe('qemu provider with blank disks', () => {
  it('brings one node up with its switches, overlay and port, leaves it alone the second time, and takes everything down', async () => {
    const stateDir = join(work, 'one');
    const events: QemuProgress[] = [];
    const layout = stateLayout(stateDir);
    const node = await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg, onProgress: (event) => events.push(event) });

    expect(node).toMatchObject({ name: 'cni-worker1', sshHost: '127.0.0.1', started: true, serialLog: layout.node('cni-worker1').serialLog });
    expect(JSON.parse(await readFile(layout.portsFile, 'utf8'))).toEqual({ 'cni-worker1': node.sshPort });
    // The forward listens on loopback only.
    const bound = (await listeners()).filter((address) => address.endsWith(`:${node.sshPort}`));
    expect(bound).toEqual([`127.0.0.1:${node.sshPort}`]);
    const overlay = JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', layout.node('cni-worker1').overlay])).stdout) as Record<string, string>;
    expect(overlay['backing-filename']).toBe(blank);
    expect(overlay['backing-filename-format']).toBe('qcow2');
    await access(join(layout.switchSocket.cluster, 'ctl'));
    await access(join(layout.switchSocket.vpp, 'ctl'));
    expect(events.map((event) => event.step)).toEqual(['switch', 'switch', 'overlay', 'launch']);

    const again = await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg });
    expect(again).toMatchObject({ started: false, pid: node.pid, sshPort: node.sshPort });

    const status = await qemuStatus(cluster, { stateDir });
    expect(status.switches).toEqual({ cluster: true, vpp: true });
    expect(status.nodes.map((n) => [n.name, n.state])).toEqual([['cni-master1', 'absent'], ['cni-worker1', 'running'], ['cni-worker2', 'absent']]);
    expect(status.nodes[1]).toMatchObject({ pid: node.pid, sshPort: node.sshPort });

    const processes = await processesMentioning(layout.stateDir);
    expect(processes.map((p) => p.command.split(' ')[0]).sort()).toEqual(['qemu-system-x86_64', 'vde_switch', 'vde_switch']);

    // The last node down takes the switches and the state dir with it; it says it stopped a qemu, and
    // the second time that there was none.
    expect(await qemuNodeDown(cluster, 'cni-worker1', { stateDir })).toBe(true);
    expect(await processesMentioning(layout.stateDir)).toEqual([]);
    await expect(access(stateDir)).rejects.toThrow(/ENOENT/);
    expect(await qemuNodeDown(cluster, 'cni-worker1', { stateDir })).toBe(false);
    expect((await listeners()).filter((address) => address.endsWith(`:${node.sshPort}`))).toEqual([]);
  });

  it("forwards the master's Kubernetes API on 127.0.0.1 beside SSH, records the port, keeps it and drops it with the node", async () => {
    expect(cluster.kubernetes, 'the lab runs Kubernetes').toBeDefined();
    const stateDir = join(work, 'api');
    const layout = stateLayout(stateDir);
    const master = await qemuNodeUp(cluster, 'cni-master1', { stateDir, image: blank, accel: tcg });
    const worker = await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg });
    expect(master.apiPort).toBeGreaterThanOrEqual(1024);
    expect(worker.apiPort).toBeUndefined();
    expect(new Set([master.sshPort, master.apiPort, worker.sshPort]).size).toBe(3);
    expect(JSON.parse(await readFile(layout.apiPortsFile, 'utf8'))).toEqual({ 'cni-master1': master.apiPort });
    expect(JSON.parse(await readFile(layout.node('cni-master1').launchArgs, 'utf8'))).toMatchObject({ sshPort: master.sshPort, apiPort: master.apiPort });
    // Both forwards of the master listen on loopback only (qemu's user network binds them at launch).
    for (const port of [master.sshPort, master.apiPort!]) expect((await listeners()).filter((address) => address.endsWith(`:${port}`))).toEqual([`127.0.0.1:${port}`]);

    expect(await qemuNodeUp(cluster, 'cni-master1', { stateDir, image: blank, accel: tcg })).toMatchObject({ started: false, apiPort: master.apiPort });
    expect((await qemuStatus(cluster, { stateDir })).nodes.map((n) => [n.name, n.apiPort])).toEqual([['cni-master1', master.apiPort], ['cni-worker1', undefined], ['cni-worker2', undefined]]);

    expect(await qemuNodeDown(cluster, 'cni-master1', { stateDir })).toBe(true);
    expect(JSON.parse(await readFile(layout.apiPortsFile, 'utf8'))).toEqual({});
    expect((await listeners()).filter((address) => address.endsWith(`:${master.apiPort}`))).toEqual([]);
    await qemuDown(cluster, { stateDir });
  });

  it('brings the whole cluster up with one port each, and qemuDown leaves nothing behind', async () => {
    const stateDir = join(work, 'all');
    const up = await qemuUp(cluster, { stateDir, images: Object.fromEntries(cluster.nodes.map((n) => [n.name, blank])), accel: tcg });
    expect(up.nodes.map((n) => n.name)).toEqual(['cni-master1', 'cni-worker1', 'cni-worker2']);
    expect(new Set(up.nodes.map((n) => n.sshPort)).size).toBe(3);
    expect(await processesMentioning(stateDir)).toHaveLength(5);

    const down = await qemuDown(cluster, { stateDir });
    expect(down.stopped.sort()).toEqual(['cni-master1', 'cni-worker1', 'cni-worker2']);
    expect(await processesMentioning(stateDir)).toEqual([]);
    await expect(access(stateDir)).rejects.toThrow(/ENOENT/);
    // Idempotent: down again is fine.
    expect(await qemuDown(cluster, { stateDir })).toEqual({ stopped: [] });
  });

  it('keeps a stopped node’s disk and restarts it on it; a node whose qemu died counts as stopped', async () => {
    const stateDir = join(work, 'restart');
    const layout = stateLayout(stateDir);
    const first = await qemuNodeUp(cluster, 'cni-master1', { stateDir, image: blank, accel: tcg });
    process.kill(first.pid, 'SIGKILL');
    await new Promise((done) => setTimeout(done, 300));
    expect((await qemuStatus(cluster, { stateDir })).nodes[0]!.state).toBe('stopped');
    const events: QemuProgress[] = [];
    const second = await qemuNodeUp(cluster, 'cni-master1', { stateDir, image: blank, accel: tcg, onProgress: (event) => events.push(event) });
    expect(second.started).toBe(true);
    expect(second.pid).not.toBe(first.pid);
    expect(events.find((event) => event.step === 'overlay')?.message).toBe(`reusing ${layout.node('cni-master1').overlay}`);
    await qemuDown(cluster, { stateDir });
  });

  it('stops a qemu of the node whose pid and port files were lost (it holds the disk), then boots the disk again; a tail of its serial log is left alone', async () => {
    const stateDir = join(work, 'lost-pid');
    const paths = stateLayout(stateDir).node('cni-worker1');
    const first = await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg });
    await rm(paths.pidFile);
    await rm(stateLayout(stateDir).portsFile);
    expect((await qemuStatus(cluster, { stateDir })).nodes.find((node) => node.name === 'cni-worker1')!.state).toBe('stopped');
    const reader = execa('tail', ['-f', paths.serialLog], { reject: false });
    const events: QemuProgress[] = [];
    const second = await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg, onProgress: (event) => events.push(event) });
    expect(second.started).toBe(true);
    expect(events.map((event) => event.message)).toContain(`stopping a qemu of this node that its pid file no longer names (pid ${first.pid})`);
    expect(events.find((event) => event.step === 'overlay')?.message).toBe(`reusing ${paths.overlay}`);
    expect((await processesMentioning(paths.dir)).map((p) => p.pid).sort()).toEqual([second.pid, reader.pid!].sort());
    reader.kill();
    await reader;
    await qemuDown(cluster, { stateDir });
  });

  it("the last node's down and another node's up at once (terraform replaces nodes in parallel) leave the new node running on live switches", async () => {
    const stateDir = join(work, 'parallel');
    await qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: blank, accel: tcg });
    const [, up] = await Promise.all([qemuNodeDown(cluster, 'cni-worker1', { stateDir }), qemuNodeUp(cluster, 'cni-worker2', { stateDir, image: blank, accel: tcg })]);
    const status = await qemuStatus(cluster, { stateDir });
    expect(status.switches).toEqual({ cluster: true, vpp: true });
    expect(status.nodes.map((node) => [node.name, node.state])).toEqual([['cni-master1', 'absent'], ['cni-worker1', 'absent'], ['cni-worker2', 'running']]);
    await access(stateLayout(stateDir).node('cni-worker2').overlay);
    expect(up.started).toBe(true);
    await qemuDown(cluster, { stateDir });
    // The lock lives beside the state dir and is gone once released.
    await expect(access(stateLayout(stateDir).lockFile)).rejects.toThrow(/ENOENT/);
  });

  it('after a host restart (every qemu and vde_switch killed, their pid files left) the nodes boot again on live switches', async () => {
    const stateDir = join(work, 'host-restart');
    for (const name of ['cni-worker1', 'cni-worker2']) await qemuNodeUp(cluster, name, { stateDir, image: blank, accel: tcg });
    for (const stray of await processesMentioning(stateDir)) process.kill(stray.pid, 'SIGKILL');
    await new Promise((done) => setTimeout(done, 300));
    expect((await qemuStatus(cluster, { stateDir })).switches).toEqual({ cluster: false, vpp: false });
    for (const name of ['cni-worker1', 'cni-worker2']) expect((await qemuNodeUp(cluster, name, { stateDir, image: blank, accel: tcg })).started).toBe(true);
    const status = await qemuStatus(cluster, { stateDir });
    expect(status.switches).toEqual({ cluster: true, vpp: true });
    expect(status.nodes.filter((node) => node.state === 'running').map((node) => node.name)).toEqual(['cni-worker1', 'cni-worker2']);
    await qemuDown(cluster, { stateDir });
  });

  it('names the node, the step and the serial log when a node does not come up', async () => {
    const stateDir = join(work, 'fail');
    const raw = join(work, 'disk.raw');
    await writeFile(raw, Buffer.alloc(1024 * 1024));
    const error = await qemuNodeUp(cluster, 'cni-worker2', { stateDir, image: raw, accel: tcg }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QemuNodeError);
    expect(error).toMatchObject({ node: 'cni-worker2', step: 'overlay', serialLog: stateLayout(stateDir).node('cni-worker2').serialLog });
    expect((error as Error).message).toMatch(/qemu node cni-worker2: overlay failed: base image .*disk\.raw is raw, not qcow2\n {2}serial log: /);

    // A guest that never answers SSH (the blank disk): the wait ends at its deadline with the serial log's tail.
    const noSsh = await qemuNodeUp(cluster, 'cni-worker2', { stateDir, image: blank, accel: tcg, ssh: { user: 'vagrant', keyFile: join(work, 'none'), timeoutMs: 2_500 } }).catch((caught: unknown) => caught);
    expect(noSsh).toMatchObject({ node: 'cni-worker2', step: 'ssh' });
    expect((noSsh as Error).message).toMatch(/did not answer within 2500 ms[\s\S]*serial log: .*nodes\/cni-worker2\/serial\.log/);
    await qemuDown(cluster, { stateDir });

    // A qemu that dies while booting is reported as such at once, not as an SSH timeout minutes later.
    // Killed once it is launched and the wait for SSH began (a kill during the launch itself is a launch failure).
    const pidFile = stateLayout(stateDir).node('cni-master1').pidFile;
    const kill = () => readFile(pidFile, 'utf8').then((pid) => process.kill(Number(pid), 'SIGKILL')).catch(() => undefined);
    const started = Date.now();
    const died = await qemuNodeUp(cluster, 'cni-master1', {
      stateDir, image: blank, accel: tcg, ssh: { user: 'vagrant', keyFile: join(work, 'none'), timeoutMs: 60_000 },
      onProgress: (event) => void (event.step === 'ssh' && kill()),
    }).catch((caught: unknown) => caught);
    expect(died).toMatchObject({ node: 'cni-master1', step: 'boot' });
    expect((died as Error).message).toMatch(/qemu exited while the node was booting/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await qemuDown(cluster, { stateDir });
  });

  it('waits for all nodes and reports every one that did not come up', async () => {
    const stateDir = join(work, 'all-fail');
    const error = await qemuUp(cluster, {
      stateDir,
      images: Object.fromEntries(cluster.nodes.map((n) => [n.name, blank])),
      accel: tcg,
      ssh: { user: 'vagrant', keyFile: join(work, 'none'), timeoutMs: 2_000 },
    }).then(
      () => new Error('qemuUp succeeded with blank disks'),
      (caught: unknown) => caught as Error,
    );
    expect(error.message).toMatch(/^3 nodes of cluster lab did not come up:\nqemu node cni-master1: ssh failed[\s\S]*qemu node cni-worker1: ssh failed[\s\S]*qemu node cni-worker2: ssh failed/);
    await qemuDown(cluster, { stateDir });
  });

  it('refuses unknown nodes and missing images by name', async () => {
    const stateDir = join(work, 'bad');
    await expect(qemuNodeUp(cluster, 'cni-worker9', { stateDir, image: blank, accel: tcg })).rejects.toThrow(/cluster lab has no node "cni-worker9"; nodes: cni-master1, cni-worker1, cni-worker2/);
    await expect(qemuUp(cluster, { stateDir, images: { 'cni-master1': blank }, accel: tcg })).rejects.toThrow(/images has no base image for cni-worker1, cni-worker2/);
  });

  it('refuses a base image whose header names a host file, before anything is made or launched', async () => {
    const stateDir = join(work, 'hostile');
    const secret = join(work, 'secret-key');
    await writeFile(secret, 'not a disk\n');
    const hostile = join(work, 'hostile.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', secret, hostile, '1M']);
    await expect(qemuNodeUp(cluster, 'cni-worker1', { stateDir, image: hostile, accel: tcg })).rejects.toThrow(
      `qemu node cni-worker1: overlay failed: base image ${hostile} names files on this host, refused: a backing file: ${JSON.stringify(secret)}`,
    );
    expect(await processesMentioning(stateDir)).toEqual([]);
    await expect(access(stateDir)).rejects.toThrow(/ENOENT/);
  });
});

describe('the overlay on a base disk (qemu-img only, no VM)', () => {
  it('records the base\'s sha256, reuses the overlay while the base is the same, and refuses it once the bytes behind the path changed', async () => {
    const dir = join(work, 'overlay');
    const paths = stateLayout(dir).node('cni-worker1');
    await mkdir(paths.dir, { recursive: true });
    const base = join(dir, 'base.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    const digest = (await sha256File(base)).sha256;
    const messages: string[] = [];
    const spec = { node: 'cni-worker1', base, paths, progress: (_step: string, message: string) => messages.push(message) };

    await ensureOverlay({ ...spec, baseSha256: digest });
    expect((await readFile(paths.baseDigest, 'utf8')).trim()).toBe(digest);
    expect(JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', paths.overlay])).stdout)).toMatchObject({ 'backing-filename': base });
    // Without a digest given, the provider computes it from the file.
    await ensureOverlay(spec);
    expect(messages).toEqual([`${paths.overlay} on ${base}`, `reusing ${paths.overlay}`]);

    // The store's layer rebuilt in place: same path, other bytes.
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', base, '128M']);
    const changed = (await sha256File(base)).sha256;
    const before = await readFile(paths.overlay);
    const error = await ensureOverlay({ ...spec, baseSha256: changed }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QemuNodeError);
    expect(error).toMatchObject({ node: 'cni-worker1', step: 'overlay' });
    expect((error as Error).message).toContain(`qemu node cni-worker1: overlay failed: its disk ${paths.overlay} is an overlay on ${base}, made when that file had sha256 ${digest}; it now has sha256 ${changed}`);
    expect((error as Error).message).toContain('`boxcar node down cni-worker1` then `boxcar node up cni-worker1` (or cluster down, then cluster up)');
    // Refused, not repaired: the node's disk and its record are left as they were.
    expect(await readFile(paths.overlay)).toEqual(before);
    expect((await readFile(paths.baseDigest, 'utf8')).trim()).toBe(digest);

    // An overlay from before digests were recorded is taken as made on the base that is there now.
    await rm(paths.baseDigest);
    await ensureOverlay({ ...spec, baseSha256: changed });
    expect((await readFile(paths.baseDigest, 'utf8')).trim()).toBe(changed);
  });
});
