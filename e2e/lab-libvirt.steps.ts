import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { detectAccelerator, sshArgs, type SshTarget } from '@boxcar/providers';
import type { LabWorkspace } from './harness/lab-workspace.ts';
import { libvirtCluster } from './harness/libvirt-cluster.ts';
import { leftoverNamespaces, missingLibvirtPrerequisites, namespaceExists, startLibvirtNetns, type LibvirtNetns } from './harness/libvirt-netns.ts';

// The lab cluster brought up a second time from the same baked boxes, through the libvirt provider:
// the product's own path (cluster synth, the stack's provisioners calling `boxcar node up|configure`,
// which run the real Vagrant with vagrant-libvirt), applied by the real terraform. libvirtd, virtlogd,
// terraform, Vagrant, boxcar and every SSH session run inside a network namespace this test creates,
// so the guests' addresses (the management network's DHCP leases, 192.168.10.0/24) exist only there.

const missing = await missingLibvirtPrerequisites();

/** Registers the steps; `workspace` must already hold the baked lab boxes when they run. */
export function describeLibvirtBringUp(workspace: LabWorkspace, timings: Record<string, number>): void {
  const { cluster } = workspace;
  let ns: LibvirtNetns | undefined;
  let lab: ReturnType<typeof libvirtCluster> | undefined;

  const running = () => {
    if (!ns || !lab) throw new Error('the libvirt namespace is not running (an earlier step failed)');
    return { ns, lab };
  };
  const nodeTarget = (name: string, key: 'cluster' | 'bootstrap'): SshTarget => {
    const { stateDir } = running().lab;
    const record = JSON.parse(readFileSync(join(stateDir, cluster.name, 'nodes', `${name}.json`), 'utf8'));
    // The bootstrap key is the baker's (the workspace's): the store holds no private key.
    const keyFile = key === 'cluster' ? join(stateDir, cluster.name, 'ssh', 'cluster_ed25519') : workspace.env.BOXCAR_BOOTSTRAP_KEY;
    return { host: record.ssh.host, port: record.ssh.port, user: record.ssh.user, keyFile };
  };
  const ssh = async (target: SshTarget, command: string) => {
    const [program, args] = running().ns.wrap('ssh', [...sshArgs(target), command]);
    const result = await execa(program, args, { stdin: 'ignore', reject: false, timeout: 120_000 });
    return { exitCode: result.exitCode, stdout: String(result.stdout).trim() };
  };
  const on = async (name: string, command: string) => {
    const result = await ssh(nodeTarget(name, 'cluster'), command);
    if (result.exitCode !== 0) throw new Error(`${name}: \`${command}\` exited ${result.exitCode}`);
    return result.stdout;
  };

  describe.skipIf(missing.length > 0)(`the same cluster through Vagrant + libvirt${missing.length ? ` (skipped: missing ${missing.join(', ')})` : ''}`, () => {
    afterAll(async () => {
      // Whatever failed, no domain, daemon or namespace of this test may survive it.
      await lab?.boxcar('cluster', 'down').catch((error: Error) => console.error(error.message));
      await ns?.teardown();
    });

    it('L1. brings the three nodes up from the baked boxes, copied to store B by `images publish --to`, by applying the stack inside a network namespace', async () => {
      const accel = await detectAccelerator();
      ns = await startLibvirtNetns({ hideKvm: accel.accel !== 'kvm' });
      // Store B (the qemu re-up made it; publishing again verifies it): Vagrant adds the boxes from B's
      // catalogs while the bake's store A is out of reach.
      lab = libvirtCluster(workspace, ns, await workspace.publishCopy());
      const started = Date.now();
      const report = await workspace.withoutStoreA(() => lab!.up());
      timings.libvirtClusterUp = (Date.now() - started) / 1000;
      expect(report.plan.map((row) => [row.node, row.vm, row.configuration])).toEqual(cluster.nodes.map((n) => [n.name, 'create', 'create']));
      expect(report.status.map((s) => [s.name, s.running, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, true, true]));
      const domains = (await ns.virsh(['list', '--name'])).split('\n').map((line) => line.trim()).filter(Boolean);
      expect(domains.sort()).toEqual(cluster.nodes.map((n) => `${cluster.name}-${n.name}`).sort());
      const status = JSON.parse((await running().lab.boxcar('cluster', 'status', '--json')).stdout) as { name: string; running: boolean; configured: boolean }[];
      expect(status.map((s) => [s.name, s.running, s.configured])).toEqual(cluster.nodes.map((n) => [n.name, true, true]));
    });

    it('L2. every node is reachable with its hostname, its static IP and VPP\'s NIC where VPP expects it', async () => {
      const vpp = cluster.network.nics.vpp;
      for (const node of cluster.nodes) {
        const facts = await on(
          node.name,
          'hostname; ip -4 -o addr show dev enp0s8 | awk \'{print $4}\'; cat /sys/class/net/enp0s8/address; ' +
            `ip -4 -o addr show dev ${vpp.name} | wc -l; basename "$(readlink -f /sys/class/net/${vpp.name}/device)"; ` +
            `cat /sys/class/net/${vpp.name}/device/vendor /sys/class/net/${vpp.name}/device/device`,
        );
        const [hostname, address, mac, vppAddresses, vppPci, vendor, device] = facts.split('\n');
        expect(hostname).toBe(node.name);
        expect(address).toBe(`${node.ip}/${cluster.network.prefixLength}`);
        expect(mac).toBe(node.macs.cluster);
        // VPP's NIC: unconfigured, at the PCI address VPP is given, an Intel 82540EM (8086:100e).
        expect(vppAddresses).toBe('0');
        expect(vppPci).toBe(vpp.pciAddress);
        expect([vendor, device]).toEqual(['0x8086', '0x100e']);
      }
    });

    it('L3. the full ping matrix passes on the cluster network; the bootstrap key is refused', async () => {
      const failures: string[] = [];
      for (const from of cluster.nodes) {
        for (const to of cluster.nodes.filter((n) => n !== from)) {
          const result = await ssh(nodeTarget(from.name, 'cluster'), `ping -c 2 -W 3 ${to.ip}`);
          if (result.exitCode !== 0) failures.push(`${from.name} -> ${to.name} (${to.ip})`);
        }
        expect((await ssh(nodeTarget(from.name, 'bootstrap'), 'true')).exitCode).toBe(255);
      }
      expect(failures).toEqual([]);
    });

    it('L4. cluster down destroys the stack (vagrant destroy per node): empty state, no domain, network or disk', async () => {
      const { ns: namespace, lab: libvirt } = running();
      const started = Date.now();
      expect((await libvirt.state()).sort()).toEqual(cluster.nodes.flatMap((n) => [`terraform_data.config-${n.name}`, `terraform_data.vm-${n.name}`]).sort());
      await libvirt.down();
      timings.libvirtClusterDown = (Date.now() - started) / 1000;
      expect(await libvirt.state()).toEqual([]);
      expect((await namespace.virsh(['list', '--all', '--name'])).trim()).toBe('');
      expect((await namespace.virsh(['net-list', '--all', '--name'])).trim()).toBe('');
      // What stays in the pool is vagrant-libvirt's copy of each box image, kept for the next `up`.
      const volumes = (await namespace.virsh(['vol-list', 'default'])).split('\n').slice(2).map((line) => line.trim().split(/\s+/)[0]).filter(Boolean);
      expect(volumes.filter((volume) => !volume!.includes('_vagrant_box_image_'))).toEqual([]);
      // `node down` forgot every node (`cluster status` would now say "not brought up" and exit 1).
      for (const node of cluster.nodes) expect(existsSync(join(libvirt.stateDir, cluster.name, 'nodes', `${node.name}.json`))).toBe(false);

      const netns = namespace.netns;
      const teardown = await namespace.teardown();
      ns = undefined;
      lab = undefined;
      expect(teardown.netnsRemoved).toBe(true);
      expect(await namespaceExists(netns)).toBe(false);
      expect(await leftoverNamespaces()).not.toContain(netns);
    });
  });
}
