import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { ensureKeyPair } from '../keys.ts';
import { vagrantValidate } from './runner.ts';
import { libvirtNicModel, ruby, vagrantfile, VIRTUALBOX_ADAPTER_PCI_SLOTS, type VagrantfileOptions } from './vagrantfile.ts';

// A Ruby-free reading of the generated text, enough to check one fact at a time: the block of each
// node, its settings, its networks (key: value pairs) and its `modifyvm` customizations.
interface ParsedNode {
  settings: Map<string, string>;
  networks: Record<string, string>[];
  provider: Map<string, string>;
  modifyvm: Map<string, string>;
}

function rubyValue(text: string): string {
  return text.startsWith('"') ? JSON.parse(text.replace(/\\#/g, '#')) : text;
}

function parseNodes(text: string): Map<string, ParsedNode> {
  const nodes = new Map<string, ParsedNode>();
  for (const match of text.matchAll(/^ {2}config\.vm\.define "([^"]+)" do \|node\|\n([\s\S]*?)^ {2}end$/gm)) {
    const body = match[2]!.replace(/,\n\s+/g, ', ');
    const node: ParsedNode = { settings: new Map(), networks: [], provider: new Map(), modifyvm: new Map() };
    for (const [, key, value] of body.matchAll(/^ {4}node\.vm\.(\w+) = (.+)$/gm)) node.settings.set(key!, rubyValue(value!));
    for (const [, args] of body.matchAll(/^ {4}node\.vm\.network "private_network", (.+)$/gm)) {
      node.networks.push(Object.fromEntries([...args!.matchAll(/(\w+): ("(?:[^"\\]|\\.)*"|[\w.]+)/g)].map(([, key, value]) => [key!, rubyValue(value!)])));
    }
    for (const [, key, value] of body.matchAll(/^ {6}(?:vb|libvirt)\.(\w+) = (.+)$/gm)) node.provider.set(key!, rubyValue(value!));
    for (const [, flag, value] of body.matchAll(/vb\.customize \["modifyvm", :id, "(--\w+)", "([^"]*)"\]/g)) node.modifyvm.set(flag!, value!);
    nodes.set(match[1]!, node);
  }
  return nodes;
}

function providerDefaults(text: string): Map<string, string> {
  const block = /^ {2}config\.vm\.provider "libvirt" do \|libvirt\|\n([\s\S]*?)^ {2}end$/m.exec(text)?.[1] ?? '';
  return new Map([...block.matchAll(/^ {4}libvirt\.(\w+) = (.+)$/gm)].map(([, key, value]) => [key!, rubyValue(value!)]));
}

const VERSION = '1.0.20261128';
let dir: string;
let keyPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-vagrantfile-test-'));
  keyPath = (await ensureKeyPair(join(dir, 'bootstrap_ed25519'), 'boxcar-test')).privateKey;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The port on 127.0.0.1 forwarded to the Kubernetes API in these tests (clusters with cluster.kubernetes). */
const API_PORT = 46_443;

function optionsFor(cluster: Cluster, extra: Partial<VagrantfileOptions> = {}): VagrantfileOptions {
  const boxes = Object.fromEntries(
    cluster.nodes.map((node) => [node.name, { name: node.box, version: VERSION, catalogUrl: `http://127.0.0.1:8088/${node.box}/metadata.json` }]),
  );
  return {
    boxes,
    privateKeyPath: keyPath,
    ...(cluster.kubernetes ? { apiPort: API_PORT } : {}),
    ...(cluster.provider === 'libvirt' ? { libvirt: { driver: 'qemu' as const, cpuModel: 'qemu64', managementNetworkMode: 'none' as const } } : {}),
    ...extra,
  };
}

describe('vagrantfile for the 2016 cluster (xenial-2016, virtualbox)', () => {
  const cluster = resolveClusterOrThrow({});
  const text = () => vagrantfile(cluster, optionsFor(cluster));
  const nodes = () => parseNodes(text());

  it('defines the three nodes of the 2016 Vagrantfile, in order', () => {
    expect(cluster.provider).toBe('virtualbox');
    expect([...nodes().keys()]).toEqual(['cni-master1', 'cni-worker1', 'cni-worker2']);
  });

  it('gives each node its static cluster IP on NIC 2', () => {
    const ips = Object.fromEntries([...nodes()].map(([name, node]) => [name, node.networks[0]!.ip]));
    expect(ips).toEqual({ 'cni-master1': '192.168.10.10', 'cni-worker1': '192.168.10.21', 'cni-worker2': '192.168.10.22' });
    for (const node of nodes().values()) {
      expect(node.networks[0]!.netmask).toBe('255.255.255.0');
      expect(node.networks[0]!.auto_config).toBeUndefined();
    }
  });

  it('gives the master 2048 MB and the workers 4096 MB', () => {
    expect(Object.fromEntries([...nodes()].map(([name, node]) => [name, node.provider.get('memory')]))).toEqual({
      'cni-master1': '2048',
      'cni-worker1': '4096',
      'cni-worker2': '4096',
    });
  });

  it('gives every node 2 vCPUs', () => {
    for (const node of nodes().values()) expect(node.provider.get('cpus')).toBe('2');
  });

  it('puts NIC 2 and NIC 3 on the internal network cni-dev-bridge', () => {
    for (const node of nodes().values()) expect(node.networks.map((network) => network.virtualbox__intnet)).toEqual(['cni-dev-bridge', 'cni-dev-bridge']);
  });

  it('makes NIC 3 an Intel 82540EM and NIC 2 the profile model', () => {
    for (const node of nodes().values()) {
      expect(node.networks[1]!.nic_type).toBe('82540EM');
      expect(node.networks[0]!.nic_type).toBe(cluster.network.nics.cluster.model);
      expect(node.modifyvm.get('--nictype1')).toBe(cluster.network.nics.nat.model);
    }
  });

  it('sets NIC 2 and NIC 3 promiscuous allow-all', () => {
    for (const node of nodes().values()) {
      expect(node.modifyvm.get('--nicpromisc2')).toBe('allow-all');
      expect(node.modifyvm.get('--nicpromisc3')).toBe('allow-all');
    }
  });

  it('boots with the cable of NIC 3 disconnected', () => {
    for (const node of nodes().values()) expect(node.modifyvm.get('--cableconnected3')).toBe('off');
  });

  it('leaves the VPP NIC unconfigured in the guest', () => {
    for (const node of nodes().values()) {
      expect(node.networks[1]!.auto_config).toBe('false');
      expect(node.networks[1]!.ip).toBeUndefined();
    }
  });

  it('uses the MACs of the model, in VirtualBox notation', () => {
    for (const model of cluster.nodes) {
      const node = nodes().get(model.name)!;
      expect(node.networks[0]!.mac).toBe(model.macs.cluster.replaceAll(':', '').toUpperCase());
      expect(node.networks[1]!.mac).toBe(model.macs.vpp.replaceAll(':', '').toUpperCase());
    }
  });

  it('boots the master from boxcar/xenial-master and the workers from boxcar/xenial-worker, pinned', () => {
    const boxes = Object.fromEntries([...nodes()].map(([name, node]) => [name, node.settings.get('box')]));
    expect(boxes).toEqual({ 'cni-master1': 'boxcar/xenial-master', 'cni-worker1': 'boxcar/xenial-worker', 'cni-worker2': 'boxcar/xenial-worker' });
    for (const [name, node] of nodes()) {
      expect(node.settings.get('box_version')).toBe(VERSION);
      expect(node.settings.get('box_url')).toBe(`http://127.0.0.1:8088/${boxes[name]}/metadata.json`);
      expect(node.settings.get('hostname')).toBe(name);
    }
  });

  it('logs in with the bootstrap key, keeps it, and syncs no folder', () => {
    expect(text()).toMatch(/^ {2}config\.ssh\.insert_key = false$/m);
    expect(text()).toContain(`  config.ssh.private_key_path = ${ruby(keyPath)}\n`);
    expect(text()).toMatch(/^ {2}config\.vm\.synced_folder "\.", "\/vagrant", disabled: true$/m);
  });

  it('relies on VirtualBox placing adapters 1-3 at PCI slots 3, 8 and 9', () => {
    const nics = cluster.network.nics;
    expect([nics.nat.pciSlot, nics.cluster.pciSlot, nics.vpp.pciSlot]).toEqual(VIRTUALBOX_ADAPTER_PCI_SLOTS.slice(0, 3));
    const moved = structuredClone(cluster);
    moved.network.nics.vpp.pciSlot = 10;
    expect(() => vagrantfile(moved, optionsFor(moved))).toThrow(/profile nics\.vpp\.pciSlot is 10, but VirtualBox puts adapter 3 at PCI slot 9/);
  });
});

describe('vagrantfile for the lab (libvirt)', () => {
  const cluster = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });
  const text = () => vagrantfile(cluster, optionsFor(cluster));
  const nodes = () => parseNodes(text());

  it('selects driver qemu with the qemu64 CPU model and an isolated management network at slot 3', () => {
    const defaults = providerDefaults(text());
    expect(defaults.get('driver')).toBe('qemu');
    expect(defaults.get('cpu_mode')).toBe('custom');
    expect(defaults.get('cpu_model')).toBe('qemu64');
    expect(defaults.get('management_network_mode')).toBe('none');
    expect(defaults.get('management_network_pci_slot')).toBe(String(cluster.network.nics.nat.pciSlot));
    expect(defaults.has('uri')).toBe(false);
  });

  it('gives every NIC the VPP NIC\'s model (e1000)', () => {
    expect(libvirtNicModel(cluster)).toBe('e1000');
    expect(providerDefaults(text()).get('nic_model_type')).toBe('e1000');
  });

  it('leaves no device but the disk for libvirt to place before the NICs', () => {
    const defaults = providerDefaults(text());
    expect(defaults.get('graphics_type')).toBe('none');
    expect(defaults.get('memballoon_enabled')).toBe('false');
    expect(defaults.has('disk_bus')).toBe(false);
  });

  it('puts the cluster NIC at PCI slot 8 with the node IP and the VPP NIC at slot 9, unconfigured', () => {
    for (const model of cluster.nodes) {
      const [clusterNic, vppNic] = nodes().get(model.name)!.networks;
      expect(clusterNic).toMatchObject({ ip: model.ip, netmask: '255.255.255.0', mac: model.macs.cluster, libvirt__bus: '0', libvirt__slot: '8' });
      expect(vppNic).toMatchObject({ auto_config: 'false', mac: model.macs.vpp, libvirt__bus: '0', libvirt__slot: '9' });
      expect(vppNic!.ip).toBeUndefined();
    }
  });

  it('refuses NIC slots that libvirt gives to other devices or to two NICs', () => {
    const video = structuredClone(cluster);
    video.network.nics.cluster.pciSlot = 2;
    expect(() => vagrantfile(video, optionsFor(video))).toThrow(/profile nics\.cluster\.pciSlot must be a PCI slot from 3 to 31 on libvirt, got 2/);
    const twice = structuredClone(cluster);
    twice.network.nics.vpp.pciSlot = 8;
    expect(() => vagrantfile(twice, optionsFor(twice))).toThrow(/profile nics\.cluster\.pciSlot 8 is taken by another NIC/);
  });

  it('keeps both networks isolated and without DHCP, on a network named after the cluster', () => {
    for (const node of nodes().values()) {
      for (const network of node.networks) {
        expect(network).toMatchObject({ libvirt__network_name: 'lab-cni-dev-bridge', libvirt__forward_mode: 'none', libvirt__dhcp_enabled: 'false' });
      }
    }
  });

  it('takes memory, CPUs and boxes from the lab profile', () => {
    for (const model of cluster.nodes) {
      const node = nodes().get(model.name)!;
      // The lab's sizes changed with its Kubernetes (1536 MB master, 1024 MB workers): the Vagrantfile follows the profile.
      expect(node.provider.get('memory')).toBe(String(model.memoryMb));
      expect(model.memoryMb).toBeGreaterThanOrEqual(768);
      expect(node.provider.get('cpus')).toBe('1');
      expect(node.settings.get('box')).toBe(model.role === 'master' ? 'boxcar/lab-master' : 'boxcar/lab-worker');
    }
  });

  it('follows the model when it changes: addresses, sizes, names', () => {
    const changed = resolveClusterOrThrow({
      profile: 'lab',
      provider: 'libvirt',
      name: 'lab2',
      network: { subnet: '10.77.0.0/16' },
      nodes: [{ name: 'cni-worker1', memoryMb: 1536, cpus: 2 }],
    });
    const text2 = vagrantfile(changed, optionsFor(changed, { libvirt: { driver: 'kvm', uri: 'qemu+unix:///system?socket=/tmp/x/libvirt-sock' } }));
    const worker = parseNodes(text2).get('cni-worker1')!;
    const model = changed.nodes.find((node) => node.name === 'cni-worker1')!;
    expect(worker.networks[0]!.ip).toBe(model.ip);
    expect(model.ip.startsWith('10.77.')).toBe(true);
    expect(worker.networks[0]!.netmask).toBe('255.255.0.0');
    expect(worker.provider.get('memory')).toBe('1536');
    expect(worker.provider.get('cpus')).toBe('2');
    const defaults = providerDefaults(text2);
    expect(defaults.get('default_prefix')).toBe('lab2-');
    expect(defaults.get('driver')).toBe('kvm');
    expect(defaults.get('uri')).toBe('qemu+unix:///system?socket=/tmp/x/libvirt-sock');
    expect(defaults.has('cpu_mode')).toBe(false);
  });

  it('two clusters on one host share no network and no MAC address', () => {
    const other = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt', name: 'lab2' });
    const networksOf = (text: string) => new Set([...parseNodes(text).values()].flatMap((node) => node.networks.map((network) => network.libvirt__network_name!)));
    const macsOf = (text: string) => [...parseNodes(text).values()].flatMap((node) => node.networks.map((network) => network.mac!));
    const [mine, theirs] = [text(), vagrantfile(other, optionsFor(other))];
    expect([...networksOf(theirs)]).toEqual(['lab2-cni-dev-bridge']);
    expect([...networksOf(mine)].filter((name) => networksOf(theirs).has(name))).toEqual([]);
    expect(macsOf(mine).filter((mac) => macsOf(theirs).includes(mac))).toEqual([]);
  });
});

describe('the Kubernetes API on the host loopback (clusters with cluster.kubernetes)', () => {
  const lab = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });
  const TEST_KUBERNETES: NonNullable<Cluster['kubernetes']> = {
    version: 'v1.20.2', runtime: 'containerd', controlPlane: 'systemd', podNetwork: { type: 'bird-mesh', asn: 64512, blockPrefixLength: 24, firstBlock: 100 }, images: { pause: 'pause:3.2', test: 'test:1' },
  };
  const k8s: Cluster = { ...lab, kubernetes: lab.kubernetes ?? TEST_KUBERNETES };
  const { kubernetes: _none, ...plain } = lab;
  /** Each node's forwarded_port lines, as key: value pairs. */
  const forwards = (text: string) =>
    Object.fromEntries(
      [...text.matchAll(/^ {2}config\.vm\.define "([^"]+)" do \|node\|\n([\s\S]*?)^ {2}end$/gm)].map(([, name, body]) => [
        name!,
        [...body!.matchAll(/^ {4}node\.vm\.network "forwarded_port", (.+)$/gm)].map(([, args]) => Object.fromEntries([...args!.matchAll(/(\w+): ("[^"]*"|\d+)/g)].map(([, key, value]) => [key!, rubyValue(value!)]))),
      ]),
    );

  it("forwards 127.0.0.1:<apiPort> to the master's secure port on its loopback, on the master only", () => {
    expect(forwards(vagrantfile(k8s, optionsFor(k8s)))).toEqual({
      'cni-master1': [{ id: 'kubernetes-api', guest: '443', host: String(API_PORT), host_ip: '127.0.0.1', guest_ip: '127.0.0.1' }],
      'cni-worker1': [],
      'cni-worker2': [],
    });
    // No address of the cluster network (192.168.x) in any forward.
    expect(vagrantfile(k8s, optionsFor(k8s)).split('\n').filter((line) => line.includes('forwarded_port') && /192\.168\./.test(line))).toEqual([]);
  });

  it('on VirtualBox forwards to the guest side its NAT gives (no guest_ip), still on 127.0.0.1', () => {
    const vbox: Cluster = { ...k8s, provider: 'virtualbox', network: { ...k8s.network, nics: { ...k8s.network.nics, nat: { ...k8s.network.nics.nat, model: '82540EM' }, cluster: { ...k8s.network.nics.cluster, model: '82540EM' } } } };
    expect(forwards(vagrantfile(vbox, optionsFor(vbox)))['cni-master1']).toEqual([{ id: 'kubernetes-api', guest: '443', host: String(API_PORT), host_ip: '127.0.0.1' }]);
  });

  it('forwards nothing for a profile without Kubernetes, and wants the port exactly where it is forwarded', () => {
    expect(Object.values(forwards(vagrantfile(plain, optionsFor(plain)))).flat()).toEqual([]);
    expect(() => vagrantfile(plain, optionsFor(plain, { apiPort: API_PORT }))).toThrow('vagrantfile: apiPort is for clusters that run Kubernetes as the lab does; profile lab runs none');
    const { apiPort: _port, ...withoutPort } = optionsFor(k8s);
    expect(() => vagrantfile(k8s, withoutPort)).toThrow('vagrantfile: apiPort is required: the host reaches the Kubernetes API of cni-master1 only through a port forwarded on 127.0.0.1');
    expect(() => vagrantfile(k8s, optionsFor(k8s, { apiPort: 443 }))).toThrow('vagrantfile: apiPort must be a TCP port from 1024 to 65535, got 443');
  });

  it('passes the real vagrant validate with vagrant-libvirt', async () => {
    const result = await vagrantValidate(vagrantfile(k8s, optionsFor(k8s)), { provider: 'libvirt' });
    expect(result.valid, result.output).toBe(true);
    // validate reads the line: a forward without its host port fails.
    const broken = await vagrantValidate(vagrantfile(k8s, optionsFor(k8s)).replace(`host: ${API_PORT}, `, ''), { provider: 'libvirt' });
    expect(broken.valid).toBe(false);
    expect(broken.output).toContain('Forwarded port definitions require a "host" and "guest" value');
  });
});

describe('vagrantfile refuses bad input, naming the field', () => {
  const xenial = resolveClusterOrThrow({});
  const lab = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });

  it.each([
    ['a provider Vagrant does not run', () => vagrantfile(resolveClusterOrThrow({ profile: 'lab' }), optionsFor(lab)), /cluster\.provider is "qemu"/],
    ['a node without a box', () => vagrantfile(xenial, { ...optionsFor(xenial), boxes: { 'cni-master1': optionsFor(xenial).boxes['cni-master1']! } }), /boxes\.cni-worker1 is missing/],
    ['a box for an unknown node', () => vagrantfile(xenial, { ...optionsFor(xenial), boxes: { ...optionsFor(xenial).boxes, ghost: { name: 'a/b', version: '1', catalogUrl: 'file:///x' } } }), /boxes\.ghost names no node/],
    ['a bad box name', () => vagrantfile(xenial, { ...optionsFor(xenial), boxes: { ...optionsFor(xenial).boxes, 'cni-master1': { name: 'no-slash', version: VERSION, catalogUrl: 'file:///x' } } }), /boxes\.cni-master1\.name must look like/],
    ['a bad box version', () => vagrantfile(xenial, { ...optionsFor(xenial), boxes: { ...optionsFor(xenial).boxes, 'cni-master1': { name: 'a/b', version: 'latest', catalogUrl: 'file:///x' } } }), /boxes\.cni-master1\.version must be a Vagrant box version/],
    ['a catalog URL that is not a URL', () => vagrantfile(xenial, { ...optionsFor(xenial), boxes: { ...optionsFor(xenial).boxes, 'cni-master1': { name: 'a/b', version: VERSION, catalogUrl: '/srv/metadata.json' } } }), /boxes\.cni-master1\.catalogUrl must be a file:\/\/\//],
    ['a relative key path', () => vagrantfile(xenial, { ...optionsFor(xenial), privateKeyPath: 'keys/id' }), /privateKeyPath must be an absolute path/],
    ['libvirt options for virtualbox', () => vagrantfile(xenial, { ...optionsFor(xenial), libvirt: { driver: 'qemu' } }), /libvirt is for the libvirt provider/],
    ['libvirt without its options', () => vagrantfile(lab, { ...optionsFor(lab), libvirt: undefined }), /libvirt is required for the libvirt provider/],
    ['an unknown libvirt driver', () => vagrantfile(lab, optionsFor(lab, { libvirt: { driver: 'xen' as 'kvm' } })), /libvirt\.driver must be "kvm" or "qemu", got "xen"/],
    ['an odd CPU model', () => vagrantfile(lab, optionsFor(lab, { libvirt: { driver: 'qemu', cpuModel: 'qemu64"; system("x")' } })), /libvirt\.cpuModel must be a QEMU CPU model name/],
    ['an unknown management mode', () => vagrantfile(lab, optionsFor(lab, { libvirt: { driver: 'qemu', managementNetworkMode: 'bridge' as 'none' } })), /libvirt\.managementNetworkMode must be one of none, nat, route, open/],
  ])('%s', (_name, make, message) => {
    expect(make).toThrow(message);
  });

  it('refuses OEM strings that are not one printable line, and a relative cluster key path', () => {
    const lab = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });
    expect(() => vagrantfile(lab, optionsFor(lab, { oemStrings: ['a\nb'] }))).toThrow(/oemStrings\[0\] must be one line of printable ASCII/);
    expect(() => vagrantfile(lab, optionsFor(lab, { clusterKeyPath: 'ssh/cluster' }))).toThrow(/clusterKeyPath must be an absolute path/);
  });

  it('writes strings as Ruby literals that interpolate nothing', () => {
    expect(ruby('a"b\\c#{d}')).toBe('"a\\"b\\\\c\\#{d}"');
    expect(() => ruby('a\u0000b')).toThrow(/control characters/);
  });
});

// The real `vagrant validate` (Vagrant 2.3.4 with vagrant-libvirt 0.11.2 from Debian).
describe('vagrant validate', () => {
  const xenial = resolveClusterOrThrow({});
  const lab = resolveClusterOrThrow({ profile: 'lab', provider: 'libvirt' });

  it('accepts the lab Vagrantfile with the libvirt provider checking its own block', async () => {
    const result = await vagrantValidate(vagrantfile(lab, optionsFor(lab)), { provider: 'libvirt' });
    expect(result.output).toContain('Vagrantfile validated successfully');
    expect(result.valid).toBe(true);
  });

  it('accepts the first-boot channel (SMBIOS OEM strings) and the cluster key tried before the bootstrap key', async () => {
    const clusterKeyPath = (await ensureKeyPair(join(dir, 'cluster_ed25519'), 'boxcar-cluster-lab')).privateKey;
    const text = vagrantfile(lab, optionsFor(lab, { clusterKeyPath, oemStrings: ['boxcar.authorized_key=ssh-ed25519 AAAAC3Nza boxcar-cluster-lab'] }));
    expect(text).toContain('libvirt.sysinfo = { "oem strings" => ["boxcar.authorized_key=ssh-ed25519 AAAAC3Nza boxcar-cluster-lab"] }');
    expect(text).toContain(`config.ssh.private_key_path = [${JSON.stringify(clusterKeyPath)}, ${JSON.stringify(keyPath)}]`);
    const result = await vagrantValidate(text, { provider: 'libvirt' });
    expect(result.valid, result.output).toBe(true);
  });

  it('holds only the cluster key when every node gets it at first boot, and wants one of the two keys', async () => {
    const clusterKeyPath = (await ensureKeyPair(join(dir, 'cluster_ed25519'), 'boxcar-cluster-lab')).privateKey;
    const { privateKeyPath: _bootstrap, ...withoutBootstrap } = optionsFor(lab, { clusterKeyPath });
    const text = vagrantfile(lab, withoutBootstrap);
    expect(text).toContain(`  config.ssh.private_key_path = ${JSON.stringify(clusterKeyPath)}\n`);
    expect(text).not.toContain(keyPath);
    const { clusterKeyPath: _cluster, ...neither } = withoutBootstrap;
    expect(() => vagrantfile(lab, neither)).toThrow(/privateKeyPath is required when clusterKeyPath is not given/);
    const result = await vagrantValidate(text, { provider: 'libvirt' });
    expect(result.valid, result.output).toBe(true);
  });

  it('accepts the 2016 cluster on libvirt too', async () => {
    const result = await vagrantValidate(vagrantfile({ ...xenial, provider: 'libvirt' }, optionsFor({ ...xenial, provider: 'libvirt' })), { provider: 'libvirt' });
    expect(result.valid, result.output).toBe(true);
  });

  it('accepts the 2016 VirtualBox Vagrantfile with --ignore-provider (no VirtualBox here)', async () => {
    const text = vagrantfile(xenial, optionsFor(xenial));
    const without = await vagrantValidate(text, { provider: 'virtualbox' });
    expect(without.valid).toBe(false);
    expect(without.output).toMatch(/could not detect VirtualBox/);
    const result = await vagrantValidate(text, { provider: 'virtualbox', ignoreProvider: true });
    expect(result.valid, result.output).toBe(true);
  });

  it('accepts the VirtualBox block itself when a VBoxManage test double reports a version', async () => {
    // TEST DOUBLE for VBoxManage (VirtualBox is not in Debian): it answers `--version` only, which is all
    // the provider asks before it validates its configuration.
    const bin = join(dir, 'vbox-double');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'VBoxManage'), '#!/bin/sh\n[ "$1" = --version ] && echo 7.0.14r161095\nexit 0\n');
    await chmod(join(bin, 'VBoxManage'), 0o755);
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const text = vagrantfile(xenial, optionsFor(xenial));
    expect((await vagrantValidate(text, { provider: 'virtualbox', env })).valid).toBe(true);
    const broken = await vagrantValidate(text.replace('vb.cpus = 2', 'vb.cpus = 2\n      vb.nic_promisc = "allow-all"'), { provider: 'virtualbox', env });
    expect(broken.valid).toBe(false);
    expect(broken.output).toMatch(/VirtualBox Provider:[\s\S]*shouldn't exist: nic_promisc/);
  });

  it('fails on a Ruby syntax error', async () => {
    const text = vagrantfile(lab, optionsFor(lab)).replace(/\nend\n$/, '\n');
    const result = await vagrantValidate(text, { provider: 'libvirt' });
    expect(result.valid).toBe(false);
    expect(result.output).toMatch(/syntax error|unexpected end-of-input/);
  });

  it('fails on a private network without its IP, also with --ignore-provider', async () => {
    const text = vagrantfile(xenial, optionsFor(xenial)).replace('ip: "192.168.10.21", ', 'type: "static", ');
    const result = await vagrantValidate(text, { provider: 'virtualbox', ignoreProvider: true });
    expect(result.valid).toBe(false);
    expect(result.output).toMatch(/An IP is required for a private network/);
  });

  it('fails on a setting vagrant-libvirt does not know', async () => {
    const text = vagrantfile(lab, optionsFor(lab)).replace('libvirt.memballoon_enabled = false', 'libvirt.memballon_enabled = false');
    const result = await vagrantValidate(text, { provider: 'libvirt' });
    expect(result.valid).toBe(false);
    expect(result.output).toMatch(/Libvirt Provider:[\s\S]*memballon_enabled/);
  });
});
