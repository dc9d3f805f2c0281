import { mkdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atomicWriteFile, unlessMissing, withLock } from '@boxcar/kit';
import type { Cluster } from '@boxcar/model';
import { forwardsKubernetesApi, type ProviderContext } from '../provider.ts';
import { canListen, commandLine, freePort } from '../qemu/processes.ts';
import type { VagrantProviderName } from './vagrantfile.ts';

// The port on the host's 127.0.0.1 that a Vagrant cluster forwards to its master's Kubernetes API
// (`forwarded_port` in the generated Vagrantfile; vagrant-libvirt runs it as an ssh tunnel).

/** How long `up` waits for Vagrant's forward of the Kubernetes API to listen before it warns. */
export const API_FORWARD_WAIT_MS = 30_000;

/**
 * The port on 127.0.0.1 forwarded to the master's Kubernetes API, the same in every Vagrantfile the
 * cluster's nodes write (each node's `up` writes the whole cluster's): chosen once and recorded in the
 * provider's directory (api-port.json), under a lock since the nodes come up in parallel. The master's
 * own `up` takes another port when the recorded one is held by something other than its running forward.
 * Undefined when the cluster runs no Kubernetes as the lab does.
 */
export async function kubernetesApiPort(context: ProviderContext, cluster: Cluster, kind: VagrantProviderName, nodeName: string): Promise<number | undefined> {
  if (cluster.kubernetes === undefined) return undefined;
  const file = join(context.stateDir, 'api-port.json');
  await mkdir(context.stateDir, { recursive: true });
  return withLock(
    `${file}.lock`,
    async () => {
      const recorded = await readFile(file, 'utf8').then((text) => (JSON.parse(text) as { port?: unknown }).port, () => undefined);
      let port = Number.isInteger(recorded) ? (recorded as number) : undefined;
      if (port === undefined) port = await freePort();
      else if (forwardsKubernetesApi(cluster, nodeName) && !(await ownForward(context, kind, nodeName, port))) port = await freePort(port);
      if (port !== recorded) await atomicWriteFile(file, `${JSON.stringify({ port }, null, 2)}\n`);
      return port;
    },
    { purpose: `choose the Kubernetes API port of cluster ${cluster.name}` },
  );
}

/** Whether `port` is held by the running ssh tunnel vagrant-libvirt keeps for the node (its pid file names an ssh forwarding that port). */
export async function ownForward(context: ProviderContext, kind: VagrantProviderName, nodeName: string, port: number): Promise<boolean> {
  if (await canListen(port)) return false;
  const pidFile = join(context.stateDir, '.vagrant', 'machines', nodeName, kind, 'pids', `ssh_${port}.pid`);
  const pid = Number.parseInt(await unlessMissing(pidFile, readFile(pidFile, 'utf8'), ''), 10);
  const argv = Number.isInteger(pid) && pid > 1 ? await commandLine(pid) : undefined;
  // ssh -L 127.0.0.1:<port>:<guest_ip>:<guest port> ... (a recycled pid is some other program)
  return argv !== undefined && basename(argv[0] ?? '') === 'ssh' && argv.some((arg) => arg.startsWith(`127.0.0.1:${port}:`));
}

/** Whether a TCP connection to 127.0.0.1:`port` is accepted within `timeoutMs`. */
export async function listening(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const accepted = await new Promise<boolean>((done) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (accepted || Date.now() >= deadline) return accepted;
    await sleep(500);
  }
}

