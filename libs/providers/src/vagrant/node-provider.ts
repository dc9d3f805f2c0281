import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '@boxcar/model';
import { detectAccelerator } from '../accel.ts';
import { firstBootStrings, type MachineState, type NodeProvider, type ProviderContext } from '../provider.ts';
import { vagrantNodeDown, vagrantNodeUp, vagrantSshConfig, vagrantStatus, type VagrantRunOptions } from './runner.ts';
import { vagrantfile, type LibvirtVagrantOptions, type VagrantProviderName } from './vagrantfile.ts';

/**
 * A Vagrant provider (virtualbox, libvirt): one generated Vagrantfile for the whole cluster in the
 * provider's directory, boxes from the store's catalogs, `vagrant up|destroy <node>`.
 */
export function vagrantProvider(kind: VagrantProviderName): NodeProvider {
  // A node brought up before a provider change is still reached with the provider it runs on.
  const on = (cluster: Cluster): Cluster => (cluster.provider === kind ? cluster : { ...cluster, provider: kind });
  const runOptions = (context: ProviderContext): VagrantRunOptions => ({ stateDir: context.stateDir, env: vagrantEnv() });

  return {
    name: kind,

    async up(context, nodeName, boot) {
      const cluster = on(context.cluster);
      const clusterKey = await boot.clusterKey();
      const text = vagrantfile(cluster, {
        boxes: await boot.clusterBoxes(),
        privateKeyPath: await boot.bootstrapKey(),
        clusterKeyPath: clusterKey.privateKeyPath,
        // VirtualBox has no SMBIOS OEM strings to set: its nodes get the cluster key when configured.
        ...(kind === 'libvirt' ? { libvirt: await libvirtOptions(cluster), oemStrings: firstBootStrings({ authorizedKey: clusterKey.publicKey }) } : {}),
      });
      await vagrantNodeUp(cluster, nodeName, {
        ...runOptions(context),
        vagrantfileText: text,
        onLine: (line) => context.onProgress?.(nodeName, line),
        ...(context.signal ? { signal: context.signal } : {}),
      });
      const config = await vagrantSshConfig(cluster, nodeName, runOptions(context));
      return { ssh: { host: config.host, port: config.port } };
    },

    async down(context, nodeName) {
      return (await vagrantNodeDown(on(context.cluster), nodeName, runOptions(context))).destroyed;
    },

    async status(context) {
      if (!existsSync(join(context.stateDir, 'Vagrantfile'))) return {};
      const machines = await vagrantStatus(on(context.cluster), runOptions(context));
      const state = (vagrant: string): MachineState => (vagrant === 'running' ? 'running' : vagrant === 'not_created' ? 'absent' : 'stopped');
      return Object.fromEntries(Object.entries(machines).filter(([, machine]) => machine.state !== 'not_created').map(([name, machine]) => [name, state(machine.state)]));
    },

    async cleanup(context) {
      // Every machine the Vagrantfile on disk knows, whether or not the model still names it.
      const stopped: string[] = [];
      for (const name of Object.keys(await this.status(context))) {
        if (await this.down(context, name)) stopped.push(name);
      }
      return stopped;
    },
  };
}

function vagrantEnv(): Record<string, string> {
  return process.env.VAGRANT_HOME ? { VAGRANT_HOME: process.env.VAGRANT_HOME } : {};
}

/** The accelerator found by booting (KVM only where a guest really runs) and the user's libvirt settings. */
async function libvirtOptions(cluster: Cluster): Promise<LibvirtVagrantOptions> {
  const accel = await detectAccelerator();
  return {
    ...(accel.accel === 'kvm' ? { driver: 'kvm' as const } : { driver: 'qemu' as const, cpuModel: 'qemu64' }),
    ...(cluster.libvirt.uri ? { uri: cluster.libvirt.uri } : {}),
    ...(cluster.libvirt.managementNetworkMode ? { managementNetworkMode: cluster.libvirt.managementNetworkMode } : {}),
  };
}
