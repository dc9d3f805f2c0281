// The lab benchmark: `nx run e2e:bench`. Prints one table; takes ~35 min under TCG.
//
// - cold, no-op and incremental bake: seconds, packer runs, and per layer the seconds of each phase;
// - the verbs' own cost: a no-op bake and `cluster:status` through `nx run` and through the CLI;
// - per node, the configuration's seconds and the SSH connections it opened (sshd's log on the node);
//   the developer's loop: one file changed in cni/, `cluster up` until every node has it;
// - cluster up from baked boxes vs the same provisioning done at up time on the bare base layer
//   (the 2016 way: every node runs its layers' scripts when it boots, then the same configuration);
// - cluster up (qemu provider) vs the raw boot of three VMs from the same image to SSH-ready; the
//   same for the libvirt provider (Vagrant + vagrant-libvirt), in a network namespace of its own;
// - snapshot restore and cluster start after stop, against cluster up and the raw boot;
// - disk used by the running cluster vs three full copies of the image; peak RSS per VM.
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { openStore } from '@boxcar/box-store';
import { configurationRank } from '@boxcar/cluster';
import { loadLayerGraph } from '@boxcar/layers';
import { REPO_ROOT } from '@boxcar/model';
import { BAKE_PHASES } from '@boxcar/packer';
import { clusterPaths, clusterSshKey, nodeConfigure, writeNodeRecord, type NodeContext, type NodeRecord } from '@boxcar/nodes';
import { bakerBootstrapKey, detectAccelerator, qemuDown, qemuUp, sshCopy, sshRun, type SshTarget } from '@boxcar/providers';
import { labSsh } from './harness/lab-checks.ts';
import { labWorkspace } from './harness/lab-workspace.ts';
import { libvirtCluster } from './harness/libvirt-cluster.ts';
import { missingLibvirtPrerequisites, startLibvirtNetns } from './harness/libvirt-netns.ts';
import { rawBootSeconds } from './harness/libvirt-raw-boot.ts';

const workspace = labWorkspace('boxcar-bench-');
const { work, profiles, cni, env, cluster, boxcar: run } = workspace;
const rows: string[][] = [];

function row(measure: string, value: string, note = ''): void {
  rows.push([measure, value, note]);
  process.stderr.write(`bench: ${measure}: ${value} ${note}\n`);
}

async function timed<T>(action: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = Date.now();
  const value = await action();
  return { value, seconds: (Date.now() - started) / 1000 };
}

/** `action` with qemu VMs under `stateDir`, taken down whatever happens: a failed row leaves no VM running. */
async function withQemuVms<T>(stateDir: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } finally {
    await qemuDown(cluster, { stateDir });
  }
}

async function boxcar(...args: string[]): Promise<string> {
  return (await run(...args)).stdout;
}

interface BakeJson {
  result: { packerRuns: number; built: { layer: string; phases: Partial<Record<(typeof BAKE_PHASES)[number], number>> }[]; builds?: { build: string; seconds: number; steps: Record<string, number> }[] };
}

async function bake(): Promise<{ seconds: number; runs: number; built: BakeJson['result']['built']; builds: NonNullable<BakeJson['result']['builds']> }> {
  const { value, seconds } = await timed(() => boxcar('images', 'bake', '--profile', 'lab', '--json'));
  const { result } = JSON.parse(value) as BakeJson;
  return { seconds, runs: result.packerRuns, built: result.built, builds: result.builds ?? [] };
}

function compileRow(what: string, builds: NonNullable<BakeJson['result']['builds']>): void {
  const compile = builds.find((build) => build.build === 'kubernetes');
  row(what, compile ? `${compile.seconds.toFixed(0)} s` : '0 s (not compiled)', compile ? Object.entries(compile.steps).map(([step, s]) => `${step} ${s} s`).join(', ') : 'its outputs were on this machine under its key');
}

function phaseRows(what: string, built: BakeJson['result']['built']): void {
  for (const layer of built) {
    const phases = BAKE_PHASES.filter((phase) => layer.phases[phase] !== undefined);
    const total = phases.reduce((sum, phase) => sum + layer.phases[phase]!, 0);
    row(`${what}: layer ${layer.layer}, seconds per phase`, phases.map((phase) => `${phase} ${layer.phases[phase]!.toFixed(0)}`).join(', '), `${total.toFixed(0)} s in all; only provisioning is the layer's own work`);
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Median seconds of five runs of a command (after one run that warms caches and the Nx daemon). */
async function medianOfFive(file: string, args: string[]): Promise<number> {
  const once = () => execa(file, args, { cwd: REPO_ROOT, env: { ...env, NX_NO_CLOUD: 'true' }, stdin: 'ignore' });
  await once();
  const seconds: number[] = [];
  for (let i = 0; i < 5; i++) seconds.push((await timed(once)).seconds);
  return median(seconds);
}

const { on } = labSsh({ cluster, stateDir: env.BOXCAR_STATE_DIR, bootstrapKey: env.BOXCAR_BOOTSTRAP_KEY });

/** SSH logins the node's sshd has accepted since it booted, not counting the one that asks. */
async function acceptedLogins(node: string): Promise<number> {
  return Number(await on(node, "sudo journalctl -u ssh.service -o cat --no-pager | grep -c 'Accepted publickey' || true")) - 1;
}

/** Per node, the seconds terraform reports for its configuration resource in the last apply. */
function configureSeconds(): Record<string, number> {
  // The log holds every apply: `=== <time> terraform apply ...`, its output, `=== exit <code>`.
  const runs = readFileSync(join(env.BOXCAR_STATE_DIR, cluster.name, 'logs', 'terraform-apply.log'), 'utf8').split('\n=== ');
  const log = runs.filter((run) => /^\d{4}-\d\d-\d\dT/.test(run)).at(-1) ?? '';
  const seconds: Record<string, number> = {};
  for (const match of log.matchAll(/\.config-([\w-]+): (?:Creation|Modifications) complete after (?:(\d+)m)?(\d+)s/g)) {
    seconds[match[1]!] = Number(match[2] ?? 0) * 60 + Number(match[3]);
  }
  return seconds;
}

async function perNode(what: (node: string) => Promise<string> | string): Promise<string> {
  return (await Promise.all(cluster.nodes.map(async (node) => `${node.name.replace('cni-', '')} ${await what(node.name)}`))).join(', ');
}

/** `cluster up` as a user runs it: synth, the real terraform's plan and apply. */
async function clusterUp(): Promise<number> {
  return (await timed(() => boxcar('cluster', 'up', '--profile', 'lab'))).seconds;
}

function peakRssMb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

async function diskUsageMb(path: string): Promise<number> {
  const { stdout } = await execa('du', ['-sm', path]);
  return Number(stdout.split('\t')[0]);
}

const cold = await bake();
row('bake, cold (empty store, base image cached)', `${cold.seconds.toFixed(0)} s`, `${cold.runs} packer runs (goal: at most 270 s)`);
phaseRows('cold bake', cold.built);
compileRow('Kubernetes compile in that bake (native, go build cache of this machine)', cold.builds);
const noop = await bake();
row('bake, nothing changed', `${noop.seconds.toFixed(1)} s`, `${noop.runs} packer runs`);
compileRow('Kubernetes compile in the no-op bake', noop.builds);
const cliNoop = await medianOfFive(process.execPath, [join(REPO_ROOT, 'apps', 'cli', 'bin', 'boxcar.mjs'), 'images', 'bake', '--profile', 'lab']);
const nxNoop = await medianOfFive('npx', ['nx', 'run', 'images:bake', '--profile', 'lab']);
row('no-op bake through `nx run images:bake`', `${nxNoop.toFixed(2)} s`, `median of 5 (goal: under 2.5 s); the CLI alone: ${cliNoop.toFixed(2)} s`);
// One byte of the worker layer alone: its scripts' environment (the kube layer's scripts are shared).
const layersFile = join(profiles, 'lab', 'layers.json');
const layersDocument = JSON.parse(readFileSync(layersFile, 'utf8')) as { layers: { name: string; env?: Record<string, string> }[] };
layersDocument.layers.find((layer) => layer.name === 'worker')!.env!.BENCH = '1';
writeFileSync(layersFile, JSON.stringify(layersDocument, null, 2));
const incremental = await bake();
row('bake, one byte of the worker layer', `${incremental.seconds.toFixed(0)} s`, `${incremental.runs} packer run (goal: at most 75 s)`);
phaseRows('one-byte rebake', incremental.built);

const up = await clusterUp();
const firstConfigure = configureSeconds();
row('configuration per node, first up', await perNode((node) => `${firstConfigure[node] ?? '?'} s`), 'as terraform reports each node\'s configuration resource');
row('SSH logins per node, whole first up', await perNode(async (node) => String(await acceptedLogins(node))), "readiness probes and configuration, from each node's sshd log");
const cliStatus = await medianOfFive(process.execPath, [join(REPO_ROOT, 'apps', 'cli', 'bin', 'boxcar.mjs'), 'cluster', 'status', '--profile', 'lab']);
const nxStatus = await medianOfFive('npx', ['nx', 'run', 'cluster:status', '--profile', 'lab']);
row('`nx run cluster:status`, 3 nodes up', `${nxStatus.toFixed(2)} s`, `median of 5 (goal: under 2.5 s); the CLI alone: ${cliStatus.toFixed(2)} s`);

// The developer's loop: one CNI file changed, every node that has it updated (the workers).
const loginsBefore = await Promise.all(cluster.nodes.map((node) => acceptedLogins(node.name)));
const ipvlan = join(cni, 'conf', 'ipvlan.conf');
const conf = JSON.parse(readFileSync(ipvlan, 'utf8')) as { cniVersion: string; name: string };
writeFileSync(ipvlan, `${JSON.stringify({ ...conf, name: `${conf.name}-bench` }, null, 2)}\n`);
const loop = await clusterUp();
const loginsAfter = await Promise.all(cluster.nodes.map((node) => acceptedLogins(node.name)));
const seen = await Promise.all(cluster.workers.map(async (node) => (await on(node.name, 'cat /etc/cni/net.d/ipvlan.conf')).includes(`${conf.name}-bench`)));
if (seen.includes(false)) throw new Error(`the changed ipvlan.conf did not reach every worker: ${JSON.stringify(seen)}`);
row('one file changed in cni/, cluster up until every worker has it', `${loop.toFixed(1)} s`, 'goal: under 10 s (synth, terraform plan, apply of the 2 workers\' configurations, status)');
const loopConfigure = configureSeconds();
row('configuration per node after that change', await perNode((node) => (loopConfigure[node] === undefined ? 'not re-run' : `${loopConfigure[node]} s`)), `SSH logins it took: ${cluster.nodes.map((node, i) => loginsAfter[i]! - loginsBefore[i]! - 1).join(', ')} (less the one that counts)`);
const qemuPids = (await execa('pgrep', ['-f', `qemu-system.*${env.BOXCAR_STATE_DIR}`])).stdout.split('\n').map(Number);
const rss = qemuPids.map(peakRssMb);
const overlays = await diskUsageMb(join(env.BOXCAR_STATE_DIR, cluster.name, 'qemu'));
const store = await openStore(env.BOXCAR_STORE);
const workerBox = (await store.listBoxes()).find((box) => box.name === 'boxcar/lab-worker')!.versions.at(-1)!;
const workerDisk = join(await store.layerFiles('lab', workerBox.layer, workerBox.key), 'disk.qcow2');
const imageMb = statSync(workerDisk).size / 2 ** 20;
// The way back after breaking the cluster, and the morning start (issue #13), on the same cluster.
const snapshotSave = await timed(() => boxcar('cluster', 'snapshot', 'save', 'bench', '--profile', 'lab'));
const snapshotRestore = await timed(() => boxcar('cluster', 'snapshot', 'restore', 'bench', '--profile', 'lab'));
await timed(() => boxcar('cluster', 'stop', '--profile', 'lab'));
const clusterStart = await timed(() => boxcar('cluster', 'start', '--profile', 'lab'));
await boxcar('cluster', 'down', '--profile', 'lab');

// The raw limit: the same three VMs booted from the worker image to SSH-ready, nothing else.
const bootstrapKey = (await bakerBootstrapKey(env)).privateKey;
const raw = await withQemuVms(join(work, 'raw'), () =>
  timed(() => qemuUp(cluster, { stateDir: join(work, 'raw'), images: Object.fromEntries(cluster.nodes.map((n) => [n.name, workerDisk])), ssh: { user: 'vagrant', keyFile: bootstrapKey } })),
);

// The 2016 way: boot the bare base layer and install every node's packages at up time.
const graph = await loadLayerGraph('lab', profiles);
const baseLayer = await store.latestLayer('lab', 'base');
const baseDisk = join(await store.layerFiles('lab', 'base', baseLayer!.key), 'disk.qcow2');
const cache = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'boxcar', 'artifacts');
const oldPaths = clusterPaths(cluster, join(work, 'state-old'));
const old = await withQemuVms(join(work, 'old'), () => timed(async () => {
  const clusterKey = await clusterSshKey(oldPaths, cluster);
  const { nodes } = await qemuUp(cluster, { stateDir: join(work, 'old'), images: Object.fromEntries(cluster.nodes.map((n) => [n.name, baseDisk])), ssh: { user: 'vagrant', keyFile: bootstrapKey } });
  await Promise.all(
    nodes.map(async (info) => {
      const target: SshTarget = { host: info.sshHost, port: info.sshPort, user: 'vagrant', keyFile: bootstrapKey };
      const role = cluster.nodes.find((n) => n.name === info.name)!.role;
      // A bare boot has no first-boot channel: the node gets the cluster key over the baker's, as the channel would hand it.
      await sshRun(target, `install -d -m 700 ~/.ssh && echo '${clusterKey.publicKeyLine.trim()}' >> ~/.ssh/authorized_keys`);
      for (const layer of graph.layers.filter((l) => l.name === 'node' || l.name === role)) {
        await sshRun(target, 'sudo rm -rf /var/cache/boxcar && sudo install -d -o vagrant /var/cache/boxcar/artifacts');
        for (const artifact of layer.artifacts) {
          await sshCopy(target, join(cache, 'sha256', artifact.sha256!, artifact.filename), `/var/cache/boxcar/artifacts/${artifact.filename}`, 0o644);
        }
        for (const script of layer.scripts.filter((s) => !s.path.endsWith('cleanup.sh'))) {
          await sshCopy(target, script.absolute, `/tmp/${script.path.split('/').at(-1)}`, 0o755);
          const envVars = Object.entries({ ...layer.env, BOXCAR_ARTIFACTS: '/var/cache/boxcar/artifacts' }).map(([k, v]) => `${k}=${v}`).join(' ');
          await sshRun(target, `sudo env ${envVars} bash /tmp/${script.path.split('/').at(-1)}`, { timeoutMs: 30 * 60_000 });
        }
      }
    }),
  );
  // Then the same final configuration as the baked up, in the stack's order: etcd node, master, the rest.
  const context: NodeContext = { cluster, store, paths: oldPaths, cniDir: workspace.cni };
  for (const info of nodes) {
    const record: NodeRecord = { name: info.name, provider: 'qemu', box: { name: '(bare base layer)', version: '0', contentKey: baseLayer!.key }, ssh: { host: info.sshHost, port: info.sshPort, user: 'vagrant' } };
    await writeNodeRecord(context.paths, record);
  }
  for (const rank of [0, 1, 2]) {
    await Promise.all(cluster.nodes.filter((n) => configurationRank(n, cluster) === rank).map((n) => nodeConfigure(context, n.name)));
  }
}));

row('cluster up from baked boxes (qemu)', `${up.toFixed(0)} s`, 'boot + final configuration, 3 nodes');
row('same, provisioning at up time (2016 way)', `${old.seconds.toFixed(0)} s`, `${(old.seconds / up).toFixed(2)}x the baked up (layers' scripts, then the same configuration)`);
row('raw boot of 3 VMs to SSH-ready', `${raw.seconds.toFixed(0)} s`, `cluster up is ${(up / raw.seconds).toFixed(2)}x this limit`);
row('snapshot restore of the 3 nodes (saved in ' + `${snapshotSave.seconds.toFixed(1)} s)`, `${snapshotRestore.seconds.toFixed(1)} s`, `goal: at most 15 s; vs ${up.toFixed(0)} s of cluster up and ${raw.seconds.toFixed(0)} s of raw boot`);
row('cluster start after cluster stop', `${clusterStart.seconds.toFixed(1)} s`, `goal: at most 15 s; vs ${up.toFixed(0)} s of cluster up and ${raw.seconds.toFixed(0)} s of raw boot`);
row('disk of the running cluster (overlays)', `${overlays} MiB`, `vs ${(3 * imageMb).toFixed(0)} MiB for three full copies of the image`);
row('peak RSS per VM', rss.map((mb) => `${mb.toFixed(0)} MiB`).join(', '), `${cluster.nodes[0]!.memoryMb} MiB guest RAM each, TCG`);

// The libvirt provider: the same stack with provider libvirt, inside a namespace's libvirtd. The first
// up also adds both boxes to Vagrant and uploads them into the pool; the second finds them there.
const missingLibvirt = await missingLibvirtPrerequisites();
if (missingLibvirt.length > 0) row('libvirt provider', 'not measured', `missing: ${missingLibvirt.join(', ')}`);
else {
  const accel = await detectAccelerator();
  const ns = await startLibvirtNetns({ hideKvm: accel.accel !== 'kvm' });
  try {
    const lab = libvirtCluster(workspace, ns);
    const first = await timed(() => lab.up());
    await lab.down();
    const again = await timed(() => lab.up());
    await lab.down();
    const rawLibvirt = await rawBootSeconds(ns, {
      image: workerDisk,
      count: cluster.nodes.length,
      memoryMb: cluster.nodes[0]!.memoryMb,
      domainType: accel.accel === 'kvm' ? 'kvm' : 'qemu',
      ssh: { user: 'vagrant', keyFile: bootstrapKey },
    });
    row('cluster up from baked boxes (libvirt), first', `${first.seconds.toFixed(0)} s`, 'includes vagrant box add + upload of both boxes into the pool');
    row('cluster up from baked boxes (libvirt), again', `${again.seconds.toFixed(0)} s`, 'boxes already in Vagrant and the pool');
    row('raw boot of 3 libvirt domains to SSH-ready', `${rawLibvirt.seconds.toFixed(0)} s`, `cluster up (again) is ${(again.seconds / rawLibvirt.seconds).toFixed(2)}x this limit`);
  } finally {
    await ns.teardown();
  }
}

const width = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 8));
process.stdout.write(`\n${rows.map((r) => r.map((cell, i) => cell.padEnd(width[i]!)).join('  ')).join('\n')}\n`);
