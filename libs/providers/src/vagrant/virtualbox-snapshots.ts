import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { NodeRunState, NodeSnapshots, ProviderContext, SnapshotInfo } from '../provider.ts';
import { parseMachineReadable, vagrantMachineCommand, vagrantMachineQuery, type VagrantRunOptions } from './runner.ts';
import { unlessMissing } from '@boxcar/kit';

// Snapshots and stop/start of the virtualbox provider's nodes through Vagrant's own verbs: `vagrant
// snapshot save|restore|delete|list` (VirtualBox snapshots with the machine's saved state) and `vagrant
// resume`. Two steps Vagrant has no verb for go to VBoxManage, as Vagrant's driver does: pausing a
// node, and saving a paused node's state (`vagrant suspend` skips a machine that is not running).
// Runnable only where VirtualBox is installed; here the commands are checked against the installed
// Vagrant's options and a stand-in vagrant (virtualbox-snapshots.test.ts).

export class VirtualboxSnapshotError extends Error {
  constructor(node: string, detail: string) {
    super(`virtualbox node ${node}: ${detail}`);
    this.name = 'VirtualboxSnapshotError';
  }
}

/** A node's state from Vagrant's VirtualBox state id (VirtualBox's VMState). Pure. */
export function virtualboxRunState(vagrantState: string): NodeRunState {
  if (vagrantState === 'not_created') return 'absent';
  if (vagrantState === 'running' || vagrantState === 'paused') return vagrantState;
  // A saved machine holds its memory in VirtualBox's state file: `vagrant resume` starts it from there.
  return vagrantState === 'saved' ? 'stopped-with-state' : 'stopped';
}

/** The snapshot names in `vagrant snapshot list --machine-readable` output (none when Vagrant says so). Pure. */
export function parseSnapshotList(text: string): string[] {
  const rows = parseMachineReadable(text).filter((row) => row.type === 'ui');
  // With no snapshot Vagrant prints one output line and a detail line of advice.
  if (rows.some((row) => row.data[0] === 'output' && /^No snapshots have been taken yet/.test(row.data[1] ?? ''))) return [];
  return rows.filter((row) => row.data[0] === 'detail').map((row) => (row.data[1] ?? '').trim()).filter(Boolean);
}

export function virtualboxSnapshots(runOptions: (context: ProviderContext) => VagrantRunOptions): NodeSnapshots {
  const vagrant = (context: ProviderContext, node: string, action: string, args: readonly string[]) =>
    vagrantMachineCommand(context.cluster, node, action, args, { ...runOptions(context), onLine: (line) => context.onProgress?.(node, line) });
  const names = async (context: ProviderContext, node: string) => parseSnapshotList(await vagrantMachineQuery(context.cluster, node, 'snapshot-list', ['snapshot', 'list', node], runOptions(context)));
  const vboxManage = async (context: ProviderContext, node: string, args: readonly string[]) => {
    const id = await machineId(context, node);
    const result = await execa('VBoxManage', ['controlvm', id, ...args], { reject: false, stdin: 'ignore', timeout: 10 * 60_000 });
    if (result.exitCode !== 0) throw new VirtualboxSnapshotError(node, `VBoxManage controlvm ${id} ${args.join(' ')}: ${String(result.stderr).trim() || `exit status ${result.exitCode}`}`);
  };

  return {
    pause: (context, node) => vboxManage(context, node, ['pause']),
    // Unpauses a paused machine; starts a saved one (after a restore or a stop) from its state.
    resume: async (context, node) => void (await vagrant(context, node, 'resume', ['resume', '--no-provision', node])),
    save: async (context, node, name) => void (await vagrant(context, node, 'snapshot-save', ['snapshot', 'save', '--force', node, name])),
    // Vagrant powers the machine off and restores; left saved (not started), so that resume starts all at once.
    restore: async (context, node, name) => void (await vagrant(context, node, 'snapshot-restore', ['snapshot', 'restore', '--no-provision', '--no-start', node, name])),
    async remove(context, node, name) {
      if (!(await names(context, node)).includes(name)) return;
      await vagrant(context, node, 'snapshot-delete', ['snapshot', 'delete', node, name]);
    },
    // VirtualBox keeps a snapshot's memory in a state file that neither Vagrant nor the snapshot list names: size unknown.
    list: async (context, node): Promise<SnapshotInfo[]> => (await names(context, node)).map((name) => ({ name })),
    suspend: (context, node) => vboxManage(context, node, ['savestate']),
    async wake(context, node) {
      // VirtualBox cannot start a saved machine paused: each node runs as soon as it is loaded (the
      // three within seconds of each other), and the clocks are set after.
      await vagrant(context, node, 'resume', ['resume', '--no-provision', node]);
      return undefined;
    },
  };
}

/** VirtualBox's id of the node's machine, as Vagrant recorded it when it created the machine. */
async function machineId(context: ProviderContext, node: string): Promise<string> {
  const file = join(context.stateDir, '.vagrant', 'machines', node, 'virtualbox', 'id');
  const id = (await unlessMissing(file, readFile(file, 'utf8'), '')).trim();
  if (!id) throw new VirtualboxSnapshotError(node, `no VirtualBox machine recorded in ${file} (is the node up?)`);
  return id;
}
