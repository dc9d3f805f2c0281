import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '@boxcar/model';
import { detectAccelerator } from '../accel.ts';
import { aptInstall, firstBootStrings, forwardsKubernetesApi, type NodeProvider, type NodeRunState, type Prerequisite, type ProviderContext } from '../provider.ts';
import { API_FORWARD_WAIT_MS, kubernetesApiPort, listening } from './api-port.ts';
import { dropLibvirtState, libvirtRunState, libvirtSnapshots } from './libvirt-snapshots.ts';
import { vagrantNodeDown, vagrantNodeUp, vagrantSshConfig, vagrantStatus, type VagrantRunOptions } from './runner.ts';
import { vagrantfile, type LibvirtVagrantOptions, type VagrantProviderName } from './vagrantfile.ts';
import { virtualboxRunState, virtualboxSnapshots } from './virtualbox-snapshots.ts';

/**
 * A Vagrant provider (virtualbox, libvirt): one generated Vagrantfile for the whole cluster in the
 * provider's directory, boxes from the store's catalogs, `vagrant up|destroy <node>`.
 */
const VAGRANT: Prerequisite = { name: 'vagrant', command: ['vagrant', '--version'], howToGet: aptInstall('vagrant') };

/** What each Vagrant provider runs on the host. */
const VAGRANT_PREREQUISITES: Record<VagrantProviderName, Prerequisite[]> = {
  libvirt: [
    { name: 'qemu-system-x86_64', command: ['qemu-system-x86_64', '--version'], howToGet: aptInstall('qemu-system-x86'), detail: "libvirt's hypervisor" },
    VAGRANT,
    { name: 'vagrant-libvirt', command: ['vagrant', 'plugin', 'list'], expect: /vagrant-libvirt \(([^,)]+)/, howToGet: aptInstall('vagrant-libvirt'), detail: 'vagrant provider for libvirt' },
    { name: 'libvirtd', command: ['libvirtd', '--version'], howToGet: aptInstall('libvirt-daemon-system') },
  ],
  virtualbox: [
    VAGRANT,
    { name: 'VBoxManage', command: ['VBoxManage', '--version'], howToGet: "VirtualBox is not in Debian: install it from virtualbox.org (Oracle's apt repository)", detail: 'virtualbox provider' },
  ],
};

export function vagrantProvider(kind: VagrantProviderName): NodeProvider {
  // A node brought up before a provider change is still reached with the provider it runs on.
  const on = (cluster: Cluster): Cluster => (cluster.provider === kind ? cluster : { ...cluster, provider: kind });
  const runOptions = (context: ProviderContext): VagrantRunOptions => ({ stateDir: context.stateDir, env: vagrantEnv() });

  return {
    name: kind,
    // VirtualBox has no SMBIOS OEM strings to set: its nodes get the cluster key when configured.
    firstBootChannel: kind === 'libvirt',
    prerequisites: VAGRANT_PREREQUISITES[kind],

    async up(context, nodeName, boot) {
      const cluster = on(context.cluster);
      const clusterKey = await boot.clusterKey();
      const bootstrapKey = await boot.bootstrapKey();
      const apiPort = await kubernetesApiPort(context, cluster, kind, nodeName);
      const text = vagrantfile(cluster, {
        boxes: await boot.clusterBoxes(),
        ...(apiPort !== undefined && { apiPort }),
        ...(bootstrapKey !== undefined && { privateKeyPath: bootstrapKey }),
        clusterKeyPath: clusterKey.privateKeyPath,
        ...(kind === 'libvirt' ? { libvirt: await libvirtOptions(cluster), oemStrings: firstBootStrings({ authorizedKey: clusterKey.publicKey }) } : {}),
      });
      await vagrantNodeUp(cluster, nodeName, {
        ...runOptions(context),
        vagrantfileText: text,
        onLine: (line) => context.onProgress?.(nodeName, line),
        ...(context.signal ? { signal: context.signal } : {}),
      });
      const config = await vagrantSshConfig(cluster, nodeName, runOptions(context));
      if (apiPort === undefined || !forwardsKubernetesApi(cluster, nodeName)) return { ssh: { host: config.host, port: config.port } };
      // Vagrant started the forward in the background (vagrant-libvirt: an ssh tunnel) and does not say whether it works.
      if (!(await listening(apiPort, API_FORWARD_WAIT_MS))) {
        context.onProgress?.(nodeName, `warning: nothing listens on 127.0.0.1:${apiPort}, the Kubernetes API forward, ${API_FORWARD_WAIT_MS / 1000} s after vagrant up (see ${join(context.stateDir, '.vagrant', 'machines', nodeName, kind, 'logs')})`);
      }
      return { ssh: { host: config.host, port: config.port }, api: { host: '127.0.0.1', port: apiPort } };
    },

    async down(context, nodeName) {
      // libvirt does not undefine a domain that still has snapshots or a managed save.
      if (kind === 'libvirt') await dropLibvirtState(on(context.cluster), nodeName);
      return (await vagrantNodeDown(on(context.cluster), nodeName, runOptions(context))).destroyed;
    },

    async status(context) {
      if (!existsSync(join(context.stateDir, 'Vagrantfile'))) return {};
      const machines = Object.entries(await vagrantStatus(on(context.cluster), runOptions(context))).filter(([, machine]) => machine.state !== 'not_created');
      // libvirt tells paused and managed-save apart (cluster snapshot, stop); vagrant-libvirt's states do not.
      const state = async (name: string, vagrant: string): Promise<NodeRunState> => (kind === 'libvirt' ? libvirtRunState(context, name) : virtualboxRunState(vagrant));
      const states = await Promise.all(machines.map(async ([name, machine]) => [name, await state(name, machine.state)] as const));
      return Object.fromEntries(states.filter(([, known]) => known !== 'absent'));
    },

    async cleanup(context) {
      // Every machine the Vagrantfile on disk knows, whether or not the model still names it.
      const stopped: string[] = [];
      for (const name of Object.keys(await this.status(context))) {
        if (await this.down(context, name)) stopped.push(name);
      }
      return stopped;
    },

    snapshots: kind === 'libvirt' ? libvirtSnapshots() : virtualboxSnapshots(runOptions),
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
