import { execa } from 'execa';
import type { Cluster } from '@boxcar/model';
import type { NodeRunState, NodeSnapshots, ProviderContext, SnapshotInfo } from '../provider.ts';

// Snapshots of the libvirt provider's nodes through libvirt itself (virsh), on the domains
// vagrant-libvirt made: `<cluster>-<node>` (the Vagrantfile's default_prefix). Internal snapshots with
// memory (snapshot-create-as), kept in the domain's qcow2 volume and in libvirt's snapshot metadata;
// stop/start is libvirt's managed save. Vagrant's own `vagrant snapshot` is not used: vagrant-libvirt
// takes disk-only snapshots, which would not bring back etcd's or Felix's running state.

const DEFAULT_URI = 'qemu:///system';

export class LibvirtSnapshotError extends Error {
  constructor(node: string, detail: string) {
    super(`libvirt node ${node}: ${detail}`);
    this.name = 'LibvirtSnapshotError';
  }
}

/** The domain vagrant-libvirt made for a node. */
export function libvirtDomain(cluster: Cluster, node: string): string {
  return `${cluster.name}-${node}`;
}

/** The virsh argv for one command on the cluster's libvirt (its configured URI, else vagrant-libvirt's default). */
export function virshArgs(cluster: Cluster, args: readonly string[]): string[] {
  return ['-c', cluster.libvirt.uri ?? DEFAULT_URI, ...args];
}

async function virsh(context: ProviderContext, node: string, args: readonly string[]): Promise<string> {
  const result = await execa('virsh', virshArgs(context.cluster, args), { reject: false, stdin: 'ignore', timeout: 10 * 60_000 });
  if (result.exitCode !== 0) throw new LibvirtSnapshotError(node, `virsh ${args.join(' ')}: ${String(result.stderr).trim() || `exit status ${result.exitCode}`}`);
  return String(result.stdout).trim();
}

async function snapshotNames(context: ProviderContext, node: string): Promise<string[]> {
  const text = await virsh(context, node, ['snapshot-list', '--domain', libvirtDomain(context.cluster, node), '--name']);
  return text.split('\n').map((line) => line.trim()).filter(Boolean);
}

/** The domain's disk volumes (their qcow2 holds the internal snapshots and their saved memory). */
async function diskPaths(context: ProviderContext, node: string): Promise<string[]> {
  const text = await virsh(context, node, ['domblklist', '--domain', libvirtDomain(context.cluster, node), '--details']);
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[0] === 'file' && fields[1] === 'disk' && fields[3] !== undefined && fields[3] !== '-')
    .map((fields) => fields.slice(3).join(' '));
}

/** The domain's state as libvirt has it: also paused (snapshot commands) and stopped with a managed save (cluster stop). */
export async function libvirtRunState(context: ProviderContext, node: string): Promise<NodeRunState> {
  const domain = libvirtDomain(context.cluster, node);
  const result = await execa('virsh', virshArgs(context.cluster, ['domstate', domain]), { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) return 'absent';
  const state = String(result.stdout).trim();
  if (state === 'running') return 'running';
  if (state === 'paused') return 'paused';
  const info = await virsh(context, node, ['dominfo', domain]);
  return /^Managed save:\s+yes$/m.test(info) ? 'stopped-with-state' : 'stopped';
}

export function libvirtSnapshots(): NodeSnapshots {
  const domain = (context: ProviderContext, node: string) => libvirtDomain(context.cluster, node);

  return {
    pause: async (context, node) => void (await virsh(context, node, ['suspend', domain(context, node)])),
    resume: async (context, node) => void (await virsh(context, node, ['resume', domain(context, node)])),
    async save(context, node, name) {
      // snapshot-create-as refuses a name that exists: the older one of that name is replaced.
      if ((await snapshotNames(context, node)).includes(name)) await virsh(context, node, ['snapshot-delete', '--domain', domain(context, node), '--snapshotname', name]);
      await virsh(context, node, ['snapshot-create-as', '--domain', domain(context, node), '--name', name, '--atomic']);
    },
    restore: async (context, node, name) => void (await virsh(context, node, ['snapshot-revert', '--domain', domain(context, node), '--snapshotname', name, '--paused'])),
    async remove(context, node, name) {
      if (!(await snapshotNames(context, node)).includes(name)) return;
      await virsh(context, node, ['snapshot-delete', '--domain', domain(context, node), '--snapshotname', name]);
    },
    async list(context, node): Promise<SnapshotInfo[]> {
      const names = await snapshotNames(context, node);
      if (!names.length) return [];
      // The saved memory of each snapshot, as qcow2 records it in the volume.
      const sizes = new Map<string, number>();
      for (const disk of await diskPaths(context, node)) {
        const info = await execa('qemu-img', ['info', '--output=json', '-U', disk], { reject: false, stdin: 'ignore' });
        if (info.exitCode !== 0) continue;
        for (const snapshot of (JSON.parse(String(info.stdout)) as { snapshots?: { name: string; 'vm-state-size': number }[] }).snapshots ?? []) {
          sizes.set(snapshot.name, (sizes.get(snapshot.name) ?? 0) + snapshot['vm-state-size']);
        }
      }
      return names.map((name) => ({ name, sizeBytes: sizes.get(name) ?? 0 }));
    },
    // Managed save: libvirt keeps the memory in its own save file and starts the domain from it.
    suspend: async (context, node) => void (await virsh(context, node, ['managedsave', domain(context, node), '--paused'])),
    async wake(context, node) {
      await virsh(context, node, ['start', domain(context, node), '--paused']);
      // The guest keeps its address: its memory holds its DHCP lease, and the management network its reservation.
      return undefined;
    },
  };
}

/**
 * What libvirt refuses to undefine with the domain: its snapshots' metadata and a managed save. Removed
 * before `vagrant destroy`, so that taking a node down works after snapshots or a stop; nothing to do
 * (and no error) where the domain or libvirt is not there.
 */
export async function dropLibvirtState(cluster: Cluster, node: string): Promise<void> {
  const run = (args: readonly string[]) => execa('virsh', virshArgs(cluster, args), { reject: false, stdin: 'ignore' });
  const listed = await run(['snapshot-list', '--domain', libvirtDomain(cluster, node), '--name']);
  if (listed.exitCode !== 0) return;
  for (const name of String(listed.stdout).split('\n').map((line) => line.trim()).filter(Boolean)) {
    await run(['snapshot-delete', '--domain', libvirtDomain(cluster, node), '--snapshotname', name]);
  }
  await run(['managedsave-remove', libvirtDomain(cluster, node)]);
}
