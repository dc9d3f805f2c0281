import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { terraformBinary, terraformRunner, type NodePlanSummary } from '@boxcar/cluster';
import type { LabWorkspace } from './lab-workspace.ts';
import type { LibvirtNetns } from './libvirt-netns.ts';

/**
 * The lab cluster on the libvirt provider of a namespace's libvirtd, in a lab workspace that holds
 * the baked boxes: its own cluster config (the namespace's libvirt URI, an isolated management
 * network), state dir and Vagrant box directory. Everything runs inside the namespace, as a user would
 * run `ip netns exec <ns> npx nx run cluster:up`: terraform, and through it the provisioners' Vagrant
 * and SSH, reach the guests there.
 */
export function libvirtCluster(workspace: LabWorkspace, ns: LibvirtNetns, storeUrl?: string) {
  const { work, cluster } = workspace;
  const stateDir = join(work, 'state-libvirt');
  // storeUrl: another store than the workspace's (a copy made by `images publish --to`).
  const env = { BOXCAR_STATE_DIR: stateDir, VAGRANT_HOME: join(work, 'vagrant-home'), ...(storeUrl !== undefined && { BOXCAR_STORE: storeUrl }) };
  const configFile = join(work, 'cluster.libvirt.json');
  writeFileSync(configFile, `${JSON.stringify({ profile: 'lab', provider: 'libvirt', libvirt: { uri: ns.uri, managementNetworkMode: 'none' } }, null, 2)}\n`);
  const stackDir = join(stateDir, cluster.name, 'cdktf.out', 'stacks', cluster.name);

  /** The real CLI with this cluster's config, inside the namespace. */
  const boxcar = (...args: string[]) => workspace.boxcarWith({ env, netns: ns.netns }, ...args, '--config', configFile);
  return {
    stateDir,
    stackDir,
    boxcar,
    /** `cluster up`: terraform's plan per node, then the status once applied. */
    up: async () => JSON.parse((await boxcar('cluster', 'up', '--json')).stdout) as { plan: NodePlanSummary[]; status: { name: string; state: string; configured: boolean }[] },
    down: () => boxcar('cluster', 'down'),
    /** What terraform's state holds (read on the host: the state file needs no namespace). */
    state: async () => terraformRunner({ binary: (await terraformBinary())!, stackDir, logDir: join(work, 'terraform-logs') }).stateList(),
  };
}
