import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { sshArgs } from '@boxcar/providers';
import type { LibvirtNetns } from './libvirt-netns.ts';

// The libvirt limit for the benchmark: N domains booted straight from one image (qcow2 overlays),
// on an isolated libvirt network with DHCP, until each answers SSH. No Vagrant, no box, no
// configuration: what any libvirt bring-up of the same image must at least spend.

export interface RawBootOptions {
  /** The qcow2 image every domain boots from (copied into the namespace's pool directory first). */
  image: string;
  count: number;
  memoryMb: number;
  /** `qemu` under TCG, `kvm` where a KVM guest really runs. */
  domainType: 'qemu' | 'kvm';
  /** A key the image accepts for `user`. */
  ssh: { user: string; keyFile: string };
  timeoutMs?: number;
}

export interface RawBootResult {
  /** From the first `virsh start` until the last domain answered SSH. */
  seconds: number;
  addresses: string[];
}

const NETWORK = 'boxcar-raw';

/** Boots the domains, waits for SSH on each, then destroys and undefines them and the network. */
export async function rawBootSeconds(ns: LibvirtNetns, options: RawBootOptions): Promise<RawBootResult> {
  // libvirt's QEMU runs as its own user and must read the image: the pool directory is the daemons'.
  const imagesDir = join(ns.root, 'lib', 'images');
  await mkdir(imagesDir, { recursive: true });
  const base = join(imagesDir, 'raw-base.qcow2');
  await copyFile(options.image, base);
  const names = Array.from({ length: options.count }, (_, index) => `raw-${index + 1}`);
  const macs = names.map((_, index) => `52:54:00:7a:00:${(index + 1).toString(16).padStart(2, '0')}`);
  for (const name of names) {
    // A relative backing path: the same file from the host and from the daemons' mount namespace.
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'raw-base.qcow2', '-F', 'qcow2', join(imagesDir, `${name}.qcow2`)]);
  }
  const defineFrom = async (kind: 'net-define' | 'define', xml: string, file: string) => {
    const path = join(ns.root, file);
    await writeFile(path, xml);
    await ns.virsh([kind, path]);
  };
  await defineFrom('net-define', networkXml(), 'raw-network.xml');
  await ns.virsh(['net-start', NETWORK]);
  try {
    for (const [index, name] of names.entries()) await defineFrom('define', domainXml(name, macs[index]!, options), `${name}.xml`);
    const started = Date.now();
    for (const name of names) await ns.virsh(['start', name]);
    const deadline = started + (options.timeoutMs ?? 10 * 60_000);
    const addresses = await Promise.all(macs.map((mac) => sshReadyAddress(ns, mac, options.ssh, deadline)));
    return { seconds: (Date.now() - started) / 1000, addresses };
  } finally {
    for (const name of names) {
      await ns.virsh(['destroy', name]).catch(() => undefined);
      await ns.virsh(['undefine', name]).catch(() => undefined);
    }
    await ns.virsh(['net-destroy', NETWORK]).catch(() => undefined);
    await ns.virsh(['net-undefine', NETWORK]).catch(() => undefined);
  }
}

async function sshReadyAddress(ns: LibvirtNetns, mac: string, ssh: RawBootOptions['ssh'], deadline: number): Promise<string> {
  for (;;) {
    const leases = await ns.virsh(['net-dhcp-leases', NETWORK, '--mac', mac]).catch(() => '');
    const address = /(\d+\.\d+\.\d+\.\d+)\/\d+/.exec(leases)?.[1];
    if (address) {
      const [program, args] = ns.wrap('ssh', [...sshArgs({ host: address, port: 22, ...ssh }), 'true']);
      if ((await execa(program, args, { reject: false, stdin: 'ignore', timeout: 20_000 })).exitCode === 0) return address;
    }
    if (Date.now() > deadline) throw new Error(`raw libvirt boot: ${mac} did not answer SSH${address ? ` on ${address}` : ' (no DHCP lease)'} in time`);
    await new Promise((done) => setTimeout(done, 1_000));
  }
}

function networkXml(): string {
  // No <forward>: an isolated network, and it lives in the test's namespace anyway.
  return `<network><name>${NETWORK}</name><bridge name="virbr-raw"/>
  <ip address="192.168.123.1" netmask="255.255.255.0"><dhcp><range start="192.168.123.10" end="192.168.123.99"/></dhcp></ip>
</network>`;
}

function domainXml(name: string, mac: string, options: RawBootOptions): string {
  const cpu = options.domainType === 'qemu' ? '<cpu mode="custom" match="exact"><model fallback="allow">qemu64</model></cpu>' : '<cpu mode="host-passthrough"/>';
  // The NIC at PCI slot 3 is the guest's enp0s3, the interface the boxes configure by DHCP.
  return `<domain type="${options.domainType}"><name>${name}</name><memory unit="MiB">${options.memoryMb}</memory><vcpu>1</vcpu>
  <os><type arch="x86_64" machine="pc">hvm</type><boot dev="hd"/></os>${cpu}<features><acpi/><apic/></features>
  <devices>
    <disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="/var/lib/libvirt/images/${name}.qcow2"/><target dev="vda" bus="virtio"/></disk>
    <interface type="network"><source network="${NETWORK}"/><mac address="${mac}"/><model type="e1000"/><address type="pci" domain="0" bus="0" slot="3" function="0"/></interface>
    <serial type="pty"/><console type="pty"/><memballoon model="none"/>
  </devices>
</domain>`;
}
