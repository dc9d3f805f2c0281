import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { loadLayerGraph } from '@boxcar/layers';
import { resolveClusterOrThrow } from '@boxcar/model';
import {
  detectAccelerator,
  ensureDebootstrapImage,
  ensureKeyPair,
  sshArgs,
  vagrantfile,
  vagrantNodeDown,
  vagrantNodeUp,
  vagrantSshConfig,
  vagrantStatus,
  type SshTarget,
} from '@boxcar/providers';
import { leftoverNamespaces, namespaceExists, startLibvirtNetns, type LibvirtNetns, type StartLibvirtNetnsOptions } from './libvirt-netns.ts';

// One lab node (cni-worker1) brought up by the real Vagrant with vagrant-libvirt, against a libvirtd
// that runs inside a network namespace this test creates. Every address the guest has (the management
// network's DHCP lease, the cluster network 192.168.10.0/24) exists only inside that namespace, and the
// SSH sessions below run there too.

const NODE = 'cni-worker1';
const cacheRoot = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boxcar');

async function missingPrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (ip netns, mount, libvirtd)');
  for (const tool of ['vagrant', 'libvirtd', 'virtlogd', 'virsh', 'dnsmasq', 'qemu-system-x86_64', 'qemu-img', 'debootstrap']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) missing.push(tool);
  }
  const plugins = await execa('vagrant', ['plugin', 'list'], { reject: false, env: { VAGRANT_CHECKPOINT_DISABLE: '1' } });
  if (!String(plugins.stdout).includes('vagrant-libvirt')) missing.push('vagrant-libvirt');
  return missing;
}
const missing = await missingPrerequisites();

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A libvirt box (Vagrant's format: metadata.json, Vagrantfile, box.img in a gzipped tarball) made from a
 * qcow2 image, kept beside the image cache and reused while the image stays the same.
 */
async function ensureLibvirtBox(image: string): Promise<{ file: string; sha256: string }> {
  const dir = join(cacheRoot, 'e2e', 'boxes');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${basename(image, '.qcow2')}.libvirt.box`);
  for (const other of await readdir(dir)) {
    if (other.endsWith('.libvirt.box') && join(dir, other) !== file) await rm(join(dir, other), { force: true });
  }
  const exists = await stat(file).then(() => true, () => false);
  if (!exists) {
    const work = await mkdtemp(join(dir, '.box-'));
    try {
      const info = JSON.parse(String((await execa('qemu-img', ['info', '--output', 'json', image])).stdout)) as { 'virtual-size': number };
      const virtualSizeGb = Math.ceil(info['virtual-size'] / 2 ** 30);
      await writeFile(join(work, 'metadata.json'), `${JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: virtualSizeGb })}\n`);
      await writeFile(join(work, 'Vagrantfile'), 'Vagrant.configure("2") do |config|\nend\n');
      await link(image, join(work, 'box.img')).catch(() => copyFile(image, join(work, 'box.img')));
      // The qcow2 is compressed already: the fastest gzip level loses nothing worth the time.
      await execa('tar', ['-C', work, '-I', 'gzip -1', '-cf', join(work, 'box.tar.gz'), 'metadata.json', 'Vagrantfile', 'box.img']);
      await rename(join(work, 'box.tar.gz'), file);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return { file, sha256: await sha256File(file) };
}

describe.skipIf(missing.length > 0)(`vagrant-libvirt inside a network namespace${missing.length ? ` (skipped: missing ${missing.join(', ')})` : ''}`, () => {
  // Torn down again after the tests whatever happened in them (a second teardown does nothing).
  const opened: LibvirtNetns[] = [];
  const open = async (options: StartLibvirtNetnsOptions) => {
    const ns = await startLibvirtNetns(options);
    opened.push(ns);
    return ns;
  };
  let scratch: string | undefined;

  afterAll(async () => {
    for (const ns of opened) await ns.teardown();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('runs libvirtd and virtlogd inside the namespace on private directories, and tears all of it down', async () => {
    const ns = await open({ hideKvm: true });
    const { netns, root } = ns;
    expect(await leftoverNamespaces()).toContain(netns);
    const [program, args] = ns.wrap('readlink', ['/proc/self/ns/net']);
    const inside = String((await execa(program, args)).stdout).trim();
    for (const pid of [ns.libvirtdPid, ns.virtlogdPid]) {
      expect(await readlink(`/proc/${pid}/ns/net`)).toBe(inside);
      expect(await readlink(`/proc/${pid}/ns/net`)).not.toBe(await readlink('/proc/self/ns/net'));
    }
    // The daemons' /run/libvirt is <root>/run; their /dev/kvm a file that nobody may open.
    expect((await lstat(`/proc/${ns.libvirtdPid}/root/run/libvirt/libvirt-sock`)).isSocket()).toBe(true);
    expect((await lstat(join(root, 'run', 'libvirt-sock'))).isSocket()).toBe(true);
    const kvm = await lstat(`/proc/${ns.libvirtdPid}/root/dev/kvm`).catch(() => undefined);
    if (kvm) expect(kvm.isCharacterDevice()).toBe(false);
    expect((await ns.virsh(['net-list', '--all', '--name'])).trim()).toBe('');

    // A process left in the namespace (as a crashed test would leave a QEMU) is stopped by the teardown.
    const [sleepProgram, sleepArgs] = ns.wrap('sleep', ['600']);
    const stray = execa(sleepProgram, sleepArgs, { reject: false });
    await new Promise((done) => setTimeout(done, 300));
    const report = await ns.teardown();
    expect(report.killed).toEqual(expect.arrayContaining([stray.pid!]));
    expect((await stray).signal).toBe('SIGTERM');
    expect(report.netnsRemoved).toBe(true);
    expect(await namespaceExists(netns)).toBe(false);
    expect(await stat(root).then(() => true, () => false)).toBe(false);
  });

  it(`brings ${NODE} up with its hostname and static IP, destroys it and leaves nothing behind`, async () => {
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      try {
        return await step();
      } finally {
        timings[name] = (Date.now() - started) / 1000;
      }
    };
    const cluster = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });
    const node = cluster.nodes.find((candidate) => candidate.name === NODE)!;

    const accel = await timed('accelerator probe', () => detectAccelerator());
    const key = await ensureKeyPair(join(cacheRoot, 'e2e', 'bootstrap_ed25519'), 'boxcar-e2e-bootstrap');
    const root = (await loadLayerGraph('lab')).layers[0]!.sources.qemu!;
    if (root.type !== 'debootstrap') throw new Error(`the lab profile's base is ${root.type}, expected debootstrap`);
    const image = await timed('base image', () =>
      ensureDebootstrapImage({ publicKeyFile: key.publicKey, suite: root.suite, mirror: root.mirror, include: root.include ?? [] }),
    );
    const box = await timed('box package', () => ensureLibvirtBox(image.path));

    scratch = await mkdtemp(join(tmpdir(), 'boxcar-e2e-vagrant-'));
    const version = '1.0.0';
    const catalog = join(scratch, 'catalog', 'metadata.json');
    await mkdir(join(scratch, 'catalog'));
    await writeFile(
      catalog,
      JSON.stringify({
        name: node.box,
        description: 'lab worker for the vagrant-libvirt e2e test',
        versions: [{ version, providers: [{ name: 'libvirt', url: `file://${box.file}`, checksum_type: 'sha256', checksum: box.sha256 }] }],
      }),
    );

    const ns = await timed('namespace + libvirtd', () => open({ hideKvm: accel.accel === 'tcg' }));
    const driver = accel.accel === 'kvm' ? 'kvm' : 'qemu';
    // Only cni-worker1 boots: every node gets the worker box so that one catalog serves the Vagrantfile.
    const boxes = Object.fromEntries(cluster.nodes.map((each) => [each.name, { name: node.box, version, catalogUrl: `file://${catalog}` }]));
    const vagrantfileText = vagrantfile(cluster, {
      boxes,
      privateKeyPath: key.privateKey,
      libvirt: { driver, ...(driver === 'qemu' ? { cpuModel: 'qemu64' } : {}), managementNetworkMode: 'none', uri: ns.uri },
    });
    // When vagrant up reaches each of its steps (seconds after it started); the full output is in its log.
    const steps: Record<string, number> = {};
    const started = Date.now();
    const run = {
      stateDir: join(scratch, 'state'),
      vagrantfileText,
      env: { VAGRANT_HOME: join(scratch, 'vagrant-home') },
      netns: ns.netns,
      onLine: (line: string) => {
        const step = /^==> [\w-]+: (Successfully added box|Creating domain|Starting domain|Waiting for domain to get an IP|Waiting for machine to boot|Machine booted|Setting hostname|Configuring and enabling)/.exec(line)?.[1];
        if (step) steps[step] ??= Math.round((Date.now() - started) / 1000);
      },
    };

    await timed('vagrant up', () => vagrantNodeUp(cluster, NODE, run));
    expect((await vagrantStatus(cluster, run))[NODE]).toEqual({ state: 'running', provider: 'libvirt' });

    const target: SshTarget = await vagrantSshConfig(cluster, NODE, run);
    expect(target.user).toBe('vagrant');
    expect(target.keyFile).toBe(key.privateKey);
    const sshInNamespace = async (to: SshTarget, command: string) => {
      const [program, args] = ns.wrap('ssh', [...sshArgs(to), command]);
      return String((await execa(program, args, { stdin: 'ignore' })).stdout).trim();
    };
    const facts = await timed('ssh checks', () =>
      sshInNamespace(
        target,
        'pci() { readlink -f "/sys/class/net/$1/device" | grep -o "0000:00:[0-9a-f][0-9a-f]\\.[0-7]" | tail -n 1; }; ' +
          'hostname; ip -4 -o addr show dev enp0s8 | awk \'{print $4}\'; ip -4 -o addr show dev enp0s9 | wc -l; ' +
          'pci enp0s9; cat "/sys/bus/pci/devices/$(pci enp0s9)/vendor" "/sys/bus/pci/devices/$(pci enp0s9)/device"; ' +
          'pci enp0s8; cat /sys/class/net/enp0s8/address',
      ),
    );
    const [hostname, clusterAddress, vppAddresses, vppPci, vppVendor, vppDevice, clusterPci, clusterMac] = facts.split('\n');
    expect(hostname).toBe(NODE);
    expect(clusterAddress).toBe(`${node.ip}/${cluster.network.prefixLength}`);
    expect(clusterMac).toBe(node.macs.cluster);
    expect(clusterPci).toBe(`0000:00:${cluster.network.nics.cluster.pciSlot.toString(16).padStart(2, '0')}.0`);
    // VPP's NIC: unconfigured, at the PCI address VPP is given, an Intel 82540EM (8086:100e).
    expect(vppAddresses).toBe('0');
    expect(vppPci).toBe(cluster.network.nics.vpp.pciAddress);
    expect([vppVendor, vppDevice]).toEqual(['0x8086', '0x100e']);
    // The static address answers on the isolated cluster network (from inside the namespace).
    expect(await sshInNamespace({ ...target, host: node.ip, port: 22 }, 'hostname')).toBe(NODE);

    const down = await timed('vagrant destroy', () => vagrantNodeDown(cluster, NODE, run));
    expect(down.destroyed).toBe(true);
    expect((await ns.virsh(['list', '--all', '--name'])).trim()).toBe('');
    expect((await ns.virsh(['net-list', '--all', '--name'])).trim()).toBe('');
    // What stays in the pool is vagrant-libvirt's copy of the box image, kept for the next `up`.
    const volumes = (await ns.virsh(['vol-list', 'default'])).split('\n').slice(2).map((line) => line.trim().split(/\s+/)[0]).filter(Boolean);
    expect(volumes.filter((volume) => !volume!.includes('_vagrant_box_image_'))).toEqual([]);

    const netns = ns.netns;
    const report = await timed('teardown', () => ns.teardown());
    expect(report.netnsRemoved).toBe(true);
    expect(await namespaceExists(netns)).toBe(false);
    expect(await leftoverNamespaces()).not.toContain(netns);
    console.log(`vagrant-libvirt e2e (${accel.accel}): seconds per phase ${JSON.stringify(timings)}; vagrant up steps at ${JSON.stringify(steps)}`);
  });
});
