import { firstBootStrings, type MachineState, type NodeProvider } from '../provider.ts';
import { qemuDown, qemuNodeDown, qemuNodeUp, qemuStatus } from './provider.ts';

/** qemu run directly: a qcow2 overlay of the box's disk per node, SSH forwarded from 127.0.0.1. */
export const qemuProvider: NodeProvider = {
  name: 'qemu',

  async up(context, nodeName, boot) {
    const info = await qemuNodeUp(context.cluster, nodeName, {
      stateDir: context.stateDir,
      image: await boot.disk(),
      imageSha256: await boot.diskSha256(),
      oemStrings: firstBootStrings({ authorizedKey: (await boot.clusterKey()).publicKey }),
      onProgress: (event) => context.onProgress?.(nodeName, `${event.step}: ${event.message}`),
    });
    return { ssh: { host: info.sshHost, port: info.sshPort }, serialLog: info.serialLog };
  },

  async down(context, nodeName) {
    const before = await this.status(context);
    await qemuNodeDown(context.cluster, nodeName, { stateDir: context.stateDir, onProgress: (event) => context.onProgress?.(nodeName, `${event.step}: ${event.message}`) });
    return before[nodeName] === 'running';
  },

  async status(context) {
    const { nodes } = await qemuStatus(context.cluster, { stateDir: context.stateDir });
    return Object.fromEntries(nodes.filter((node) => node.state !== 'absent').map((node) => [node.name, node.state as MachineState]));
  },

  async cleanup(context) {
    return (await qemuDown(context.cluster, { stateDir: context.stateDir })).stopped;
  },
};
