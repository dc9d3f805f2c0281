import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { ipToInt } from '@boxcar/model';
import { sshCopy, sshRun, type SshTarget } from '@boxcar/providers';
import { resolveCacheDir } from '@boxcar/artifacts';
import { applyStack, destroyStack } from './harness/terraform-double.ts';
import { BOXCAR, labWorkspace } from './harness/lab-workspace.ts';
import { filesContaining, scanImage } from './harness/image-scan.ts';
import { describeLibvirtBringUp } from './lab-libvirt.steps.ts';

// The lab end to end, with real packer builds and real VMs under QEMU (TCG here): bake from an
// empty store, bake again (nothing to do), bring the cluster up by running the synthesized CDKTF
// stack, check it from inside the VMs, change one byte of one layer, bake and bring it up again,
// then take everything down; last, the same boxes through Vagrant + libvirt. Terraform is not
// installed here: the stack is applied by the test double in harness/terraform-double.ts; everything
// it runs is the product's own CLI.
// The debootstrap base and the artifact cache persist in ~/.cache/boxcar, keyed by content.

const workspace = labWorkspace('boxcar-e2e-');
const { work, profiles, env, cluster, stackDir, boxcar: run } = workspace;

async function boxcar(args: string[]) {
  return run(...args);
}

interface BakeJson {
  plan: { layers: { layer: string; status: string; reasons: string[] }[] };
  result: { built: { layer: string; box?: { version: string } }[]; cached: string[]; packerRuns: number };
}

async function bake(...extra: string[]): Promise<BakeJson & { seconds: number }> {
  const { stdout, seconds } = await boxcar(['images', 'bake', '--profile', 'lab', '--json', ...extra]);
  return { ...(JSON.parse(stdout) as BakeJson), seconds };
}

function nodeTarget(name: string, key: 'cluster' | 'bootstrap' = 'cluster'): SshTarget {
  const record = JSON.parse(readFileSync(join(env.BOXCAR_STATE_DIR, cluster.name, 'nodes', `${name}.json`), 'utf8'));
  const keyFile = key === 'cluster' ? join(env.BOXCAR_STATE_DIR, cluster.name, 'ssh', 'cluster_ed25519') : join(work, 'store', 'keys', 'bootstrap_ed25519');
  return { host: record.ssh.host, port: record.ssh.port, user: record.ssh.user, keyFile };
}

async function on(node: string, command: string): Promise<string> {
  return (await sshRun(nodeTarget(node), command, { timeoutMs: 120_000 })).stdout;
}

const timings: Record<string, number> = {};

describe.sequential('lab profile, end to end', () => {
  afterAll(async () => {
    // Whatever failed above, no VM of this test may survive it.
    await execa(process.execPath, [BOXCAR, 'cluster', 'down', '--profile', 'lab'], { env, reject: false, stdio: 'inherit' });
  });

  it('1. bakes every layer with the real packer from an empty store and publishes verified boxes', async () => {
    const cold = await bake();
    timings.coldBake = cold.seconds;
    expect(cold.plan.layers.map((l) => [l.layer, l.status])).toEqual([
      ['base', 'build'],
      ['node', 'build'],
      ['master', 'build'],
      ['worker', 'build'],
    ]);
    expect(cold.result.packerRuns).toBe(4);
    const store = await openStore(env.BOXCAR_STORE);
    const boxes = await store.listBoxes();
    expect(boxes.map((b) => b.name).sort()).toEqual(['boxcar/lab-master', 'boxcar/lab-worker']);
    for (const box of boxes) {
      const [version] = box.versions;
      const verified = await store.verifyBox(box.name, version!.version, 'libvirt');
      expect(verified.sha256).toBe(version!.providers[0]!.checksum);
      expect(verified.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('1b. the published boxes hold no secret: no private key, token, shell history, apt cache or bake leftovers', async () => {
    const store = await openStore(env.BOXCAR_STORE);
    for (const layer of ['master', 'worker']) {
      const manifest = await store.latestLayer('lab', layer);
      const disk = join(await store.layerFiles('lab', layer, manifest!.key), 'disk.qcow2');
      expect(await scanImage(disk), `${layer}: ${disk}`).toEqual([]);
    }
    // Nor does any log of the bake print a private key.
    expect(await filesContaining(env.BOXCAR_BUILD_DIR, 'PRIVATE KEY')).toEqual([]);
  });

  it('2. bakes again without running packer', async () => {
    const again = await bake();
    timings.noopBake = again.seconds;
    expect(again.result.packerRuns).toBe(0);
    expect(again.result.cached).toEqual(['base', 'node', 'master', 'worker']);
  });

  it('3. brings the cluster up by applying the synthesized stack', async () => {
    const started = Date.now();
    await boxcar(['cluster', 'synth', '--profile', 'lab']);
    const report = await applyStack(stackDir);
    timings.clusterUp = (Date.now() - started) / 1000;
    expect(report.created.sort()).toEqual(cluster.nodes.flatMap((n) => [`config-${n.name}`, `vm-${n.name}`]).sort());
    const status = JSON.parse((await boxcar(['cluster', 'status', '--profile', 'lab', '--json'])).stdout) as { name: string; configured: boolean }[];
    expect(status.map((s) => [s.name, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, true]));
  });

  it('4. every node has its hostname and its static IP on the cluster NIC', async () => {
    for (const node of cluster.nodes) {
      expect((await on(node.name, 'hostname')).trim()).toBe(node.name);
      expect(await on(node.name, 'ip -4 -o addr show dev enp0s8')).toContain(`inet ${node.ip}/24`);
    }
  });

  it('5. the full ping matrix passes on the cluster network, from inside the VMs', async () => {
    const failures: string[] = [];
    for (const from of cluster.nodes) {
      for (const to of cluster.nodes.filter((n) => n !== from)) {
        const result = await sshRun(nodeTarget(from.name), `ping -c 2 -W 3 ${to.ip}`, { allowFailure: true, timeoutMs: 60_000 });
        if (result.exitCode !== 0) failures.push(`${from.name} -> ${to.name} (${to.ip})`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('6. Calico etcd on cni-worker1 answers on :4001 and :2379, from the master and from cni-worker2', async () => {
    for (const from of [cluster.master.name, 'cni-worker2']) {
      const health = await on(from, `ETCDCTL_API=3 etcdctl --endpoints=${cluster.etcd.endpoints.join(',')} endpoint health 2>&1`);
      for (const endpoint of ['http://192.168.10.21:4001', 'http://192.168.10.21:2379']) expect(health).toContain(`${endpoint} is healthy`);
    }
  });

  it("7. a CNI ADD through each worker's installed conf gives an address in its range; the namespaces ping across nodes", async () => {
    const addresses: Record<string, string> = {};
    for (const worker of cluster.workers) {
      const output = await on(
        worker.name,
        'sudo ip netns add e2e 2>/dev/null; sudo env CNI_COMMAND=ADD CNI_CONTAINERID=e2e CNI_NETNS=/var/run/netns/e2e CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin /opt/cni/bin/ipvlan < /etc/cni/net.d/ipvlan.conf',
      );
      const result = JSON.parse(output) as { ip4?: { ip: string }; ips?: { address: string }[] };
      const address = (result.ip4?.ip ?? result.ips?.[0]?.address ?? '').split('/')[0]!;
      expect(ipToInt(address)).toBeGreaterThanOrEqual(ipToInt(worker.ipamRange!.start));
      expect(ipToInt(address)).toBeLessThanOrEqual(ipToInt(worker.ipamRange!.end));
      addresses[worker.name] = address;
    }
    expect(addresses['cni-worker1']).not.toBe(addresses['cni-worker2']);
    expect(await on('cni-worker1', `sudo ip netns exec e2e ping -c 2 -W 3 ${addresses['cni-worker2']}`)).toContain(' 0% packet loss');
    expect(await on('cni-worker2', `sudo ip netns exec e2e ping -c 2 -W 3 ${addresses['cni-worker1']}`)).toContain(' 0% packet loss');
  });

  it('8. the bootstrap key is refused and the cluster key works', async () => {
    for (const node of cluster.nodes) {
      expect((await sshRun(nodeTarget(node.name, 'bootstrap'), 'true', { allowFailure: true })).exitCode).toBe(255);
      expect((await sshRun(nodeTarget(node.name, 'cluster'), 'true')).exitCode).toBe(0);
    }
  });

  it('9. configuring again changes nothing, and applying the unchanged stack runs nothing', async () => {
    const { stdout } = await boxcar(['node', 'configure', 'cni-worker1', '--profile', 'lab']);
    // Commands without a changed file are idempotent ones (relinking the CNI plugins); 9b checks the state.
    expect(stdout).toContain(' 0 file(s) changed');
    await boxcar(['cluster', 'synth', '--profile', 'lab']);
    const report = await applyStack(stackDir);
    expect(report.commands).toEqual([]);
  });

  it('9b. the lab layer scripts are idempotent: a second run on a booted worker leaves the same state', async () => {
    const target = nodeTarget('cni-worker2');
    const scripts = ['kernel-settings.sh', 'cni-plugins.sh', 'install-debs.sh', 'etcd-disabled.sh', 'role.sh'];
    const lock = JSON.parse(readFileSync(join(profiles, 'lab', 'artifacts.lock.json'), 'utf8')) as { artifacts: { id: string; url: string; sha256: string }[] };
    const entry = lock.artifacts.find((artifact) => artifact.id === 'deb-etcd-server')!;
    const etcdDeb = decodeURIComponent(entry.url.split('/').at(-1)!);
    const debPath = join(resolveCacheDir(), 'sha256', entry.sha256, etcdDeb);
    await on('cni-worker2', 'sudo install -d -o vagrant /tmp/idem /tmp/idem/artifacts');
    await sshCopy(target, debPath, `/tmp/idem/artifacts/${etcdDeb}`, 0o644);
    for (const script of scripts) await sshCopy(target, join(profiles, 'lab', 'scripts', script), `/tmp/idem/${script}`, 0o755);
    const fingerprint = `sudo sh -c 'find /etc/sysctl.d /etc/modules-load.d /etc/boxcar /opt/cni/bin -printf "%p %l %m\\n" | sort; sha256sum /etc/sysctl.d/* /etc/boxcar/*; systemctl is-enabled etcd || true; dpkg -l | sha256sum'`;
    const runAll = () => on('cni-worker2', scripts.map((s) => `sudo env BOXCAR_ARTIFACTS=/tmp/idem/artifacts BOXCAR_ROLE=worker bash /tmp/idem/${s}`).join(' && '));
    await runAll();
    const first = await on('cni-worker2', fingerprint);
    await runAll();
    expect(await on('cni-worker2', fingerprint)).toBe(first);
  });

  it('10. one byte changed in the worker layer rebuilds exactly that layer', async () => {
    appendFileSync(join(profiles, 'lab', 'scripts', 'etcd-disabled.sh'), '#\n');
    const dry = await bake('--dry-run');
    expect(dry.plan.layers.map((l) => [l.layer, l.status])).toEqual([
      ['base', 'cached'],
      ['node', 'cached'],
      ['master', 'cached'],
      ['worker', 'build'],
    ]);
    expect(dry.plan.layers.at(-1)!.reasons).toEqual(['script scripts/etcd-disabled.sh changed']);
    const incremental = await bake();
    timings.incrementalBake = incremental.seconds;
    expect(incremental.result.packerRuns).toBe(1);
    expect(incremental.result.built.map((b) => b.layer)).toEqual(['worker']);
  });

  it('11. cluster up after the new bake recreates only the nodes whose box changed', async () => {
    const started = Date.now();
    await boxcar(['cluster', 'synth', '--profile', 'lab']);
    const report = await applyStack(stackDir);
    timings.clusterReUp = (Date.now() - started) / 1000;
    expect(report.replaced.sort()).toEqual(['config-cni-worker1', 'config-cni-worker2', 'vm-cni-worker1', 'vm-cni-worker2']);
    expect(report.unchanged.sort()).toEqual(['config-cni-master1', 'vm-cni-master1']);
    const health = await on(cluster.master.name, `ETCDCTL_API=3 etcdctl --endpoints=${cluster.etcd.endpoints[1]} endpoint health 2>&1`);
    expect(health).toContain('is healthy');
  });

  it('12. cluster down leaves no qemu or vde_switch process, socket or overlay', async () => {
    await destroyStack(stackDir);
    await boxcar(['cluster', 'down', '--profile', 'lab']);
    const processes = await execa('pgrep', ['-af', 'qemu-system|vde_switch'], { reject: false });
    expect(String(processes.stdout).split('\n').filter((line) => line.includes(env.BOXCAR_STATE_DIR))).toEqual([]);
    const providerDir = join(env.BOXCAR_STATE_DIR, cluster.name, 'qemu');
    expect(existsSync(providerDir) ? readdirSync(providerDir, { recursive: true }) : []).toEqual([]);
  });
});

describeLibvirtBringUp(workspace, timings);

afterAll(() => console.log(`e2e timings (s): ${JSON.stringify(timings)}`));
