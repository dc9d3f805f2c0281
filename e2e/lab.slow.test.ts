import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { terraformBinary, terraformRunner, type NodePlanSummary } from '@boxcar/cluster';
import { sshCopy, sshRun } from '@boxcar/providers';
import { resolveCacheDir } from '@boxcar/artifacts';
import { BOXCAR, labWorkspace } from './harness/lab-workspace.ts';
import { filesContaining, scanImage } from './harness/image-scan.ts';
import { expectCniAcrossNodes, expectEtcdHealthy, expectPingMatrix, labSsh } from './harness/lab-checks.ts';
import { expectNodesReady, expectPodsAcrossWorkers, kubectl, type KubeAccess } from './harness/kube-checks.ts';
import { describeLibvirtBringUp } from './lab-libvirt.steps.ts';
import { describeChaosSteps } from './lab-chaos.steps.ts';
import { describeSnapshotSteps } from './lab-snapshots.steps.ts';

// The lab end to end, with real packer builds and real VMs under QEMU (TCG here): bake from an
// empty store, bake again (nothing to do), bring the cluster up with `cluster up` (the synthesized
// CDKTF stack applied by the real terraform, offline: its resources are the built-in terraform_data),
// check it from inside the VMs, add a worker and remove it again, change one byte of one layer, bake
// and bring it up again, then take everything down; last, the same boxes through Vagrant + libvirt.
// What changed is asserted from terraform's own plan (`cluster up --json` reports it per node) and state.
// The debootstrap base and the artifact cache persist in ~/.cache/boxcar, keyed by content.

const workspace = labWorkspace('boxcar-e2e-');
const { work, profiles, cni, env, cluster, stackDir, boxcar: run, publishCopy, withoutStoreA } = workspace;

async function boxcar(args: string[]) {
  return run(...args);
}

interface BakeJson {
  plan: { builds: { build: string; status: string; reasons: string[]; neededBy: string[] }[]; layers: { layer: string; status: string; reasons: string[] }[] };
  result: { built: { layer: string; box?: { version: string } }[]; cached: string[]; packerRuns: number; builds?: { build: string; seconds: number; steps: Record<string, number> }[] };
}

async function bake(...extra: string[]): Promise<BakeJson & { seconds: number }> {
  const { stdout, seconds } = await boxcar(['images', 'bake', '--profile', 'lab', '--json', ...extra]);
  return { ...(JSON.parse(stdout) as BakeJson), seconds };
}

// The bootstrap key is the baker's (the workspace's), not the store's: the store holds no private key.
const ssh = labSsh({ cluster, stateDir: env.BOXCAR_STATE_DIR, bootstrapKey: env.BOXCAR_BOOTSTRAP_KEY });
const { nodeTarget, on } = ssh;

const timings: Record<string, number> = {};

// What the bake compiled: the profile's release with the mark of patches/kubernetes/02-version-mark.patch.
const KUBERNETES_VERSION = 'v1.20.2-boxcar.1';
const kube: KubeAccess = { cluster, kubeconfig: join(env.BOXCAR_STATE_DIR, cluster.name, 'kubeconfig') };

interface UpReport {
  plan: NodePlanSummary[];
  departed: string[];
  status: { name: string; configured: boolean }[];
}

async function clusterUp(...extra: string[]): Promise<UpReport & { seconds: number }> {
  const { stdout, seconds } = await boxcar(['cluster', 'up', '--json', ...(extra.length ? extra : ['--profile', 'lab'])]);
  return { ...(JSON.parse(stdout) as UpReport), seconds };
}

/** Per node: [name, vm action, configuration action], from terraform's plan. */
const actions = (plan: NodePlanSummary[]) => plan.map((row) => [row.node, row.vm, row.configuration]);

const terraformState = async () => terraformRunner({ binary: (await terraformBinary())!, stackDir, logDir: join(work, 'terraform-logs') }).stateList();

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
      ['kube', 'build'],
      ['master', 'build'],
      ['worker', 'build'],
    ]);
    expect(cold.result.packerRuns).toBe(5);
    // The compile runs once per machine (its outputs are kept under its key in ~/.cache/boxcar/builds):
    // on a fresh machine this bake compiled every binary; on another the plan says it was built here before.
    const [compile] = cold.plan.builds;
    expect(compile).toMatchObject({ build: 'kubernetes', neededBy: ['kube', 'master'] });
    if (compile!.status === 'build') {
      const built = cold.result.builds!.find((b) => b.build === 'kubernetes')!;
      timings.kubernetesCompile = built.seconds;
      expect(Object.keys(built.steps).sort()).toEqual(['kube-apiserver', 'kube-controller-manager', 'kube-proxy', 'kube-scheduler', 'kubelet']);
    } else expect(compile!.status).toBe('cached');
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

  it('1b. no layer in the store holds a secret: no private key (in a file or in freed blocks), token, shell history, apt cache or bake leftovers', async () => {
    const store = await openStore(env.BOXCAR_STORE);
    // Every layer, not only those with a box: the store is what a team shares, and a parent's bytes
    // are the start of its children's disks.
    for (const layer of ['base', 'node', 'kube', 'master', 'worker']) {
      const manifest = await store.latestLayer('lab', layer);
      const disk = join(await store.layerFiles('lab', layer, manifest!.key), 'disk.qcow2');
      expect(await scanImage(disk), `${layer}: ${disk}`).toEqual([]);
    }
    // Nor does any log of the bake print a private key.
    expect(await filesContaining(env.BOXCAR_BUILD_DIR, 'PRIVATE KEY')).toEqual([]);
  });

  it('2. bakes again without running packer or the compile', async () => {
    const again = await bake();
    timings.noopBake = again.seconds;
    expect(again.result.packerRuns).toBe(0);
    expect(again.result.cached).toEqual(['base', 'node', 'kube', 'master', 'worker']);
    expect(again.plan.builds.map((b) => [b.build, b.status])).toEqual([['kubernetes', 'not needed']]);
    expect(again.result.builds ?? []).toEqual([]);
  });

  it('2b. a patch added for Kubernetes rebuilds the compile and the layers under it, nothing else (the plan)', async () => {
    const patch = join(profiles, 'lab', 'patches', 'kubernetes', '03-e2e.patch');
    writeFileSync(patch, '--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # Kubernetes (K8s)\n+boxcar e2e\n');
    try {
      const dry = await bake('--dry-run');
      expect(dry.plan.builds.map((b) => [b.build, b.status, b.reasons])).toEqual([['kubernetes', 'build', ['patch patches/kubernetes/03-e2e.patch added']]]);
      expect(dry.plan.layers.map((l) => [l.layer, l.status])).toEqual([
        ['base', 'cached'],
        ['node', 'cached'],
        ['kube', 'build'],
        ['master', 'build'],
        ['worker', 'build'],
      ]);
      expect(dry.plan.layers.find((l) => l.layer === 'kube')!.reasons).toEqual(['template', 'build kubernetes changed']);
    } finally {
      rmSync(patch);
    }
  });

  it('3. brings the cluster up with the real terraform: its plan creates every resource, and every node ends configured', async () => {
    const up = await clusterUp();
    timings.clusterUp = up.seconds;
    expect(actions(up.plan)).toEqual(cluster.nodes.map((n) => [n.name, 'create', 'create']));
    expect(up.status.map((s) => [s.name, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, true]));
    expect((await terraformState()).sort()).toEqual(cluster.nodes.flatMap((n) => [`terraform_data.boot-${n.name}`, `terraform_data.config-${n.name}`, `terraform_data.vm-${n.name}`]).sort());
    const status = JSON.parse((await boxcar(['cluster', 'status', '--profile', 'lab', '--json'])).stdout) as { name: string; configured: boolean }[];
    expect(status.map((s) => [s.name, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, true]));
  });

  it('4. every node has its hostname and its static IP on the cluster NIC', async () => {
    for (const node of cluster.nodes) {
      expect((await on(node.name, 'hostname')).trim()).toBe(node.name);
      expect(await on(node.name, 'ip -4 -o addr show dev enp0s8')).toContain(`inet ${node.ip}/24`);
    }
  });

  it('5. the full ping matrix passes on the cluster network, from inside the VMs', () => expectPingMatrix(cluster, ssh));

  it('6. Calico etcd on cni-worker1 answers on :4001 and :2379, from the master and from cni-worker2', () => expectEtcdHealthy(cluster, ssh));

  it("7. a CNI ADD through each worker's installed conf gives an address in its range; the namespaces ping across nodes", () => expectCniAcrossNodes(cluster, ssh, 'e2e'));

  it('7b. Kubernetes from the host: kubectl sees the three nodes Ready with the compiled, patched version; pods on both workers reach each other across nodes and through a Service; logs and exec work', async () => {
    await expectNodesReady(kube, KUBERNETES_VERSION);
    await expectPodsAcrossWorkers(kube, 'e2e');
  });

  it("7c. the CNI developer's loop: the pod network's conf changed in cni/, cluster up re-runs only the configurations (every node has that conf), and a new pod gets the new setting", async () => {
    const file = join(cni, 'conf', '10-bridge.conf');
    const conf = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, `${JSON.stringify({ ...conf, mtu: 1400 }, null, 2)}\n`);
    const up = await clusterUp();
    timings.cniChangeUp = up.seconds;
    expect(actions(up.plan)).toEqual(cluster.nodes.map((n) => [n.name, 'keep', 'replace']));
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'mtu-check' }, spec: { nodeSelector: { 'kubernetes.io/hostname': 'cni-worker1' }, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: cluster.kubernetes!.images.test, imagePullPolicy: 'Never', command: ['sleep', '3600'] }] } };
    await kubectl(kube, ['apply', '-f', '-'], JSON.stringify(pod));
    await kubectl(kube, ['wait', '--for=condition=Ready', 'pod/mtu-check', '--timeout=300s']);
    expect((await kubectl(kube, ['exec', 'mtu-check', '--', 'cat', '/sys/class/net/eth0/mtu'])).trim()).toBe('1400');
    await kubectl(kube, ['delete', 'pod', 'mtu-check', '--wait=false']);
  });

  it('8. the bootstrap key is refused and the cluster key works', async () => {
    for (const node of cluster.nodes) {
      expect((await sshRun(nodeTarget(node.name, 'bootstrap'), 'true', { allowFailure: true })).exitCode).toBe(255);
      expect((await sshRun(nodeTarget(node.name, 'cluster'), 'true')).exitCode).toBe(0);
    }
  });

  it('9. configuring again changes nothing, and terraform plans no change for the unchanged stack', async () => {
    const { stdout } = await boxcar(['node', 'configure', 'cni-worker1', '--profile', 'lab']);
    // Commands without a changed file are idempotent ones (relinking the CNI plugins); 9b checks the state.
    expect(stdout).toContain(' 0 file(s) changed');
    const plan = JSON.parse((await boxcar(['cluster', 'plan', '--profile', 'lab', '--json'])).stdout) as { nodes: NodePlanSummary[]; departed: string[]; resourceChanges: { change: { actions: string[] } }[] };
    expect(actions(plan.nodes)).toEqual(cluster.nodes.map((n) => [n.name, 'keep', 'keep']));
    expect(plan.resourceChanges.map((change) => change.change.actions)).toEqual(cluster.nodes.flatMap(() => [['no-op'], ['no-op'], ['no-op']]));
    expect(plan.departed).toEqual([]);
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

  // A third worker joining and leaving (9c/9d before Kubernetes) is not run here any more: with Kubernetes each
  // bring-up under TCG costs ~10 min, and the CI run (90 min, the Kubernetes compile included) cannot hold it.
  // Scaling stays covered by the stack tests (the real terraform, apps/cluster) and the departed-node logic
  // by libs/nodes; the Kubernetes side of a departure (the node removed from the API) is untested end to end.

  // Snapshots and stop/start of this cluster, up and configured here (no boot of their own).
  describeSnapshotSteps(workspace, ssh, timings, { access: kube, version: KUBERNETES_VERSION, pods: ['web-e2e', 'client-e2e'] });

  // Faults a host deals a cluster (a killed qemu, lost pid files, a host restart, a node taken down by
  // hand), each followed by one cluster up on the same cluster.
  describeChaosSteps(workspace, ssh, timings, { access: kube, version: KUBERNETES_VERSION, pods: ['web-e2e', 'client-e2e'] });

  it('10. one byte changed in the worker layer rebuilds exactly that layer', async () => {
    const layersFile = join(profiles, 'lab', 'layers.json');
    const document = JSON.parse(readFileSync(layersFile, 'utf8')) as { layers: { name: string; env?: Record<string, string> }[] };
    // One byte of the worker's template: a variable of its scripts' environment that nothing reads.
    document.layers.find((layer) => layer.name === 'worker')!.env!.E2E = '1';
    writeFileSync(layersFile, JSON.stringify(document, null, 2));
    const dry = await bake('--dry-run');
    expect(dry.plan.layers.map((l) => [l.layer, l.status])).toEqual([
      ['base', 'cached'],
      ['node', 'cached'],
      ['kube', 'cached'],
      ['master', 'cached'],
      ['worker', 'build'],
    ]);
    expect(dry.plan.layers.at(-1)!.reasons).toEqual(['template']);
    const incremental = await bake();
    timings.incrementalBake = incremental.seconds;
    expect(incremental.result.packerRuns).toBe(1);
    expect(incremental.result.built.map((b) => b.layer)).toEqual(['worker']);
  });

  it("11. terraform's plan after the new bake, read from a published copy of the store, replaces exactly the two worker VMs and their configurations", async () => {
    // The plan reads store B, filled by `images publish --to` from the bake's store A, with A out of reach.
    // Its apply is left to the libvirt bring-up below, which boots every node from B: with Kubernetes a
    // re-up of two workers costs ~10 min under TCG, more than the CI run can hold.
    const storeB = await publishCopy();
    const summary = async (url: string) => (await openStore(url).listBoxes()).map((b) => [b.name, b.versions.map((v) => [v.version, v.key, v.providers.map((p) => p.checksum)])]);
    expect(await summary(storeB)).toEqual(await summary(env.BOXCAR_STORE));
    // What publish wrote beside the disks (catalogs, manifests) names no key; the disks are scanned as
    // file systems and bytes: the worker baked in step 10 here, the others in 1b.
    expect(await filesContaining(fileURLToPath(storeB), 'PRIVATE KEY', (path) => !/\.(qcow2|box)$/.test(path))).toEqual([]);
    const copy = openStore(storeB);
    const rebaked = await copy.latestLayer('lab', 'worker');
    expect(await scanImage(join(await copy.layerFiles('lab', 'worker', rebaked!.key), 'disk.qcow2'))).toEqual([]);
    await withoutStoreA(async () => {
      const plan = JSON.parse((await boxcar(['cluster', 'plan', '--profile', 'lab', '--store', storeB, '--json'])).stdout) as { nodes: NodePlanSummary[] };
      expect(actions(plan.nodes)).toEqual([['cni-master1', 'keep', 'keep'], ['cni-worker1', 'replace', 'replace'], ['cni-worker2', 'replace', 'replace']]);
      expect(plan.nodes[1]!.reasons[0]).toMatch(/^box 1\.\d{8}\.\d+ -> 1\.\d{8}\.\d+$/);
    });
  });

  it('12. cluster down empties the terraform state and leaves no qemu or vde_switch process, socket or overlay', async () => {
    await boxcar(['cluster', 'down', '--profile', 'lab']);
    expect(await terraformState()).toEqual([]);
    const processes = await execa('pgrep', ['-af', 'qemu-system|vde_switch'], { reject: false });
    expect(String(processes.stdout).split('\n').filter((line) => line.includes(env.BOXCAR_STATE_DIR))).toEqual([]);
    const providerDir = join(env.BOXCAR_STATE_DIR, cluster.name, 'qemu');
    expect(existsSync(providerDir) ? readdirSync(providerDir, { recursive: true }) : []).toEqual([]);
  });
});

describeLibvirtBringUp(workspace, timings);

afterAll(() => console.log(`e2e timings (s): ${JSON.stringify(timings)}`));
