import { join, resolve } from 'node:path';

// Where the qemu provider keeps a cluster's running state (pure: paths only).
//
//   <stateDir>/ports.json            node name -> SSH port on 127.0.0.1
//   <stateDir>/api-ports.json        node name -> Kubernetes API port on 127.0.0.1 (the master of a cluster with cluster.kubernetes)
//   <stateDir>/.lock                 held while switches, ports and launches change (@boxcar/kit's lock)
//   <stateDir>/switch-cluster/       vde_switch socket directory of the cluster network (enp0s8)
//   <stateDir>/switch-vpp/           vde_switch socket directory of the VPP network (enp0s9)
//   <stateDir>/switch-<net>.pid
//   <stateDir>/nodes/<node>/disk.qcow2, qemu.pid, serial.log, qmp.sock (the monitor),
//                                    launch.json (argv of the running qemu, for cluster start)
//   <stateDir>/nodes/<node>/base.sha256  sha256 of the overlay's backing file when the overlay was made

export const SWITCHES = ['cluster', 'vpp'] as const;
export type SwitchName = (typeof SWITCHES)[number];

export interface NodePaths {
  dir: string;
  overlay: string;
  /** The sha256 of the base the overlay was made on: an overlay on changed bytes is garbage to the guest. */
  baseDigest: string;
  pidFile: string;
  serialLog: string;
  /** QEMU's QMP monitor socket: pause, savevm/loadvm, resume, quit. */
  qmpSocket: string;
  /** The argv, SSH port (and API port) of the running qemu: `cluster start` relaunches exactly that machine from its saved state. */
  launchArgs: string;
}

export interface StateLayout {
  stateDir: string;
  portsFile: string;
  /** The ports forwarded to a node's Kubernetes API, by node name (the master only). */
  apiPortsFile: string;
  lockFile: string;
  nodesDir: string;
  switchSocket: Record<SwitchName, string>;
  switchPidFile: Record<SwitchName, string>;
  node(name: string): NodePaths;
}

/**
 * A unix socket path holds at most 107 bytes; libvdeplug puts a socket named like ".01234-00000" in the
 * switch directory, so the directory must leave room for it.
 */
export const MAX_SWITCH_DIR_LENGTH = 90;

export function stateLayout(stateDir: string): StateLayout {
  if (!stateDir) throw new Error('qemu provider: stateDir must name a directory, e.g. <repo>/.cluster/<cluster>/qemu');
  const root = resolve(stateDir);
  const switchSocket = { cluster: join(root, 'switch-cluster'), vpp: join(root, 'switch-vpp') };
  for (const dir of Object.values(switchSocket)) {
    if (Buffer.byteLength(dir) > MAX_SWITCH_DIR_LENGTH) {
      throw new Error(
        `qemu provider: stateDir ${root} is too deep: the switch socket directory ${dir} has ${Buffer.byteLength(dir)} bytes, at most ${MAX_SWITCH_DIR_LENGTH} fit in a unix socket path; use a shorter stateDir`,
      );
    }
  }
  const nodesDir = join(root, 'nodes');
  return {
    stateDir: root,
    portsFile: join(root, 'ports.json'),
    apiPortsFile: join(root, 'api-ports.json'),
    // Beside the state dir, not in it: the last node down removes the directory while it holds the lock.
    lockFile: `${root}.lock`,
    nodesDir,
    switchSocket,
    switchPidFile: { cluster: join(root, 'switch-cluster.pid'), vpp: join(root, 'switch-vpp.pid') },
    node(name: string): NodePaths {
      const dir = join(nodesDir, name);
      return { dir, overlay: join(dir, 'disk.qcow2'), baseDigest: join(dir, 'base.sha256'), pidFile: join(dir, 'qemu.pid'), serialLog: join(dir, 'serial.log'), qmpSocket: join(dir, 'qmp.sock'), launchArgs: join(dir, 'launch.json') };
    },
  };
}
