import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { NodePlanSummary } from '@boxcar/cluster';
import type { Cluster } from '@boxcar/model';
import { sshRun } from '@boxcar/providers';
import { expectCniAcrossNodes, expectEtcdHealthy, expectPingMatrix, type LabSsh } from './harness/lab-checks.ts';
import { expectNodesReadyAgain, type KubeAccess } from './harness/kube-checks.ts';

// Whole-cluster snapshots and stop/start on the lab cluster that is already up and configured (no boot
// of its own): save, break the cluster three ways, restore, and the lab checks pass again without a
// reboot; stop, start, the same; then a restore across a change in cni/, which cluster plan shows and
// cluster up applies.

export interface SnapshotLab {
  cluster: Cluster;
  env: { BOXCAR_STATE_DIR: string };
  /** The cni/ folder the cluster's configuration is made from (BOXCAR_CNI_DIR). */
  cni: string;
  /** The real CLI with the lab's environment; throws on a non-zero exit. */
  boxcar: (...args: string[]) => Promise<{ stdout: string; seconds: number }>;
}

export interface Status {
  name: string;
  state: string;
  configured: boolean;
  snapshot?: string;
}

/**
 * `cluster status --json` of the lab: exit 1 while a node is not running and configured (stopped, with
 * its state or not), and its JSON is still the answer.
 */
export async function clusterStatusJson(lab: SnapshotLab): Promise<Status[]> {
  const { stdout } = await lab.boxcar('cluster', 'status', '--profile', 'lab', '--json').catch((error: Error) => ({ stdout: error.message.replace(/^[^\n]*\n/, '') }));
  return JSON.parse(stdout) as Status[];
}

/** Registers the steps; the cluster must be up and configured (on qemu) when they run. */
export function describeSnapshotSteps(lab: SnapshotLab, ssh: LabSsh, timings: Record<string, number>, kubernetes: { access: KubeAccess; version: string; pods: string[] }): void {
  const { cluster, env, boxcar } = lab;
  const options = ['--profile', 'lab'];
  const status = () => clusterStatusJson(lab);
  const bootIds = async () => Promise.all(cluster.nodes.map(async (node) => (await ssh.on(node.name, 'cat /proc/sys/kernel/random/boot_id')).trim()));
  /** Every node's clock agrees with the host's: within a few seconds of the host's time around the question. */
  const expectClocksSet = async () => {
    for (const node of cluster.nodes) {
      const before = Date.now() / 1000;
      const guest = Number((await ssh.on(node.name, 'date -u +%s.%N')).trim());
      const after = Date.now() / 1000;
      expect(guest, node.name).toBeGreaterThanOrEqual(before - 5);
      expect(guest, node.name).toBeLessThanOrEqual(after + 5);
    }
  };
  const stateDir = join(env.BOXCAR_STATE_DIR, cluster.name);
  /** The snapshots inside a node's qcow2 overlay, by their names there. */
  const overlaySnapshots = async (node: string) => {
    const info = JSON.parse((await execa('qemu-img', ['info', '-U', '--output=json', join(stateDir, 'qemu', 'nodes', node, 'disk.qcow2')])).stdout) as { snapshots?: { name: string }[] };
    return (info.snapshots ?? []).map((snapshot) => snapshot.name);
  };
  let booted: string[] = [];

  describe.sequential('cluster snapshots and stop/start (qemu)', () => {
    it('S1. saves a snapshot of every node with the cluster paused together, and lists it with its size', async () => {
      booted = await bootIds();
      const saved = await boxcar('cluster', 'snapshot', 'save', 'e2e', ...options, '--json');
      timings.snapshotSave = saved.seconds;
      const list = JSON.parse((await boxcar('cluster', 'snapshot', 'list', ...options, '--json')).stdout) as { name: string; sizeBytes: number; nodes: { name: string; configHash?: string }[] }[];
      expect(list.map((snapshot) => snapshot.name)).toEqual(['e2e']);
      expect(list[0]!.nodes.map((node) => node.name)).toEqual(cluster.nodes.map((node) => node.name));
      expect(list[0]!.nodes.every((node) => /^[0-9a-f]{64}$/.test(node.configHash ?? ''))).toBe(true);
      // Saved memory: at least 64 MiB per node.
      expect(list[0]!.sizeBytes).toBeGreaterThan(cluster.nodes.length * 64 * 1024 * 1024);
      expect((await status()).map((s) => [s.name, s.state, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, 'running', true]));
      // Saved again under the same name: the new one is written beside the old, which goes only after.
      await boxcar('cluster', 'snapshot', 'save', 'e2e', ...options);
      expect((JSON.parse((await boxcar('cluster', 'snapshot', 'list', ...options, '--json')).stdout) as { name: string }[]).map((snapshot) => snapshot.name)).toEqual(['e2e']);
      for (const node of cluster.nodes) expect(await overlaySnapshots(node.name), node.name).toEqual(['e2e.s1']);
    });

    it('S2. restores it after etcd was stopped, a CNI conf deleted and a node lost its cluster address: the checks pass again, without a reboot', async () => {
      await ssh.on(cluster.etcd.node, 'sudo systemctl stop etcd');
      await ssh.on('cni-worker1', 'sudo rm /etc/cni/net.d/ipvlan.conf');
      await ssh.on('cni-worker2', 'sudo ip -4 addr flush dev enp0s8');
      const unhealthy = await sshRun(ssh.nodeTarget(cluster.master.name), `ETCDCTL_API=3 etcdctl --endpoints=${cluster.etcd.endpoints[0]} --command-timeout=5s endpoint health`, { allowFailure: true, timeoutMs: 60_000 });
      expect(unhealthy.exitCode).not.toBe(0);
      const worker2 = cluster.nodes.find((node) => node.name === 'cni-worker2')!;
      expect((await sshRun(ssh.nodeTarget(cluster.master.name), `ping -c 1 -W 2 ${worker2.ip}`, { allowFailure: true, timeoutMs: 60_000 })).exitCode).not.toBe(0);

      const restored = await boxcar('cluster', 'snapshot', 'restore', 'e2e', ...options, '--json');
      timings.snapshotRestore = restored.seconds;
      expect((JSON.parse(restored.stdout) as { olderConfigurations: string[] }).olderConfigurations).toEqual([]);
      expect(await bootIds()).toEqual(booted);
      await expectClocksSet();
      expect((await status()).map((s) => [s.name, s.state, s.configured, s.snapshot])).toEqual(cluster.nodes.map((n) => [n.name, 'running', true, 'e2e']));
      await expectPingMatrix(cluster, ssh);
      await expectEtcdHealthy(cluster, ssh);
      await expectCniAcrossNodes(cluster, ssh, 'e2e-restored');
      await expectNodesReadyAgain(kubernetes.access, kubernetes.version, kubernetes.pods);
    });

    it('S3. stop saves every running state and ends every qemu; start resumes them (no boot), clocks set, and the checks pass', async () => {
      const stopped = await boxcar('cluster', 'stop', ...options);
      timings.clusterStop = stopped.seconds;
      expect((await status()).map((s) => [s.name, s.state])).toEqual(cluster.nodes.map((n) => [n.name, 'stopped-with-state']));
      const processes = await execa('pgrep', ['-af', 'qemu-system'], { reject: false });
      expect(String(processes.stdout).split('\n').filter((line) => line.includes(stateDir))).toEqual([]);

      const started = await boxcar('cluster', 'start', ...options);
      timings.clusterStart = started.seconds;
      expect(await bootIds()).toEqual(booted);
      // The saved state went with the start: a crash from now on boots the disk, never back to the stop.
      for (const node of cluster.nodes) expect(await overlaySnapshots(node.name), node.name).not.toContain('boxcar-stopped');
      await expectClocksSet();
      expect((await status()).map((s) => [s.name, s.state, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, 'running', true]));
      await expectPingMatrix(cluster, ssh);
      await expectEtcdHealthy(cluster, ssh);
      await expectCniAcrossNodes(cluster, ssh, 'e2e-started');
      await expectNodesReadyAgain(kubernetes.access, kubernetes.version, kubernetes.pods);
    });

    it('S4. after a restore across a change in cni/, cluster plan replaces the configurations (not the VMs) and cluster up applies them', async () => {
      const conf = join(lab.cni, 'conf', 'ipvlan.conf');
      const original = readFileSync(conf, 'utf8');
      // A key the ipvlan plugin ignores: the configuration changes (boxcar re-renders the JSON, so only
      // a change of content counts), the network does not.
      writeFileSync(conf, `${JSON.stringify({ ...JSON.parse(original), boxcarE2e: `snapshot-${Date.now()}` }, null, 4)}\n`);
      // The later steps see the conf as it was: their next bring-up (a new worker box) reconfigures the workers anyway.
      onTestFinished(() => writeFileSync(conf, original));
      const changed = JSON.parse((await boxcar('cluster', 'up', ...options, '--json')).stdout) as { plan: NodePlanSummary[] };
      const reconfigured = changed.plan.filter((row) => row.configuration === 'replace').map((row) => row.node);
      // The workers install the conf (whether the master's configuration changes too is not this test's business).
      expect(reconfigured).toEqual(expect.arrayContaining(cluster.workers.map((worker) => worker.name)));
      const installedConf = async () => (await ssh.on('cni-worker1', 'sudo sha256sum /etc/cni/net.d/ipvlan.conf')).split(' ')[0];
      const installed = await installedConf();

      const restored = JSON.parse((await boxcar('cluster', 'snapshot', 'restore', 'e2e', ...options, '--json')).stdout) as { olderConfigurations: string[] };
      expect(restored.olderConfigurations).toEqual(reconfigured);
      expect(await installedConf()).not.toBe(installed);
      const plan = JSON.parse((await boxcar('cluster', 'plan', ...options, '--json')).stdout) as { nodes: NodePlanSummary[] };
      expect(plan.nodes.filter((row) => row.configuration === 'replace').map((row) => row.node)).toEqual(reconfigured);
      expect(plan.nodes.every((row) => row.vm === 'keep')).toBe(true);
      for (const row of plan.nodes.filter((candidate) => candidate.configuration === 'replace')) expect(row.reasons.join('; ')).toMatch(/restored from snapshot e2e/);

      const up = JSON.parse((await boxcar('cluster', 'up', ...options, '--json')).stdout) as { plan: NodePlanSummary[]; status: Status[] };
      expect(up.plan.filter((row) => row.configuration === 'replace').map((row) => row.node)).toEqual(reconfigured);
      expect(up.status.every((s) => s.configured)).toBe(true);
      expect(await installedConf()).toBe(installed);
      const again = JSON.parse((await boxcar('cluster', 'plan', ...options, '--json')).stdout) as { nodes: NodePlanSummary[] };
      expect(again.nodes.every((row) => row.vm === 'keep' && row.configuration === 'keep')).toBe(true);
    });

    it('S5. a snapshot deleted is gone from every node disk and from the list', async () => {
      await boxcar('cluster', 'snapshot', 'delete', 'e2e', ...options);
      expect(JSON.parse((await boxcar('cluster', 'snapshot', 'list', ...options, '--json')).stdout)).toEqual([]);
      for (const node of cluster.nodes) expect(await overlaySnapshots(node.name), node.name).toEqual([]);
      expect(existsSync(join(stateDir, 'snapshots', 'e2e.json'))).toBe(false);
      // The records are left as they were: the nodes still say where they came from.
      expect(readFileSync(join(stateDir, 'nodes', 'cni-worker1.json'), 'utf8')).toContain('"snapshot"');
    });
  });
}
