import { execa } from 'execa';
import { REPO_ROOT, resolveClusterOrThrow, ipToInt, type Cluster } from '@boxcar/model';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCniDir } from './cni-files.ts';
import { planNode } from './plan.ts';
import { masterRoleArgs } from './render/kubernetes-units.ts';
import { ed25519PublicKey } from './testing/keys.ts';
import { fileAt, flagMap, parseEnvFile, parseToml, parseUnit, parseYaml, splitExecStart, step, text, unitValues } from './testing/parse.ts';
import { shellcheck } from './testing/shellcheck.ts';
import type { KubernetesPems, NodePlan, PemPair, PlanInputs } from './types.ts';

// The lab profile: Debian bookworm; Kubernetes 1.20.2 as systemd units on containerd, pods routed between the
// nodes by BIRD; Calico's etcd (Debian's etcd-server) on cni-worker1 and the old ipvlan demo on the workers.
const cluster = resolveClusterOrThrow({ profile: 'lab' });
const cni = await readCniDir(join(REPO_ROOT, 'cni'));
const clusterSshKey = ed25519PublicKey('boxcar-cluster-lab');

// PEMs that say whose they are, so that each file can be checked to hold the right one.
const pem = (name: string): PemPair => ({ cert: `-----BEGIN CERTIFICATE-----\n${name}\n`, key: `-----BEGIN PRIVATE KEY-----\n${name}\n` });
const masterPems: NonNullable<KubernetesPems['master']> = {
  apiserver: pem('apiserver'),
  admin: pem('admin'),
  controllerManager: pem('kube-controller-manager'),
  scheduler: pem('kube-scheduler'),
  serviceAccount: pem('sa'),
};
const pemsFor = (c: Cluster, name: string): KubernetesPems => ({
  ca: '-----BEGIN CERTIFICATE-----\nca\n',
  kubelet: pem(`system:node:${name}`),
  proxy: pem('kube-proxy'),
  ...(c.master.name === name ? { master: masterPems } : {}),
});
const inputsFor = (c: Cluster, name: string): PlanInputs => ({ clusterPublicKey: clusterSshKey, kubernetes: pemsFor(c, name), cni });
const planOf = (c: Cluster, name: string): NodePlan => planNode(c, name, inputsFor(c, name));
const plans = Object.fromEntries(cluster.nodes.map((node) => [node.name, planOf(cluster, node.name)]));
const plan = (name: string) => plans[name]!;
const nodes = cluster.nodes.map((node) => [node.name, node] as const);

const unitOf = (p: NodePlan, name: string) => parseUnit(text(fileAt(p, `/etc/systemd/system/${name}`)));
const argvOf = (p: NodePlan, name: string) => splitExecStart(unitValues(unitOf(p, name), 'Service', 'ExecStart')[0]!);
const flagsOf = (p: NodePlan, name: string) => flagMap(argvOf(p, name));
const kubeconfigOf = async (p: NodePlan, path: string) => (await parseYaml([text(fileAt(p, path))]))[0] as Record<string, any>;

describe('lab plan: which steps each node gets', () => {
  it('cni-master1: what every node runs, then the control plane (whose start takes the vCPU for minutes under emulation)', () =>
    expect(plan('cni-master1').steps.map((s) => s.id)).toEqual([
      'hostname', 'cluster-ip', 'certificates', 'etcd', 'containerd', 'bird', 'cni', 'kubelet', 'kube-proxy',
      'kube-etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'ssh-keys',
    ]));
  it.each(['cni-worker1', 'cni-worker2'])('%s: the node components', (name) =>
    expect(plan(name).steps.map((s) => s.id)).toEqual(['hostname', 'cluster-ip', 'certificates', 'etcd', 'containerd', 'bird', 'cni', 'kubelet', 'kube-proxy', 'ssh-keys']));
  it('no node gets a step of the 2016 Kubernetes, Calico or VPP', () => {
    const old = ['master-manifests', 'worker-manifests', 'kubeconfig', 'felix', 'vpp-uplink', 'calico-pool', 'route-agent'];
    for (const p of Object.values(plans)) expect(p.steps.map((s) => s.id).filter((id) => old.includes(id))).toEqual([]);
  });
  it('nothing of docker or hyperkube', () => {
    const everything = Object.values(plans).flatMap((p) => p.steps.flatMap((s) => [...s.files.map((f) => `${f.path}\n${text(f)}`), ...s.commands])).join('\n');
    expect(everything).not.toMatch(/docker|hyperkube|\/etc\/kubernetes\/manifests/);
  });
});

describe.each(nodes)('lab plan of %s', (name, node) => {
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

  it('every private key is a secret file of mode 600, and every secret file is a private key', () => {
    const files = plan(name).steps.flatMap((s) => s.files);
    const keys = files.filter((f) => text(f).includes('PRIVATE KEY'));
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect([key.path, key.mode, key.secret]).toEqual([key.path, '0600', true]);
    expect(files.filter((f) => f.secret).map((f) => f.path)).toEqual(keys.map((f) => f.path));
  });
  it('every certificate or key a unit or kubeconfig names is a file of this plan', () => {
    const planned = new Set(plan(name).steps.flatMap((s) => s.files.map((f) => f.path)));
    const named = plan(name).steps.flatMap((s) => s.files.flatMap((f) => text(f).match(/\/etc\/kubernetes\/[\w./-]+/g) ?? []));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((path) => !planned.has(path))).toEqual([]);
  });
  it('every unit restarts always, 5 s apart (a dependency late under emulation is retried, never given up)', () => {
    const units = plan(name).steps.flatMap((s) => s.files).filter((f) => f.path.startsWith('/etc/systemd/system/'));
    expect(units.length).toBeGreaterThan(0);
    for (const unit of units) {
      expect(unitValues(parseUnit(text(unit)), 'Service', 'Restart')).toEqual(['always']);
      expect(unitValues(parseUnit(text(unit)), 'Service', 'RestartSec')).toEqual(['5']);
    }
  });
});

describe('certificates in /etc/kubernetes/ssl', () => {
  const files = (name: string) => step(plan(name), 'certificates').files.map((f) => [f.path, f.mode, text(f).split('\n')[1]]);
  const pair = (stem: string, owner: string) => [
    [`/etc/kubernetes/ssl/${stem}.pem`, '0644', owner],
    [`/etc/kubernetes/ssl/${stem}-key.pem`, '0600', owner],
  ];
  it('cni-master1: the CA, its own kubelet and kube-proxy pairs, and the control plane\'s', () =>
    expect(files('cni-master1')).toEqual([
      ['/etc/kubernetes/ssl/ca.pem', '0644', 'ca'],
      ...pair('kubelet', 'system:node:cni-master1'),
      ...pair('kube-proxy', 'kube-proxy'),
      ...pair('apiserver', 'apiserver'),
      ...pair('admin', 'admin'),
      ...pair('kube-controller-manager', 'kube-controller-manager'),
      ...pair('kube-scheduler', 'kube-scheduler'),
      ['/etc/kubernetes/ssl/sa.pem', '0644', 'sa'],
      ['/etc/kubernetes/ssl/sa-key.pem', '0600', 'sa'],
    ]));
  it.each(['cni-worker1', 'cni-worker2'])('%s: the CA, its own kubelet pair and kube-proxy\'s, nothing of the control plane', (name) =>
    expect(files(name)).toEqual([['/etc/kubernetes/ssl/ca.pem', '0644', 'ca'], ...pair('kubelet', `system:node:${name}`), ...pair('kube-proxy', 'kube-proxy')]));
  it('a worker given the control plane\'s PEMs by mistake still installs none', () => {
    const p = planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), kubernetes: { ...pemsFor(cluster, 'cni-worker1'), master: masterPems } });
    expect(step(p, 'certificates').files.map((f) => f.path)).not.toContain('/etc/kubernetes/ssl/sa-key.pem');
  });
  it('the components that read them at start are restarted when one changes, if they run', () => {
    expect(step(plan('cni-master1'), 'certificates')).toMatchObject({
      onlyIfChanged: true,
      commands: ['for unit in kube-apiserver.service kube-controller-manager.service kube-scheduler.service kubelet.service kube-proxy.service; do if systemctl is-active --quiet "$unit"; then systemctl restart "$unit"; fi; done'],
    });
    expect(step(plan('cni-worker1'), 'certificates')).toMatchObject({ onlyIfChanged: true, commands: ['for unit in kubelet.service kube-proxy.service; do if systemctl is-active --quiet "$unit"; then systemctl restart "$unit"; fi; done'] });
  });
  it('refuses a plan without them', () =>
    expect(() => planNode(cluster, 'cni-worker1', { clusterPublicKey: clusterSshKey, cni })).toThrow(/inputs\.kubernetes: required for cni-worker1/));
  it('refuses a master plan without the control plane\'s', () =>
    expect(() => planNode(cluster, 'cni-master1', inputsFor(cluster, 'cni-worker1'))).toThrow(/inputs\.kubernetes\.master: required for cni-master1/));
});

describe('the master\'s control plane', () => {
  const master = plan('cni-master1');

  describe('kube-etcd: a second etcd, Kubernetes data only, on the loopback', () => {
    const argv = argvOf(master, 'kube-etcd.service');
    const flags = flagMap(argv);
    it('runs Debian\'s /usr/bin/etcd', () => expect(argv[0]).toBe('/usr/bin/etcd'));
    it.each([
      ['--name', 'kube-etcd'],
      ['--data-dir', '/var/lib/kube-etcd'],
      ['--listen-client-urls', 'http://127.0.0.1:2379'],
      ['--advertise-client-urls', 'http://127.0.0.1:2379'],
      ['--listen-peer-urls', 'http://127.0.0.1:2380'],
      ['--initial-advertise-peer-urls', 'http://127.0.0.1:2380'],
      ['--initial-cluster', 'kube-etcd=http://127.0.0.1:2380'],
      ['--initial-cluster-state', 'new'],
      ['--initial-cluster-token', 'lab-kubernetes'],
    ])('%s=%s', (flag, value) => expect(flags.get(flag)).toBe(value));
    it('no other flag', () => expect(flags.size).toBe(9));
    it('tells systemd when it serves (Type=notify), so the apiserver starts after a ready etcd', () => expect(unitValues(unitOf(master, 'kube-etcd.service'), 'Service', 'Type')).toEqual(['notify']));
    it('the Calico etcd.service is disabled on the master before kube-etcd starts (Debian\'s would hold 127.0.0.1:2379)', () => {
      const ids = master.steps.map((s) => s.id);
      expect(ids.indexOf('etcd')).toBeLessThan(ids.indexOf('kube-etcd'));
      expect(step(master, 'etcd').commands.join('\n')).toContain('systemctl disable --now etcd.service');
    });
  });

  describe('kube-apiserver', () => {
    const argv = argvOf(master, 'kube-apiserver.service');
    const flags = flagMap(argv);
    it('runs the compiled /usr/local/bin/kube-apiserver', () => expect(argv[0]).toBe('/usr/local/bin/kube-apiserver'));
    it('has exactly these flags', () =>
      expect(Object.fromEntries(flags)).toEqual({
        '--advertise-address': '192.168.10.10',
        '--bind-address': '0.0.0.0',
        '--secure-port': '443',
        '--insecure-port': '0',
        '--etcd-servers': 'http://127.0.0.1:2379',
        '--service-cluster-ip-range': '192.168.10.224/27',
        '--authorization-mode': 'Node,RBAC',
        '--enable-admission-plugins': 'NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,NodeRestriction',
        '--allow-privileged': 'true',
        '--client-ca-file': '/etc/kubernetes/ssl/ca.pem',
        '--tls-cert-file': '/etc/kubernetes/ssl/apiserver.pem',
        '--tls-private-key-file': '/etc/kubernetes/ssl/apiserver-key.pem',
        '--kubelet-client-certificate': '/etc/kubernetes/ssl/admin.pem',
        '--kubelet-client-key': '/etc/kubernetes/ssl/admin-key.pem',
        '--kubelet-certificate-authority': '/etc/kubernetes/ssl/ca.pem',
        '--kubelet-preferred-address-types': 'InternalIP,Hostname',
        '--service-account-key-file': '/etc/kubernetes/ssl/sa.pem',
        '--service-account-signing-key-file': '/etc/kubernetes/ssl/sa-key.pem',
        '--service-account-issuer': 'https://kubernetes.default.svc.cluster.local',
      }));
    it('starts after kube-etcd, and wants it', () => {
      const unit = unitOf(master, 'kube-apiserver.service');
      expect(unitValues(unit, 'Unit', 'After')).toEqual(['kube-etcd.service']);
      expect(unitValues(unit, 'Unit', 'Wants')).toEqual(['kube-etcd.service']);
    });
  });

  describe('kube-controller-manager', () => {
    const argv = argvOf(master, 'kube-controller-manager.service');
    it('runs /usr/local/bin/kube-controller-manager', () => expect(argv[0]).toBe('/usr/local/bin/kube-controller-manager'));
    it('has exactly these flags (slow VMs: 2 min before a node is lost, 5 min before its pods are evicted)', () =>
      expect(Object.fromEntries(flagMap(argv))).toEqual({
        '--kubeconfig': '/etc/kubernetes/kube-controller-manager.kubeconfig',
        '--service-account-private-key-file': '/etc/kubernetes/ssl/sa-key.pem',
        '--root-ca-file': '/etc/kubernetes/ssl/ca.pem',
        '--allocate-node-cidrs': 'false',
        '--use-service-account-credentials': 'true',
        '--leader-elect': 'false',
        '--node-monitor-grace-period': '2m',
        '--pod-eviction-timeout': '5m',
      }));
  });

  describe('kube-scheduler', () => {
    const argv = argvOf(master, 'kube-scheduler.service');
    it('runs /usr/local/bin/kube-scheduler with its kubeconfig, no leader election', () =>
      expect(argv).toEqual(['/usr/local/bin/kube-scheduler', '--kubeconfig=/etc/kubernetes/kube-scheduler.kubeconfig', '--leader-elect=false']));
  });

  it('only the apiserver is ordered (after kube-etcd): the other components retry until it answers', () => {
    for (const unit of ['kube-controller-manager.service', 'kube-scheduler.service', 'kube-etcd.service']) {
      expect(unitValues(unitOf(master, unit), 'Unit', 'After')).toEqual([]);
    }
  });

  describe.each([
    ['kube-controller-manager', '/etc/kubernetes/kube-controller-manager.kubeconfig'],
    ['kube-scheduler', '/etc/kubernetes/kube-scheduler.kubeconfig'],
    ['admin', '/etc/kubernetes/admin.kubeconfig'],
  ])('the %s kubeconfig', (identity, path) => {
    it('reaches the API on the loopback, which the apiserver certificate names', async () =>
      expect((await kubeconfigOf(master, path)).clusters[0].cluster.server).toBe('https://127.0.0.1:443'));
    it('trusts the cluster CA', async () => expect((await kubeconfigOf(master, path)).clusters[0].cluster['certificate-authority']).toBe('/etc/kubernetes/ssl/ca.pem'));
    it(`authenticates with the ${identity} pair, by path (no key inside)`, async () => {
      const config = await kubeconfigOf(master, path);
      expect(config.users[0].user).toEqual({ 'client-certificate': `/etc/kubernetes/ssl/${identity}.pem`, 'client-key': `/etc/kubernetes/ssl/${identity}-key.pem` });
      expect(config.contexts[0].context).toEqual({ cluster: 'lab', user: config.users[0].name });
      expect(config['current-context']).toBe(config.contexts[0].name);
      expect(fileAt(master, path).secret).toBeUndefined();
    });
  });

  it.each([
    ['kube-etcd', ['/etc/systemd/system/kube-etcd.service']],
    ['kube-apiserver', ['/etc/systemd/system/kube-apiserver.service']],
    ['kube-controller-manager', ['/etc/kubernetes/kube-controller-manager.kubeconfig', '/etc/systemd/system/kube-controller-manager.service']],
    ['kube-scheduler', ['/etc/kubernetes/kube-scheduler.kubeconfig', '/etc/systemd/system/kube-scheduler.service']],
  ])('%s: reloaded, enabled and restarted only when its unit or kubeconfig changed', (id, paths) => {
    const s = step(master, id);
    expect(s.files.map((f) => f.path)).toEqual(paths);
    expect(s.onlyIfChanged).toBe(true);
    expect(s.commands).toEqual(['systemctl daemon-reload', `systemctl enable ${id}.service`, `systemctl restart ${id}.service`]);
  });

  it('kubectl as root reads the admin kubeconfig (~/.kube/config links to it)', () =>
    expect(step(master, 'kubectl').commands).toEqual(['mkdir -p /root/.kube && ln -sfn /etc/kubernetes/admin.kubeconfig /root/.kube/config']));
});

describe('containerd on every node', () => {
  describe.each(nodes)('%s', (name) => {
    it('/etc/containerd/config.toml: version 2, the local pause image, CNI dirs, runc v2 on cgroupfs, Debian\'s opt path', async () => {
      const config = await parseToml(text(fileAt(plan(name), '/etc/containerd/config.toml')));
      expect(config).toEqual({
        version: 2,
        plugins: {
          'io.containerd.grpc.v1.cri': {
            sandbox_image: cluster.kubernetes!.images.pause,
            cni: { bin_dir: '/opt/cni/bin', conf_dir: '/etc/cni/net.d' },
            containerd: { runtimes: { runc: { runtime_type: 'io.containerd.runc.v2', options: { SystemdCgroup: false } } } },
          },
          'io.containerd.internal.v1.opt': { path: '/var/lib/containerd/opt' },
        },
      });
    });
    it('restarts Debian\'s containerd.service when it changes, with no systemd reload (no unit file written)', () =>
      expect(step(plan(name), 'containerd')).toMatchObject({ onlyIfChanged: true, commands: ['systemctl enable containerd.service', 'systemctl restart containerd.service'] }));
  });
  it('the sandbox image is the profile\'s pause image, boxcar.local/pause:v1.20.2', () => expect(cluster.kubernetes!.images.pause).toBe('boxcar.local/pause:v1.20.2'));
});

describe('kubelet on every node', () => {
  describe.each(nodes)('%s', (name, node) => {
    const argv = argvOf(plan(name), 'kubelet.service');
    const flags = flagMap(argv);
    it('runs the compiled /usr/local/bin/kubelet', () => expect(argv[0]).toBe('/usr/local/bin/kubelet'));
    it.each([
      ['--kubeconfig', '/etc/kubernetes/kubelet.kubeconfig'],
      ['--container-runtime', 'remote'],
      ['--container-runtime-endpoint', 'unix:///run/containerd/containerd.sock'],
      ['--cgroup-driver', 'cgroupfs'],
      ['--fail-swap-on', 'false'],
      ['--pod-infra-container-image', 'boxcar.local/pause:v1.20.2'],
      ['--node-ip', node.ip],
      ['--hostname-override', name],
      ['--cluster-dns', '192.168.10.240'],
      ['--cluster-domain', 'cluster.local'],
      ['--client-ca-file', '/etc/kubernetes/ssl/ca.pem'],
      ['--tls-cert-file', '/etc/kubernetes/ssl/kubelet.pem'],
      ['--tls-private-key-file', '/etc/kubernetes/ssl/kubelet-key.pem'],
      ['--anonymous-auth', 'false'],
      ['--authorization-mode', 'Webhook'],
      ['--image-gc-high-threshold', '100'],
      ['--image-gc-low-threshold', '99'],
      ['--eviction-hard', 'memory.available<50Mi,nodefs.available<1%,imagefs.available<1%'],
      ['--node-status-update-frequency', '20s'],
      ['--node-labels', `boxcar.dev/role=${node.role}`],
    ])('%s=%s', (flag, value) => expect(flags.get(flag)).toBe(value));
    it('its kubeconfig reaches the API at https://192.168.10.10:443 as system:node:<name>\'s pair', async () => {
      const config = await kubeconfigOf(plan(name), '/etc/kubernetes/kubelet.kubeconfig');
      expect(config.clusters[0].cluster).toEqual({ server: 'https://192.168.10.10:443', 'certificate-authority': '/etc/kubernetes/ssl/ca.pem' });
      expect(config.users[0].user).toEqual({ 'client-certificate': '/etc/kubernetes/ssl/kubelet.pem', 'client-key': '/etc/kubernetes/ssl/kubelet-key.pem' });
      expect(text(fileAt(plan(name), '/etc/kubernetes/ssl/kubelet.pem'))).toContain(`system:node:${name}`);
    });
    it('starts after containerd', () => {
      expect(unitValues(unitOf(plan(name), 'kubelet.service'), 'Unit', 'After')).toEqual(['containerd.service']);
      expect(unitValues(unitOf(plan(name), 'kubelet.service'), 'Unit', 'Wants')).toEqual(['containerd.service']);
    });
    it('is reloaded, enabled and restarted when its unit or kubeconfig changed', () =>
      expect(step(plan(name), 'kubelet')).toMatchObject({
        onlyIfChanged: true,
        files: [{ path: '/etc/kubernetes/kubelet.kubeconfig' }, { path: '/etc/systemd/system/kubelet.service' }],
        commands: ['systemctl daemon-reload', 'systemctl enable kubelet.service', 'systemctl restart kubelet.service'],
      }));
    it('no label of the kubernetes.io namespace, which NodeRestriction refuses a kubelet', () => expect(flags.get('--node-labels')).not.toMatch(/kubernetes\.io/));
  });
  it('the master registers tainted, so that no workload lands there', () =>
    expect(flagsOf(plan('cni-master1'), 'kubelet.service').get('--register-with-taints')).toBe('node-role.kubernetes.io/master=:NoSchedule'));
  it.each(['cni-worker1', 'cni-worker2'])('%s registers without a taint', (name) => expect(flagsOf(plan(name), 'kubelet.service').has('--register-with-taints')).toBe(false));
  it('nothing else: those 20 flags on a worker, the taint on top on the master', () => {
    expect(flagsOf(plan('cni-worker1'), 'kubelet.service').size).toBe(20);
    expect(flagsOf(plan('cni-master1'), 'kubelet.service').size).toBe(21);
  });
});

describe('kube-proxy on every node', () => {
  describe.each(nodes)('%s', (name) => {
    it('iptables mode, cluster CIDR the pod pool, conntrack limit left alone', () =>
      expect(argvOf(plan(name), 'kube-proxy.service')).toEqual([
        '/usr/local/bin/kube-proxy',
        '--kubeconfig=/etc/kubernetes/kube-proxy.kubeconfig',
        `--hostname-override=${name}`,
        '--proxy-mode=iptables',
        '--cluster-cidr=192.168.0.0/16',
        '--conntrack-max-per-core=0',
      ]));
    it('its kubeconfig reaches https://192.168.10.10:443 with the kube-proxy pair', async () => {
      const config = await kubeconfigOf(plan(name), '/etc/kubernetes/kube-proxy.kubeconfig');
      expect(config.clusters[0].cluster.server).toBe('https://192.168.10.10:443');
      expect(config.users[0].user).toEqual({ 'client-certificate': '/etc/kubernetes/ssl/kube-proxy.pem', 'client-key': '/etc/kubernetes/ssl/kube-proxy-key.pem' });
    });
    it('is restarted when its unit or kubeconfig changed', () =>
      expect(step(plan(name), 'kube-proxy')).toMatchObject({ onlyIfChanged: true, commands: ['systemctl daemon-reload', 'systemctl enable kube-proxy.service', 'systemctl restart kube-proxy.service'] }));
  });
});

describe('the master label (cluster up runs it on the master once every node is Ready)', () => {
  it('no step of a plan waits for a registration', () => expect(plan('cni-master1').steps.map((s) => s.id)).not.toContain('master-role'));
  it('labels the node, idempotently (run as root on the master, whose kubectl reads the admin kubeconfig: apply.test.ts)', async () => {
    // kubectl as a TEST DOUBLE (a shell function that prints its arguments).
    const result = await execa('bash', ['-c', `kubectl() { echo "kubectl $*"; }\nset -euo pipefail\nkubectl ${masterRoleArgs(cluster.master)}`], { reject: false });
    expect(result).toMatchObject({ exitCode: 0, stdout: 'kubectl label --overwrite node cni-master1 node-role.kubernetes.io/master=' });
  });
});

describe('pod routing: BIRD 2 on every node, iBGP full mesh', () => {
  const podCidrs = { 'cni-master1': '192.168.100.0/24', 'cni-worker1': '192.168.101.0/24', 'cni-worker2': '192.168.102.0/24' } as Record<string, string>;
  describe.each(nodes)('%s', (name, node) => {
    const conf = () => text(fileAt(plan(name), '/etc/bird/bird.conf'));
    const peers = cluster.nodes.filter((other) => other.name !== name);
    it(`router id is its IP ${node.ip}`, () => expect(conf()).toMatch(new RegExp(`^router id ${node.ip.replaceAll('.', '\\.')};$`, 'm')));
    it(`announces its pod range ${podCidrs[name]} (a static blackhole route, exported to BGP only)`, () => {
      expect(node.podCidr).toBe(podCidrs[name]);
      expect(conf()).toMatch(new RegExp(`protocol static pods \\{\\n  ipv4;\\n  route ${podCidrs[name]!.replaceAll('.', '\\.')} blackhole;\\n\\}`));
      expect(conf().match(/^\s*route /gm)).toHaveLength(1);
    });
    it('installs only the BGP routes in the kernel', () => expect(conf()).toContain('protocol kernel {\n  ipv4 {\n    import none;\n    export where source = RTS_BGP;\n  };\n}'));
    it('has a device protocol (interfaces for the direct sessions)', () => expect(conf()).toMatch(/^protocol device \{$/m));
    it('its neighbors are the other nodes, and only they', () =>
      expect([...conf().matchAll(/^  neighbor ([\d.]+) as (\d+);$/gm)].map((m) => [m[1], m[2]])).toEqual(peers.map((peer) => [peer.ip, '64512'])));
    it.each(peers.map((peer) => [peer.name, peer.ip] as const))('the session with %s: iBGP in AS 64512, direct, its routes in, ours out with us as next hop', (peerName, peerIp) =>
      expect(conf()).toContain(
        [
          `protocol bgp peer_${peerName.replaceAll('-', '_')} {`,
          `  description "${peerName}";`,
          `  local ${node.ip} as 64512;`,
          `  neighbor ${peerIp} as 64512;`,
          '  direct;',
          '  ipv4 {',
          '    import all;',
          '    export where source = RTS_STATIC;',
          '    next hop self;',
          '  };',
          '}',
        ].join('\n'),
      ));
    it('readable by the bird user (bird.service reads it after dropping root), not by others', () =>
      expect(fileAt(plan(name), '/etc/bird/bird.conf')).toMatchObject({ mode: '0640', owner: 'root:bird' }));
    it('bird.service is enabled and restarted when it changes', () =>
      expect(step(plan(name), 'bird')).toMatchObject({ onlyIfChanged: true, commands: ['systemctl enable bird.service', 'systemctl restart bird.service'] }));
  });
  it('the pod ranges lie in the pool and apart from each other', () => {
    const ranges = cluster.nodes.map((node) => node.podCidr);
    expect(new Set(ranges).size).toBe(cluster.nodes.length);
    for (const range of ranges) expect(range).toMatch(/^192\.168\.\d+\.0\/24$/);
  });
  it('with 5 workers, 6 nodes each peer with the 5 others', () => {
    const c = resolveClusterOrThrow({ profile: 'lab', workers: 5 });
    for (const node of c.nodes) {
      const conf = text(fileAt(planOf(c, node.name), '/etc/bird/bird.conf'));
      expect([...conf.matchAll(/^  neighbor ([\d.]+) /gm)].map((m) => m[1]).sort()).toEqual(c.nodes.filter((n) => n !== node).map((n) => n.ip).sort());
    }
  });
});

describe('CNI: the bridge on every node with its pod range, the ipvlan demo beside it on the workers', () => {
  const conf = (name: string, file: string) => JSON.parse(text(fileAt(plan(name), `/etc/cni/net.d/${file}`))) as Record<string, any>;
  it.each(nodes)('%s: 10-bridge.conf hands out its podCidr', (name, node) => expect(conf(name, '10-bridge.conf').ipam.subnet).toBe(node.podCidr));
  it('cni-master1 192.168.100.0/24, cni-worker1 .101.0/24, cni-worker2 .102.0/24', () =>
    expect(cluster.nodes.map((node) => conf(node.name, '10-bridge.conf').ipam.subnet)).toEqual(['192.168.100.0/24', '192.168.101.0/24', '192.168.102.0/24']));
  it('the rest of 10-bridge.conf is the repository\'s', () =>
    expect(conf('cni-worker1', '10-bridge.conf')).toEqual({
      cniVersion: '0.4.0',
      name: 'lab-pods',
      type: 'bridge',
      bridge: 'cni0',
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', subnet: '192.168.101.0/24', routes: [{ dst: '0.0.0.0/0' }] },
    }));
  it('the master gets the bridge only (it has no share of the ipvlan range)', () =>
    expect(step(plan('cni-master1'), 'cni').files.map((f) => f.path)).toEqual(['/etc/cni/net.d/10-bridge.conf']));
  it('the workers get the bridge first, so containerd uses it, and the ipvlan demo (no Calico conf)', () => {
    for (const name of ['cni-worker1', 'cni-worker2']) expect(step(plan(name), 'cni').files.map((f) => f.path)).toEqual(['/etc/cni/net.d/10-bridge.conf', '/etc/cni/net.d/ipvlan.conf']);
  });
  it('restarts nothing (containerd reads the confs for each new pod); links Debian\'s plugins every time', () => {
    for (const name of ['cni-master1', 'cni-worker1']) {
      const s = step(plan(name), 'cni');
      expect(s.onlyIfChanged).toBe(false);
      expect(s.commands).toHaveLength(1);
      expect(s.commands[0]).toContain('ln -sf /usr/lib/cni/* /opt/cni/bin/');
    }
  });
  it('copies cni/bin instead when it has binaries', () => {
    const withBin = planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), cni: { ...cni, bin: [{ name: 'ipvlan', content: new Uint8Array([0x7f, 0x45]), mode: '0755' }] } });
    const s = step(withBin, 'cni');
    expect(s.files.find((f) => f.path === '/opt/cni/bin/ipvlan')?.mode).toBe('0755');
    expect(s.commands).toEqual([]);
  });
  it('names a bridge conf whose IPAM is not host-local', () =>
    expect(() =>
      planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), cni: { conf: [{ name: 'b.conf', content: '{"type":"bridge","ipam":{"type":"dhcp"}}', mode: '0644' }], bin: [] } }),
    ).toThrow(/cni\/conf\/b\.conf: ipam\.type must be "host-local"/));

  describe('the ipvlan demo: each worker\'s share of the container range', () => {
    const ipvlan = (name: string) => conf(name, 'ipvlan.conf');
    it.each(cluster.workers.map((w) => [w.name, w] as const))('%s: rangeStart/rangeEnd are its ipamRange', (name, worker) => {
      expect(ipvlan(name).ipam.rangeStart).toBe(worker.ipamRange!.start);
      expect(ipvlan(name).ipam.rangeEnd).toBe(worker.ipamRange!.end);
    });
    it('cni-worker1 hands out 192.168.10.100-149', () => expect([ipvlan('cni-worker1').ipam.rangeStart, ipvlan('cni-worker1').ipam.rangeEnd]).toEqual(['192.168.10.100', '192.168.10.149']));
    it('cni-worker2 hands out 192.168.10.150-200', () => expect([ipvlan('cni-worker2').ipam.rangeStart, ipvlan('cni-worker2').ipam.rangeEnd]).toEqual(['192.168.10.150', '192.168.10.200']));
    it('master is the cluster NIC', () => expect(ipvlan('cni-worker1').master).toBe('enp0s8'));
    it('type ipvlan, mode l2, name cnidemo, host-local IPAM in the cluster subnet', () =>
      expect(ipvlan('cni-worker1')).toMatchObject({ type: 'ipvlan', mode: 'l2', name: 'cnidemo', ipam: { type: 'host-local', subnet: '192.168.10.0/24' } }));
  });
});

describe('per-node IPAM ranges never overlap and stay inside the container range', () => {
  it.each([1, 2, 3, 5, 8])('with %i workers', (workers) => {
    const c = resolveClusterOrThrow({ profile: 'lab', workers });
    const ranges = c.workers.map((w) => {
      const conf = JSON.parse(text(fileAt(planOf(c, w.name), '/etc/cni/net.d/ipvlan.conf'))) as { ipam: { rangeStart: string; rangeEnd: string } };
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
  it('the Calico etcd may not move to the master, whose Kubernetes etcd holds 2379/2380', () =>
    expect(() => planOf(resolveClusterOrThrow({ profile: 'lab', etcd: { node: 'cni-master1' } }), 'cni-worker1')).toThrow(
      'etcd.node: cni-master1 is the master, whose Kubernetes etcd holds port(s) 2379, 2380',
    ));
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

describe('every value comes from the model', () => {
  const moved = resolveClusterOrThrow({
    profile: 'lab',
    name: 'elsewhere',
    network: { subnet: '192.168.77.0/24', clusterDomain: 'lab.test', apiSecurePort: 6443 },
  });
  const everything = moved.nodes
    .map((node) => planOf(moved, node.name))
    .flatMap((p) => p.steps.flatMap((s) => [...s.files.map((f) => `${f.path}\n${text(f)}`), ...s.commands, s.description]))
    .join('\n');
  it.each(['192.168.10.', 'cluster.local', ':443', '"lab"', '@lab'])('no trace of the default %s', (value) => expect(everything).not.toContain(value));
  it('the moved values are there', () => {
    for (const value of ['router id 192.168.77.10;', '--cluster-domain=lab.test', 'https://192.168.77.10:6443', 'https://127.0.0.1:6443', '--secure-port=6443', '--initial-cluster-token=elsewhere-kubernetes']) {
      expect(everything).toContain(value);
    }
  });
});

describe('every command of every lab plan is shellcheck-clean', () => {
  it('lab', async () => {
    const commands = Object.values(plans).flatMap((p) => p.steps.flatMap((s) => s.commands));
    expect(commands.length).toBeGreaterThan(0);
    expect(await shellcheck(commands)).toBe('');
  });
});

describe('the 2016 profile keeps its way (docker, hyperkube static pods, Calico)', () => {
  const xenial = resolveClusterOrThrow({ profile: 'xenial-2016' });
  const xenialPlan = (name: string) =>
    planNode(xenial, name, { clusterPublicKey: clusterSshKey, certificates: { ca: 'ca', cert: 'cert', key: 'key' }, cni });
  it('has no KubernetesSpec, so no pod ranges', () => {
    expect(xenial.kubernetes).toBeUndefined();
    expect(xenial.nodes.map((node) => node.podCidr)).toEqual([undefined, undefined, undefined]);
  });
  it('gets none of the lab\'s steps', () => {
    const lab = ['kube-etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'containerd', 'bird', 'kube-proxy'];
    for (const node of xenial.nodes) expect(xenialPlan(node.name).steps.map((s) => s.id).filter((id) => lab.includes(id))).toEqual([]);
  });
  it('its workers get no bridge conf (no pod range), and the kubelet is restarted on a CNI change as in 2016', () => {
    const s = step(xenialPlan('cni-worker1'), 'cni');
    expect(s.files.map((f) => f.path)).toEqual(['/etc/cni/net.d/10-calico.conf', '/etc/cni/net.d/ipvlan.conf']);
    expect(s).toMatchObject({ onlyIfChanged: true, commands: ['systemctl try-restart kubelet.service'] });
  });
  it('its master still gets no CNI step', () => expect(xenialPlan('cni-master1').steps.some((s) => s.id === 'cni')).toBe(false));
});

describe('bad input', () => {
  it('names an unknown node and lists the allowed ones', () =>
    expect(() => planNode(cluster, 'cni-worker9', inputsFor(cluster, 'cni-worker1'))).toThrow('node "cni-worker9" is not in cluster "lab"; allowed: cni-master1, cni-worker1, cni-worker2'));
  it('refuses a cluster key that is not an OpenSSH public key', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), clusterPublicKey: 'ssh-ed25519 not-base64!' })).toThrow(/inputs\.clusterPublicKey: the key is not base64/));
  it('refuses a truncated cluster key', () => {
    const [type, blob] = clusterSshKey.split(' ');
    expect(() => planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), clusterPublicKey: `${type} ${blob!.slice(0, 12)}` })).toThrow(/inputs\.clusterPublicKey: the key data says/);
  });
  it('refuses a private key pasted as the public key', () =>
    expect(() =>
      planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), clusterPublicKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----' }),
    ).toThrow(/inputs\.clusterPublicKey: must be one line/));
  it('names a CNI conf that is not JSON', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), cni: { conf: [{ name: 'broken.conf', content: '{', mode: '0644' }], bin: [] } })).toThrow(/cni\/conf\/broken\.conf: not valid JSON/));
  it('names an ipvlan conf whose IPAM is not host-local', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputsFor(cluster, 'cni-worker1'), cni: { conf: [{ name: 'x.conf', content: '{"type":"ipvlan","ipam":{"type":"dhcp"}}', mode: '0644' }], bin: [] } })).toThrow(/cni\/conf\/x\.conf: ipam\.type must be "host-local"/));
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
