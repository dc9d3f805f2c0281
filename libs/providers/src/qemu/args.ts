import type { Cluster, ClusterNode, NicSpec } from '@boxcar/model';
import { forwardsKubernetesApi } from '../provider.ts';
import type { NodePaths, SwitchName } from './layout.ts';

// QEMU command lines from the cluster model (pure).

/** The virtual disk's PCI slot: clear of the NIC slots, which mirror VirtualBox's (3, 8, 9). */
export const DISK_PCI_SLOT = 4;
/** i440fx: slot 0 is the host bridge, slot 1 the PIIX3 (ISA, IDE, USB, ACPI). */
const RESERVED_SLOTS = [0, 1, DISK_PCI_SLOT];

const NIC_DEVICES: Record<string, string> = {
  virtio: 'virtio-net-pci',
  '82540EM': 'e1000',
  e1000: 'e1000',
};

/** The QEMU device for a NIC model of the profile (VirtualBox names, as in the 2016 Vagrantfile). */
export function nicDevice(model: string, field: string): string {
  const device = NIC_DEVICES[model];
  if (!device) throw new Error(`${field}: NIC model ${JSON.stringify(model)} has no QEMU device; allowed: ${Object.keys(NIC_DEVICES).join(', ')}`);
  return device;
}

export interface QemuNodeSpec {
  cluster: Cluster;
  node: ClusterNode;
  paths: NodePaths;
  /** Port on 127.0.0.1 forwarded to the guest's SSH port. */
  sshPort: number;
  /**
   * Port on 127.0.0.1 forwarded to the guest's Kubernetes API (cluster.api.securePort): required for the
   * master of a cluster with `cluster.kubernetes`, refused for any other node (forwardsKubernetesApi).
   */
  apiPort?: number;
  switchSockets: Record<SwitchName, string>;
  /** From detectAccelerator(). */
  accelArgs: readonly string[];
  /** SMBIOS OEM strings (type 11): public data the node reads at boot (the first-boot channel). */
  oemStrings?: readonly string[];
}

/** A unix socket path holds at most 107 bytes and a NUL. */
const MAX_SOCKET_PATH = 107;

/** QEMU's option parser splits on commas; a literal comma is written twice. */
export function qemuValue(value: string): string {
  return value.replaceAll(',', ',,');
}

function slot(nic: NicSpec, field: string): string {
  if (!Number.isInteger(nic.pciSlot) || nic.pciSlot < 2 || nic.pciSlot > 31 || RESERVED_SLOTS.includes(nic.pciSlot)) {
    throw new Error(`${field}.pciSlot: must be a free PCI slot from 2 to 31 other than ${DISK_PCI_SLOT} (the disk), got ${JSON.stringify(nic.pciSlot)}`);
  }
  return `0x${nic.pciSlot.toString(16)}`;
}

/** The argv (without the binary) that boots one node, daemonized, with its three NICs in their slots. */
export function qemuNodeArgs(spec: QemuNodeSpec): string[] {
  const { cluster, node, paths, sshPort } = spec;
  const nics = cluster.network.nics;
  const slots = [nics.nat.pciSlot, nics.cluster.pciSlot, nics.vpp.pciSlot];
  if (new Set(slots).size !== slots.length) throw new Error(`profile ${cluster.profile.name}: nics use the same PCI slot twice (${slots.join(', ')})`);
  if (!Number.isInteger(sshPort) || sshPort < 1024 || sshPort > 65535) throw new Error(`qemu node ${node.name}: sshPort must be from 1024 to 65535, got ${sshPort}`);
  const apiForward = apiHostForward(spec);
  if (Buffer.byteLength(paths.qmpSocket) > MAX_SOCKET_PATH) {
    throw new Error(`qemu node ${node.name}: its monitor socket ${paths.qmpSocket} has ${Buffer.byteLength(paths.qmpSocket)} bytes, at most ${MAX_SOCKET_PATH} fit in a unix socket path; use a shorter state dir`);
  }
  return [
    '-name', qemuValue(`${cluster.name}-${node.name}`),
    '-machine', 'pc',
    ...spec.accelArgs,
    '-m', String(node.memoryMb),
    '-smp', String(node.cpus),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-rtc', 'base=utc',
    '-drive', `file=${qemuValue(paths.overlay)},if=none,id=disk0,format=qcow2,discard=unmap`,
    '-device', `virtio-blk-pci,drive=disk0,addr=0x${DISK_PCI_SLOT.toString(16)}`,
    // restrict=on: the guest reaches nothing outside; only SSH (and on a Kubernetes master its API) comes in, and only from 127.0.0.1.
    '-netdev', `user,id=nat,restrict=on,hostfwd=tcp:127.0.0.1:${sshPort}-:22${apiForward}`,
    '-device', `${nicDevice(nics.nat.model, 'network.nics.nat.model')},netdev=nat,addr=${slot(nics.nat, 'network.nics.nat')}`,
    '-netdev', `vde,id=cluster,sock=${qemuValue(spec.switchSockets.cluster)}`,
    '-device', `${nicDevice(nics.cluster.model, 'network.nics.cluster.model')},netdev=cluster,addr=${slot(nics.cluster, 'network.nics.cluster')},mac=${node.macs.cluster}`,
    '-netdev', `vde,id=vpp,sock=${qemuValue(spec.switchSockets.vpp)}`,
    '-device', `${nicDevice(nics.vpp.model, 'network.nics.vpp.model')},netdev=vpp,addr=${slot(nics.vpp, 'network.nics.vpp')},mac=${node.macs.vpp}`,
    ...(spec.oemStrings ?? []).flatMap((value) => ['-smbios', `type=11,value=${qemuValue(value)}`]),
    '-chardev', `file,id=serial0,path=${qemuValue(paths.serialLog)}`,
    '-serial', 'chardev:serial0',
    // The monitor that pauses, snapshots and resumes the node (cluster snapshot, stop/start); wait=off so
    // the VM never blocks on a client, and only this user reaches the socket (its directory is the node's).
    '-qmp', `unix:${qemuValue(paths.qmpSocket)},server=on,wait=off`,
    '-daemonize',
    '-pidfile', paths.pidFile,
  ];
}

/** The NAT netdev's second hostfwd, to the API server's secure port, on the master of a Kubernetes cluster only. */
function apiHostForward(spec: QemuNodeSpec): string {
  const { cluster, node, apiPort, sshPort } = spec;
  if (!forwardsKubernetesApi(cluster, node.name)) {
    if (apiPort !== undefined) throw new Error(`qemu node ${node.name}: apiPort is only for the master of a cluster that runs Kubernetes (${cluster.master.name}${cluster.kubernetes ? '' : ', and this profile runs none'})`);
    return '';
  }
  if (apiPort === undefined) throw new Error(`qemu node ${node.name}: apiPort is required: the host reaches the Kubernetes API of the master only through a port forwarded on 127.0.0.1`);
  if (!Number.isInteger(apiPort) || apiPort < 1024 || apiPort > 65535 || apiPort === sshPort) {
    throw new Error(`qemu node ${node.name}: apiPort must be from 1024 to 65535 and not the SSH port ${sshPort}, got ${apiPort}`);
  }
  return `,hostfwd=tcp:127.0.0.1:${apiPort}-:${cluster.api.securePort}`;
}

/** vde_switch as a daemon: one per network segment of a cluster, reachable only through its socket directory. */
export function vdeSwitchArgs(socketDir: string, pidFile: string): string[] {
  // --rcfile /dev/null: a user's ~/.vderc must not change the lab network.
  return ['--sock', socketDir, '--daemon', '--pidfile', pidFile, '--rcfile', '/dev/null', '--numports', '128'];
}
