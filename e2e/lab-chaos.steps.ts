import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import type { NodePlanSummary } from '@boxcar/cluster';
import { expectCniAcrossNodes, expectEtcdHealthy, expectPingMatrix, type LabSsh } from './harness/lab-checks.ts';
import { expectNodesReadyAgain, type KubeAccess } from './harness/kube-checks.ts';
import { clusterStatusJson, type SnapshotLab, type Status } from './lab-snapshots.steps.ts';

// What a host does to a cluster, on the lab cluster that is already up and configured (no boot of its
// own before the fault): a host restart (every qemu and vde_switch gone) with a node taken down by hand.
// One `cluster up` must bring the cluster back, configured and Ready, every node whose disk survived
// with its files, and the next plan must change nothing. A single node killed, or one whose pid and port
// files were lost, takes the same path on one node (its boot replaced, its disk booted): that is tested
// on the real qemu provider (libs/providers qemu tests) and the real terraform (apps/cluster), not here,
// where every reboot with Kubernetes costs minutes of the CI run.

const MARK = '/var/lib/boxcar-e2e-mark';

export function describeChaosSteps(lab: SnapshotLab, ssh: LabSsh, timings: Record<string, number>, kubernetes: { access: KubeAccess; version: string; pods: string[] }): void {
  const { cluster, env, boxcar } = lab;
  const options = ['--profile', 'lab'];
  const qemuDir = join(env.BOXCAR_STATE_DIR, cluster.name, 'qemu');
  const status = () => clusterStatusJson(lab);
  const plan = async () => (JSON.parse((await boxcar('cluster', 'plan', ...options, '--json')).stdout) as { nodes: NodePlanSummary[] }).nodes;
  const rows = (nodes: NodePlanSummary[]) => nodes.map((row) => [row.node, row.vm, row.boot, row.configuration]);
  const unchanged = (nodes: NodePlanSummary[]) => nodes.every((row) => row.vm === 'keep' && row.boot === 'keep' && row.configuration === 'keep');
  /** A file on the node's disk, synced: a kill -9 of its qemu loses the guest's page cache, not its disk. */
  const mark = (node: string, text: string) => ssh.on(node, `echo ${text} | sudo tee ${MARK} >/dev/null && sync`);
  const marked = async (node: string) => (await ssh.on(node, `cat ${MARK} 2>/dev/null || echo none`)).trim();
  const up = async () => {
    const { stdout, seconds } = await boxcar('cluster', 'up', ...options, '--json');
    const report = JSON.parse(stdout) as { plan: NodePlanSummary[]; status: Status[] };
    expect(report.status.map((s) => [s.name, s.configured])).toEqual(cluster.nodes.map((node) => [node.name, true]));
    return { ...report, seconds };
  };
  const expectClusterWorks = async (pods: string[]) => {
    await expectPingMatrix(cluster, ssh);
    await expectEtcdHealthy(cluster, ssh);
    await expectNodesReadyAgain(kubernetes.access, kubernetes.version, pods);
  };

  describe.sequential('cluster up converges from what a host does to it (qemu)', () => {
    it('C1. a host restart (every qemu and vde_switch of the cluster killed) with cni-worker2 taken down by hand: one cluster up boots the others from their disks, files kept, makes cni-worker2 again from its box, and the checks pass', async () => {
      for (const node of cluster.nodes) await mark(node.name, `c1-${node.name}`);
      await boxcar('node', 'down', 'cni-worker2', ...options);
      const processes = await execa('pgrep', ['-f', `${qemuDir}/`], { reject: false });
      const pids = String(processes.stdout).split('\n').filter(Boolean).map(Number);
      expect(pids.length).toBeGreaterThanOrEqual(4); // two qemu, two vde_switch
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await expect.poll(async () => (await status()).map((s) => [s.name, s.state]), { timeout: 60_000 }).toEqual([['cni-master1', 'stopped'], ['cni-worker1', 'stopped'], ['cni-worker2', 'absent']]);

      const planned = await plan();
      expect(rows(planned)).toEqual([['cni-master1', 'keep', 'replace', 'replace'], ['cni-worker1', 'keep', 'replace', 'replace'], ['cni-worker2', 'replace', 'replace', 'replace']]);
      expect(planned[2]!.reasons[0]).toBe('it was taken down outside terraform (node down): it is made again');

      const applied = await up();
      timings.chaosHostRestartUp = applied.seconds;
      expect([await marked('cni-master1'), await marked('cni-worker1'), await marked('cni-worker2')]).toEqual(['c1-cni-master1', 'c1-cni-worker1', 'none']);
      await expectClusterWorks(kubernetes.pods);
      await expectCniAcrossNodes(cluster, ssh, 'e2e-chaos');
      expect(unchanged(await plan())).toBe(true);
    });
  });
}
