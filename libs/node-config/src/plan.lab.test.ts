import { execa } from 'execa';
import { REPO_ROOT, resolveClusterOrThrow, ipToInt } from '@boxcar/model';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCniDir } from './cni-files.ts';
import { planNode } from './plan.ts';
import { ed25519PublicKey } from './testing/keys.ts';
import { fileAt, parseEnvFile, step, text } from './testing/parse.ts';
import type { PlanInputs } from './types.ts';

// The lab profile: Debian bookworm, no Kubernetes, no VPP, no Calico; the old ipvlan demo and Calico's etcd.
const cluster = resolveClusterOrThrow({ profile: 'lab' });
const cni = await readCniDir(join(REPO_ROOT, 'cni'));
const clusterSshKey = ed25519PublicKey('boxcar-cluster-lab');
const inputs: PlanInputs = { clusterPublicKey: clusterSshKey, cni };
const plans = Object.fromEntries(cluster.nodes.map((node) => [node.name, planNode(cluster, node.name, inputs)]));
const plan = (name: string) => plans[name]!;

describe('lab plan: which steps each node gets', () => {
  it('cni-master1: hostname, cluster-ip, etcd (off), ssh-keys', () =>
    expect(plan('cni-master1').steps.map((s) => s.id)).toEqual(['hostname', 'cluster-ip', 'etcd', 'ssh-keys']));
  it('cni-worker1 (etcd node): hostname, cluster-ip, etcd, cni, ssh-keys', () =>
    expect(plan('cni-worker1').steps.map((s) => s.id)).toEqual(['hostname', 'cluster-ip', 'etcd', 'cni', 'ssh-keys']));
  it('cni-worker2: hostname, cluster-ip, etcd (off), cni, ssh-keys', () =>
    expect(plan('cni-worker2').steps.map((s) => s.id)).toEqual(['hostname', 'cluster-ip', 'etcd', 'cni', 'ssh-keys']));
  it('no node gets a Kubernetes, Calico or VPP step', () => {
    const kubernetes = ['certificates', 'kubelet', 'master-manifests', 'worker-manifests', 'kubeconfig', 'felix', 'vpp-uplink', 'calico-pool', 'route-agent'];
    for (const p of Object.values(plans)) expect(p.steps.map((s) => s.id).filter((id) => kubernetes.includes(id))).toEqual([]);
  });
});

describe.each(cluster.nodes.map((node) => [node.name, node] as const))('lab plan of %s', (name, node) => {
  it('sets the hostname', () => expect(text(fileAt(plan(name), '/etc/hostname'))).toBe(`${name}\n`));
  it('lists every node in /etc/hosts', () => {
    const hosts = text(fileAt(plan(name), '/etc/hosts')).split('\n');
    for (const other of cluster.nodes) expect(hosts).toContain(`${other.ip} ${other.name}`);
  });
  it('keeps localhost in /etc/hosts', () => expect(text(fileAt(plan(name), '/etc/hosts'))).toMatch(/^127\.0\.0\.1 localhost$/m));
  it('does not map its own name to 127.0.1.1', () => expect(text(fileAt(plan(name), '/etc/hosts'))).not.toContain('127.0.1.1'));

  const network = () => text(fileAt(plan(name), '/etc/systemd/network/10-boxcar-enp0s8.network'));
  it('networkd matches the cluster NIC enp0s8', () => expect(network()).toMatch(/^\[Match\]\nName=enp0s8$/m));
  it(`networkd gives enp0s8 ${node.ip}/24`, () => expect(network()).toMatch(new RegExp(`^Address=${node.ip.replaceAll('.', '\\.')}/24$`, 'm')));
  it('networkd is enabled and the NIC reconfigured when the file changes', () => {
    const s = step(plan(name), 'cluster-ip');
    expect(s.onlyIfChanged).toBe(true);
    expect(s.commands).toEqual(['systemctl enable --now systemd-networkd', 'networkctl reload', 'networkctl reconfigure enp0s8']);
  });

  it('ssh-keys is the last step', () => expect(plan(name).steps.at(-1)!.id).toBe('ssh-keys'));
  it('authorized_keys holds the cluster key and nothing else', () => expect(text(fileAt(plan(name), '/home/vagrant/.ssh/authorized_keys'))).toBe(`${clusterSshKey}\n`));
  it('authorized_keys is mode 600', () => expect(fileAt(plan(name), '/home/vagrant/.ssh/authorized_keys').mode).toBe('0600'));
  it('authorized_keys belongs to vagrant', () => expect(fileAt(plan(name), '/home/vagrant/.ssh/authorized_keys').owner).toBe('vagrant:vagrant'));
});

describe('lab etcd: Debian etcd-server 3.4 on cni-worker1 only', () => {
  const etcdStep = step(plan('cni-worker1'), 'etcd');
  const env = parseEnvFile(text(fileAt(plan('cni-worker1'), '/etc/default/etcd')));
  it('ETCD_NAME is the node name', () => expect(env.ETCD_NAME).toBe('cni-worker1'));
  it('ETCD_DATA_DIR is per cluster', () => expect(env.ETCD_DATA_DIR).toBe('/var/lib/etcd/lab'));
  it('ETCD_LISTEN_CLIENT_URLS: every client port on the node IP and on 127.0.0.1', () =>
    expect(env.ETCD_LISTEN_CLIENT_URLS!.split(',')).toEqual([
      'http://192.168.10.21:2379', 'http://192.168.10.21:4001', 'http://127.0.0.1:2379', 'http://127.0.0.1:4001',
    ]));
  it('ETCD_ADVERTISE_CLIENT_URLS: both client ports on the node IP', () =>
    expect(env.ETCD_ADVERTISE_CLIENT_URLS!.split(',')).toEqual(['http://192.168.10.21:2379', 'http://192.168.10.21:4001']));
  it('ETCD_LISTEN_PEER_URLS: :2380 and :7001', () =>
    expect(env.ETCD_LISTEN_PEER_URLS!.split(',')).toEqual(['http://192.168.10.21:2380', 'http://192.168.10.21:7001']));
  it('ETCD_INITIAL_ADVERTISE_PEER_URLS: :2380 and :7001', () =>
    expect(env.ETCD_INITIAL_ADVERTISE_PEER_URLS!.split(',')).toEqual(['http://192.168.10.21:2380', 'http://192.168.10.21:7001']));
  it('ETCD_INITIAL_CLUSTER: the one member on both peer ports', () =>
    expect(env.ETCD_INITIAL_CLUSTER).toBe('cni-worker1=http://192.168.10.21:2380,cni-worker1=http://192.168.10.21:7001'));
  it('ETCD_INITIAL_CLUSTER_STATE is new', () => expect(env.ETCD_INITIAL_CLUSTER_STATE).toBe('new'));
  it('ETCD_INITIAL_CLUSTER_TOKEN is the cluster name', () => expect(env.ETCD_INITIAL_CLUSTER_TOKEN).toBe('lab'));
  it('ETCD_ENABLE_V2 keeps the v2 API of the 2016 clients', () => expect(env.ETCD_ENABLE_V2).toBe('true'));
  it('etcd is enabled and restarted when its configuration changes (no systemd reload: no unit file changed)', () => {
    expect(etcdStep.onlyIfChanged).toBe(true);
    expect(etcdStep.commands).toEqual(['systemctl enable etcd.service', 'systemctl restart etcd.service']);
  });
  it.each(['cni-master1', 'cni-worker2'])('%s disables etcd and writes no etcd configuration', (name) => {
    const s = step(plan(name), 'etcd');
    expect(s.files).toEqual([]);
    expect(s.commands.join('\n')).toContain('systemctl disable --now etcd.service');
  });
  describe('the disable command, run by bash with systemctl as a TEST DOUBLE (a shell function)', () => {
    const command = step(plan('cni-master1'), 'etcd').commands[0]!;
    // ENABLED / ACTIVE: what `systemctl is-enabled` / `is-active` answer (0 = yes); every other call is printed.
    const run = async (enabled: number, active: number) =>
      execa(
        'bash',
        ['-c', `systemctl() { case "$1" in is-enabled) return $ENABLED;; is-active) return $ACTIVE;; *) echo "systemctl $*";; esac; }\nset -euo pipefail\n${command}`],
        { env: { ENABLED: String(enabled), ACTIVE: String(active) }, reject: false },
      );
    it('disables and stops etcd where it is enabled', async () => expect(await run(0, 3)).toMatchObject({ exitCode: 0, stdout: 'systemctl disable --now etcd.service' }));
    it('stops etcd where it runs without being enabled', async () => expect(await run(1, 0)).toMatchObject({ exitCode: 0, stdout: 'systemctl disable --now etcd.service' }));
    it('does nothing (no systemd reload), and does not fail, where etcd is disabled, stopped or not installed', async () =>
      expect(await run(1, 3)).toMatchObject({ exitCode: 0, stdout: '' }));
  });
});

describe('lab CNI: the ipvlan demo with each worker\'s share of the container range', () => {
  const conf = (name: string) => JSON.parse(text(fileAt(plan(name), '/etc/cni/net.d/ipvlan.conf'))) as Record<string, any>;
  it.each(cluster.workers.map((w) => [w.name, w] as const))('%s: rangeStart/rangeEnd are its ipamRange', (name, worker) => {
    expect(conf(name).ipam.rangeStart).toBe(worker.ipamRange!.start);
    expect(conf(name).ipam.rangeEnd).toBe(worker.ipamRange!.end);
  });
  it('cni-worker1 hands out 192.168.10.100-149', () => expect([conf('cni-worker1').ipam.rangeStart, conf('cni-worker1').ipam.rangeEnd]).toEqual(['192.168.10.100', '192.168.10.149']));
  it('cni-worker2 hands out 192.168.10.150-200', () => expect([conf('cni-worker2').ipam.rangeStart, conf('cni-worker2').ipam.rangeEnd]).toEqual(['192.168.10.150', '192.168.10.200']));
  it('master is the cluster NIC', () => expect(conf('cni-worker1').master).toBe('enp0s8'));
  it('type ipvlan', () => expect(conf('cni-worker1').type).toBe('ipvlan'));
  it('mode l2', () => expect(conf('cni-worker1').mode).toBe('l2'));
  it('name cnidemo', () => expect(conf('cni-worker1').name).toBe('cnidemo'));
  it('ipam host-local', () => expect(conf('cni-worker1').ipam.type).toBe('host-local'));
  it('ipam subnet is the cluster subnet', () => expect(conf('cni-worker1').ipam.subnet).toBe('192.168.10.0/24'));
  it('the Calico conf is left out (the lab has no Calico)', () =>
    expect(step(plan('cni-worker1'), 'cni').files.map((f) => f.path)).toEqual(['/etc/cni/net.d/ipvlan.conf']));
  it('links Debian\'s plugins from /usr/lib/cni into /opt/cni/bin (cni/bin is empty)', () =>
    expect(step(plan('cni-worker1'), 'cni').commands.join('\n')).toContain('ln -sf /usr/lib/cni/* /opt/cni/bin/'));
  it('copies cni/bin instead when it has binaries', () => {
    const withBin = planNode(cluster, 'cni-worker1', { ...inputs, cni: { ...cni, bin: [{ name: 'ipvlan', content: new Uint8Array([0x7f, 0x45]), mode: '0755' }] } });
    const s = step(withBin, 'cni');
    expect(s.files.find((f) => f.path === '/opt/cni/bin/ipvlan')?.mode).toBe('0755');
    expect(s.commands).toEqual([]);
  });
  it('the master gets no CNI configuration', () => expect(plan('cni-master1').steps.some((s) => s.id === 'cni')).toBe(false));
});

describe('per-node IPAM ranges never overlap and stay inside the container range', () => {
  it.each([1, 2, 3, 5, 8])('with %i workers', (workers) => {
    const c = resolveClusterOrThrow({ profile: 'lab', workers });
    const ranges = c.workers.map((w) => {
      const conf = JSON.parse(text(fileAt(planNode(c, w.name, inputs), '/etc/cni/net.d/ipvlan.conf'))) as { ipam: { rangeStart: string; rangeEnd: string } };
      return [ipToInt(conf.ipam.rangeStart), ipToInt(conf.ipam.rangeEnd)] as const;
    });
    expect(ranges).toHaveLength(workers);
    const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
    sorted.forEach(([start, end], i) => {
      expect(start).toBeLessThanOrEqual(end);
      if (i > 0) expect(start).toBeGreaterThan(sorted[i - 1]![1]);
    });
    expect(sorted[0]![0]).toBe(ipToInt(c.network.containerRange.start));
    expect(sorted.at(-1)![1]).toBe(ipToInt(c.network.containerRange.end));
  });
});

describe('bad input', () => {
  it('names an unknown node and lists the allowed ones', () =>
    expect(() => planNode(cluster, 'cni-worker9', inputs)).toThrow('node "cni-worker9" is not in cluster "lab"; allowed: cni-master1, cni-worker1, cni-worker2'));
  it('refuses a cluster key that is not an OpenSSH public key', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputs, clusterPublicKey: 'ssh-ed25519 not-base64!' })).toThrow(/inputs\.clusterPublicKey: the key is not base64/));
  it('refuses a truncated cluster key', () => {
    const [type, blob] = clusterSshKey.split(' ');
    expect(() => planNode(cluster, 'cni-worker1', { ...inputs, clusterPublicKey: `${type} ${blob!.slice(0, 12)}` })).toThrow(/inputs\.clusterPublicKey: the key data says/);
  });
  it('refuses a private key pasted as the public key', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputs, clusterPublicKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----' })).toThrow(/inputs\.clusterPublicKey: must be one line/));
  it('names a CNI conf that is not JSON', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputs, cni: { conf: [{ name: 'broken.conf', content: '{', mode: '0644' }], bin: [] } })).toThrow(/cni\/conf\/broken\.conf: not valid JSON/));
  it('names an ipvlan conf whose IPAM is not host-local', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputs, cni: { conf: [{ name: 'x.conf', content: '{"type":"ipvlan","ipam":{"type":"dhcp"}}', mode: '0644' }], bin: [] } })).toThrow(/cni\/conf\/x\.conf: ipam\.type must be "host-local"/));
});

describe('readCniDir', () => {
  it('reads conf and bin files with their modes, skipping dotfiles', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'boxcar-cni-'));
    try {
      await mkdir(join(dir, 'conf'));
      await mkdir(join(dir, 'bin'));
      await writeFile(join(dir, 'conf/ipvlan.conf'), '{}');
      await chmod(join(dir, 'conf/ipvlan.conf'), 0o640);
      await writeFile(join(dir, 'bin/ipvlan'), new Uint8Array([0x7f, 0x45, 0x4c, 0x46]));
      await chmod(join(dir, 'bin/ipvlan'), 0o755);
      await writeFile(join(dir, 'bin/.gitkeep'), '');
      const read = await readCniDir(dir);
      expect(read.conf.map((f) => [f.name, f.mode, String(f.content)])).toEqual([['ipvlan.conf', '0640', '{}']]);
      expect(read.bin.map((f) => [f.name, f.mode, [...(f.content as Uint8Array)]])).toEqual([['ipvlan', '0755', [0x7f, 0x45, 0x4c, 0x46]]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('treats an absent bin/ as empty', () => expect(cni.bin).toEqual([]));
  it('names a missing folder', async () => expect(readCniDir('/nonexistent/cni')).rejects.toThrow('/nonexistent/cni: the CNI folder (with conf/ and bin/) does not exist'));
});
