import { resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { describe, expect, it } from 'vitest';
import { TCG_ARGS } from '../accel.ts';
import { forwardsKubernetesApi } from '../provider.ts';
import { nicDevice, qemuNodeArgs, qemuValue, vdeSwitchArgs, type QemuNodeSpec } from './args.ts';
import { stateLayout } from './layout.ts';

const cluster = resolveClusterOrThrow({ profile: 'lab' });
const layout = stateLayout('/srv/boxcar/.cluster/lab/qemu');
/** The lab as it runs Kubernetes (cluster.kubernetes), and the same cluster without (as the lab was before). */
const TEST_KUBERNETES: NonNullable<Cluster['kubernetes']> = {
  version: 'v1.20.2', runtime: 'containerd', controlPlane: 'systemd', podNetwork: { type: 'bird-mesh', asn: 64512, blockPrefixLength: 24, firstBlock: 100 }, images: { pause: 'pause:3.2', test: 'test:1' },
};
const k8s: Cluster = { ...cluster, kubernetes: cluster.kubernetes ?? TEST_KUBERNETES };
const { kubernetes: _none, ...plain } = cluster;

/** A node's spec; the master of a Kubernetes cluster gets its API port (41000 + index) unless the overrides say otherwise. */
function spec(nodeIndex: number, overrides: Partial<QemuNodeSpec> = {}): QemuNodeSpec {
  const of = overrides.cluster ?? cluster;
  const node = of.nodes[nodeIndex]!;
  const api = forwardsKubernetesApi(of, node.name) ? { apiPort: 41_000 + nodeIndex } : {};
  return { cluster: of, node, paths: layout.node(node.name), sshPort: 40_000 + nodeIndex, ...api, switchSockets: layout.switchSocket, accelArgs: TCG_ARGS, ...overrides };
}

/** The values of every occurrence of an option, e.g. all `-device` arguments. */
function values(argv: string[], option: string): string[] {
  return argv.flatMap((arg, index) => (arg === option ? [argv[index + 1]!] : []));
}

function device(argv: string[], netdev: string): Record<string, string> {
  const text = values(argv, '-device').find((value) => value.includes(`netdev=${netdev},`) || value.endsWith(`netdev=${netdev}`));
  expect(text, `a -device for netdev ${netdev}`).toBeDefined();
  const [driver, ...props] = text!.split(',');
  return { driver: driver!, ...Object.fromEntries(props.map((prop) => prop.split('=') as [string, string])) };
}

describe('qemuNodeArgs (lab profile)', () => {
  it('puts the three NICs in slots 3, 8 and 9 with the models of the 2016 Vagrantfile', () => {
    const argv = qemuNodeArgs(spec(1));
    expect(device(argv, 'nat')).toMatchObject({ driver: 'virtio-net-pci', addr: '0x3' });
    expect(device(argv, 'cluster')).toMatchObject({ driver: 'virtio-net-pci', addr: '0x8' });
    // The VPP NIC is an Intel 82540EM, PCI 0000:00:09.0 in the guest.
    expect(device(argv, 'vpp')).toMatchObject({ driver: 'e1000', addr: '0x9' });
    const addresses = values(argv, '-device').map((value) => /addr=(0x[0-9a-f]+)/.exec(value)?.[1]);
    expect(new Set(addresses).size).toBe(addresses.length);
  });

  it("gives each node its model MACs on the cluster and VPP NICs, all different", () => {
    const all = cluster.nodes.map((node, index) => {
      const argv = qemuNodeArgs(spec(index));
      expect(device(argv, 'cluster').mac).toBe(node.macs.cluster);
      expect(device(argv, 'vpp').mac).toBe(node.macs.vpp);
      return [device(argv, 'cluster').mac, device(argv, 'vpp').mac];
    });
    expect(new Set(all.flat()).size).toBe(cluster.nodes.length * 2);
  });

  it('forwards SSH from 127.0.0.1 only, on a restricted user network', () => {
    // A profile without Kubernetes: SSH is the only forward (the lab's master also forwards its API, below).
    const argv = qemuNodeArgs(spec(0, { cluster: plain, sshPort: 45_678 }));
    const netdevs = values(argv, '-netdev');
    expect(netdevs).toContain('user,id=nat,restrict=on,hostfwd=tcp:127.0.0.1:45678-:22');
    expect(netdevs.filter((value) => value.includes('hostfwd'))).toHaveLength(1);
    for (const index of [0, 1, 2]) {
      const all = qemuNodeArgs(spec(index, { cluster: k8s })).join(' ');
      expect(all).not.toMatch(/hostfwd=tcp::|hostfwd=tcp:0\.0\.0\.0/);
      expect([...all.matchAll(/hostfwd=tcp:([^:]*):/g)].map((match) => match[1])).toEqual(index === 0 ? ['127.0.0.1', '127.0.0.1'] : ['127.0.0.1']);
    }
  });

  it('connects the cluster and VPP NICs to the two vde switches of the state dir', () => {
    const netdevs = values(qemuNodeArgs(spec(2)), '-netdev');
    expect(netdevs).toContain(`vde,id=cluster,sock=${layout.switchSocket.cluster}`);
    expect(netdevs).toContain(`vde,id=vpp,sock=${layout.switchSocket.vpp}`);
  });

  it('takes memory and CPUs from the model and the accelerator from the caller', () => {
    const big = resolveClusterOrThrow({ profile: 'lab', nodes: [{ name: 'cni-worker2', memoryMb: 1536, cpus: 2 }] });
    const argv = qemuNodeArgs({ ...spec(2), cluster: big, node: big.nodes[2]! });
    expect(values(argv, '-m')).toEqual(['1536']);
    expect(values(argv, '-smp')).toEqual(['2']);
    expect(values(argv, '-accel')).toEqual(['tcg,tb-size=128']);
    expect(values(qemuNodeArgs(spec(0, { accelArgs: ['-accel', 'kvm', '-cpu', 'host'] })), '-cpu')).toEqual(['host']);
  });

  it('boots daemonized from the overlay, with the serial console in the node dir', () => {
    const paths = layout.node('cni-master1');
    const argv = qemuNodeArgs(spec(0));
    expect(argv).toContain('-daemonize');
    expect(values(argv, '-pidfile')).toEqual([paths.pidFile]);
    expect(values(argv, '-drive')[0]).toBe(`file=${paths.overlay},if=none,id=disk0,format=qcow2,discard=unmap`);
    expect(values(argv, '-chardev')).toEqual([`file,id=serial0,path=${paths.serialLog}`]);
    expect(values(argv, '-display')).toEqual(['none']);
  });

  it('opens a QMP monitor on a socket in the node dir that never makes the VM wait, and refuses one too long for a unix socket', () => {
    expect(values(qemuNodeArgs(spec(0)), '-qmp')).toEqual([`unix:${layout.node('cni-master1').qmpSocket},server=on,wait=off`]);
    expect(layout.node('cni-master1').qmpSocket).toBe('/srv/boxcar/.cluster/lab/qemu/nodes/cni-master1/qmp.sock');
    // The switch directories fit (the state dir is short enough), a long node name does not.
    const deep = stateLayout(`/tmp/${'d'.repeat(70)}`).node('cni-worker-with-a-long-name');
    expect(() => qemuNodeArgs(spec(0, { paths: deep }))).toThrow(/monitor socket .*qmp\.sock has 1\d\d bytes, at most 107 fit in a unix socket path/);
  });

  it('escapes commas in paths, which QEMU would read as option separators', () => {
    const odd = stateLayout('/tmp/a,b');
    const argv = qemuNodeArgs(spec(0, { paths: odd.node('cni-master1'), switchSockets: odd.switchSocket }));
    expect(values(argv, '-drive')[0]).toMatch(/^file=\/tmp\/a,,b\/nodes\/cni-master1\/disk\.qcow2,if=none/);
    expect(values(argv, '-netdev')).toContain('vde,id=cluster,sock=/tmp/a,,b/switch-cluster');
    expect(qemuValue('x,y,z')).toBe('x,,y,,z');
  });

  it('refuses NIC models and slots QEMU cannot honour, naming the field', () => {
    expect(() => nicDevice('Am79C973', 'network.nics.vpp.model')).toThrow(/network\.nics\.vpp\.model: NIC model "Am79C973" has no QEMU device; allowed: virtio, 82540EM, e1000/);
    const clash: Cluster = { ...cluster, network: { ...cluster.network, nics: { ...cluster.network.nics, vpp: { ...cluster.network.nics.vpp, pciSlot: 8 } } } };
    expect(() => qemuNodeArgs({ ...spec(0), cluster: clash })).toThrow(/same PCI slot twice \(3, 8, 8\)/);
    const onDisk: Cluster = { ...cluster, network: { ...cluster.network, nics: { ...cluster.network.nics, vpp: { ...cluster.network.nics.vpp, pciSlot: 4 } } } };
    expect(() => qemuNodeArgs({ ...spec(0), cluster: onDisk })).toThrow(/network\.nics\.vpp\.pciSlot: must be a free PCI slot/);
    expect(() => qemuNodeArgs(spec(0, { sshPort: 22 }))).toThrow(/sshPort must be from 1024 to 65535/);
  });
});

describe('the Kubernetes API forward (clusters with cluster.kubernetes)', () => {
  const hostfwds = (argv: string[]) => values(argv, '-netdev').flatMap((value) => value.split(',').filter((part) => part.startsWith('hostfwd=')));

  it("forwards 127.0.0.1:<apiPort> to the master's secure port, beside SSH, on the restricted user network", () => {
    const argv = qemuNodeArgs(spec(0, { cluster: k8s, sshPort: 45_678, apiPort: 45_679 }));
    expect(values(argv, '-netdev')).toContain('user,id=nat,restrict=on,hostfwd=tcp:127.0.0.1:45678-:22,hostfwd=tcp:127.0.0.1:45679-:443');
    expect(hostfwds(argv)).toEqual(['hostfwd=tcp:127.0.0.1:45678-:22', 'hostfwd=tcp:127.0.0.1:45679-:443']);
    // The guest side follows the model's secure port.
    const moved: Cluster = { ...k8s, api: { ...k8s.api, securePort: 6443 } };
    expect(hostfwds(qemuNodeArgs(spec(0, { cluster: moved, apiPort: 45_679 })))).toContain('hostfwd=tcp:127.0.0.1:45679-:6443');
  });

  it('forwards no API on the workers, nor on the master of a profile without Kubernetes', () => {
    for (const index of [1, 2]) expect(hostfwds(qemuNodeArgs(spec(index, { cluster: k8s }))), `node ${index}`).toEqual([`hostfwd=tcp:127.0.0.1:${40_000 + index}-:22`]);
    expect(hostfwds(qemuNodeArgs(spec(0, { cluster: plain })))).toEqual(['hostfwd=tcp:127.0.0.1:40000-:22']);
  });

  it('wants the API port exactly where it is forwarded', () => {
    const { apiPort: _port, ...withoutPort } = spec(0, { cluster: k8s });
    expect(() => qemuNodeArgs(withoutPort)).toThrow('qemu node cni-master1: apiPort is required');
    expect(() => qemuNodeArgs(spec(1, { cluster: k8s, apiPort: 45_679 }))).toThrow('qemu node cni-worker1: apiPort is only for the master of a cluster that runs Kubernetes (cni-master1)');
    expect(() => qemuNodeArgs(spec(0, { cluster: plain, apiPort: 45_679 }))).toThrow('apiPort is only for the master of a cluster that runs Kubernetes (cni-master1, and this profile runs none)');
    expect(() => qemuNodeArgs(spec(0, { cluster: k8s, apiPort: 40_000 }))).toThrow('apiPort must be from 1024 to 65535 and not the SSH port 40000, got 40000');
  });
});

describe('stateLayout', () => {
  it('keeps everything of a cluster under its state dir, but its lock, which sits beside it', () => {
    const all = [layout.portsFile, ...Object.values(layout.switchSocket), ...Object.values(layout.switchPidFile), ...Object.values(layout.node('x'))];
    for (const path of all) expect(path.startsWith('/srv/boxcar/.cluster/lab/qemu/')).toBe(true);
    expect(layout.lockFile).toBe('/srv/boxcar/.cluster/lab/qemu.lock');
  });

  it('refuses a state dir too deep for a unix socket path', () => {
    expect(() => stateLayout(`/tmp/${'d'.repeat(90)}`)).toThrow(/too deep: the switch socket directory .* at most 90 fit in a unix socket path/);
    expect(() => stateLayout('')).toThrow(/stateDir must name a directory/);
  });
});

describe('vdeSwitchArgs', () => {
  it('daemonizes with a pid file and ignores the user’s vde rc files', () => {
    expect(vdeSwitchArgs('/s/switch-cluster', '/s/switch-cluster.pid')).toEqual([
      '--sock', '/s/switch-cluster', '--daemon', '--pidfile', '/s/switch-cluster.pid', '--rcfile', '/dev/null', '--numports', '128',
    ]);
  });
});

describe('the first-boot channel on the qemu command line', () => {
  it('passes each OEM string as SMBIOS type 11, commas doubled for QEMU', () => {
    const argv = qemuNodeArgs(spec(0, { oemStrings: ['boxcar.authorized_key=ssh-ed25519 AAAA x,y'] }));
    expect(values(argv, '-smbios')).toEqual(['type=11,value=boxcar.authorized_key=ssh-ed25519 AAAA x,,y']);
  });

  it('passes none without OEM strings', () => expect(values(qemuNodeArgs(spec(0)), '-smbios')).toEqual([]));
});
