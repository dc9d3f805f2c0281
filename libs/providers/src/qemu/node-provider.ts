import { aptInstall, firstBootStrings, type NodeProvider, type ProviderContext } from '../provider.ts';
import { qemuDown, qemuNodeDown, qemuNodeUp, qemuStatus, type QemuProgress } from './provider.ts';
import {
  qemuDeleteSnapshot,
  qemuListSnapshots,
  qemuPause,
  qemuRestoreSnapshot,
  qemuResume,
  qemuRunState,
  qemuSaveSnapshot,
  qemuSuspend,
  qemuWake,
} from './snapshots.ts';

const options = (context: ProviderContext) => ({
  stateDir: context.stateDir,
  onProgress: (event: QemuProgress) => context.onProgress?.(event.node ?? '', `${event.step}: ${event.message}`),
});

/** qemu run directly: a qcow2 overlay of the box's disk per node, SSH (and a Kubernetes master's API) forwarded from 127.0.0.1. */
export const qemuProvider: NodeProvider = {
  name: 'qemu',
  firstBootChannel: true,
  prerequisites: [
    { name: 'qemu-system-x86_64', command: ['qemu-system-x86_64', '--version'], howToGet: aptInstall('qemu-system-x86'), detail: 'runs the nodes' },
    { name: 'qemu-img', command: ['qemu-img', '--version'], howToGet: aptInstall('qemu-utils'), detail: "each node's overlay on its layer disk" },
    { name: 'vde_switch', command: ['vde_switch', '--version'], howToGet: aptInstall('vde2'), detail: 'cluster network of the qemu provider' },
  ],

  async up(context, nodeName, boot) {
    const info = await qemuNodeUp(context.cluster, nodeName, {
      stateDir: context.stateDir,
      image: await boot.disk(),
      imageSha256: await boot.diskSha256(),
      oemStrings: firstBootStrings({ authorizedKey: (await boot.clusterKey()).publicKey }),
      onProgress: (event) => context.onProgress?.(nodeName, `${event.step}: ${event.message}`),
    });
    return { ssh: { host: info.sshHost, port: info.sshPort }, ...(info.apiPort !== undefined ? { api: { host: info.sshHost, port: info.apiPort } } : {}), serialLog: info.serialLog };
  },

  down: (context, nodeName) =>
    qemuNodeDown(context.cluster, nodeName, { stateDir: context.stateDir, onProgress: (event) => context.onProgress?.(nodeName, `${event.step}: ${event.message}`) }),

  async status(context) {
    // Every node with a directory here (also those the model no longer names), refined through its
    // monitor (paused) or its overlay (a state saved by cluster stop).
    const { nodes } = await qemuStatus(context.cluster, { stateDir: context.stateDir });
    const states = await Promise.all(nodes.filter((node) => node.state !== 'absent').map(async (node) => [node.name, await qemuRunState(options(context), node.name)] as const));
    return Object.fromEntries(states.filter(([, state]) => state !== 'absent'));
  },

  async cleanup(context) {
    return (await qemuDown(context.cluster, { stateDir: context.stateDir })).stopped;
  },

  // Through each node's QMP monitor; snapshots live inside its qcow2 overlay.
  snapshots: {
    pause: (context, node) => qemuPause(options(context), node),
    resume: (context, node) => qemuResume(options(context), node),
    save: (context, node, name) => qemuSaveSnapshot(options(context), node, name),
    restore: (context, node, name) => qemuRestoreSnapshot(options(context), node, name),
    remove: (context, node, name) => qemuDeleteSnapshot(options(context), node, name),
    list: (context, node) => qemuListSnapshots(options(context), node),
    suspend: (context, node) => qemuSuspend(options(context), node),
    async wake(context, node) {
      const woken = await qemuWake(options(context), node);
      return { ssh: { host: '127.0.0.1', port: woken.sshPort }, ...(woken.apiPort !== undefined ? { api: { host: '127.0.0.1', port: woken.apiPort } } : {}), serialLog: woken.serialLog };
    },
  },
};
