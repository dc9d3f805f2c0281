import { REPO_ROOT, resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCniDir } from './cni-files.ts';
import { planNode } from './plan.ts';
import { ed25519PublicKey } from './testing/keys.ts';
import { shellcheck } from './testing/shellcheck.ts';
import { fileAt, flagMap, parseEnvFile, parseUnit, parseYaml, splitExecStart, step, text, unitValues } from './testing/parse.ts';
import type { NodePlan, PlanInputs } from './types.ts';

// Every expectation names a fact of shared/reference/original-env.md (the 2016 environment).
const cluster = resolveClusterOrThrow({ profile: 'xenial-2016' });
const cni = await readCniDir(join(REPO_ROOT, 'cni'));
const pem = { ca: '-----BEGIN CERTIFICATE-----\nca\n', cert: '-----BEGIN CERTIFICATE-----\nleaf\n', key: '-----BEGIN PRIVATE KEY-----\nkey\n' };
const inputs: PlanInputs = { clusterPublicKey: ed25519PublicKey('boxcar-cluster'), certificates: pem, cni };
const planOf = (c: Cluster, name: string): NodePlan => planNode(c, name, inputs);
const master = planOf(cluster, 'cni-master1');
const worker1 = planOf(cluster, 'cni-worker1');
const worker2 = planOf(cluster, 'cni-worker2');
const workers = [['cni-worker1', worker1, '192.168.10.21'], ['cni-worker2', worker2, '192.168.10.22']] as const;

const execArgv = (plan: NodePlan, path: string) => splitExecStart(unitValues(parseUnit(text(fileAt(plan, path))), 'Service', 'ExecStart')[0]!);

describe('xenial-2016: which steps each node gets', () => {
  it('cni-master1', () =>
    expect(master.steps.map((s) => s.id)).toEqual(['hostname', 'cluster-ip', 'certificates', 'master-manifests', 'etcd', 'kubelet', 'ssh-keys']));
  it('cni-worker1 (etcd node)', () =>
    expect(worker1.steps.map((s) => s.id)).toEqual([
      'hostname', 'cluster-ip', 'certificates', 'kubeconfig', 'worker-manifests', 'etcd', 'calico-pool', 'cni', 'vpp-uplink', 'felix', 'route-agent', 'kubelet', 'ssh-keys',
    ]));
  it('cni-worker2', () =>
    expect(worker2.steps.map((s) => s.id)).toEqual([
      'hostname', 'cluster-ip', 'certificates', 'kubeconfig', 'worker-manifests', 'etcd', 'cni', 'vpp-uplink', 'felix', 'route-agent', 'kubelet', 'ssh-keys',
    ]));
});

describe('cluster IP with ifupdown (Ubuntu 16.04)', () => {
  it.each([['cni-master1', master, '192.168.10.10'] as const, ...workers])('%s: /etc/network/interfaces.d/enp0s8.cfg with its static address', (_name, plan, ip) => {
    const lines = text(fileAt(plan, '/etc/network/interfaces.d/enp0s8.cfg')).split('\n').map((l) => l.trim());
    expect(lines).toContain('auto enp0s8');
    expect(lines).toContain('iface enp0s8 inet static');
    expect(lines).toContain(`address ${ip}`);
    expect(lines).toContain('netmask 255.255.255.0');
  });
  it('brings enp0s8 up again when the file changes', () => {
    const s = step(master, 'cluster-ip');
    expect(s.onlyIfChanged).toBe(true);
    expect(s.commands.at(-1)).toBe('ifup enp0s8');
  });
});

describe('worker kubelet unit: the flags of original-env.md, one by one', () => {
  describe.each(workers)('%s', (_name, plan, ip) => {
    const argv = execArgv(plan, '/etc/systemd/system/kubelet.service');
    const flags = flagMap(argv);
    it('runs /usr/bin/kubelet', () => expect(argv[0]).toBe('/usr/bin/kubelet'));
    it('--api-servers=https://192.168.10.10:443', () => expect(flags.get('--api-servers')).toBe('https://192.168.10.10:443'));
    it('--kubeconfig=/etc/kubernetes/worker-kubeconfig.yaml', () => expect(flags.get('--kubeconfig')).toBe('/etc/kubernetes/worker-kubeconfig.yaml'));
    it('--network-plugin=cni', () => expect(flags.get('--network-plugin')).toBe('cni'));
    it('--network-plugin-dir=/etc/cni/net.d', () => expect(flags.get('--network-plugin-dir')).toBe('/etc/cni/net.d'));
    it(`--hostname-override=${ip}`, () => expect(flags.get('--hostname-override')).toBe(ip));
    it('--cluster-dns=192.168.10.240', () => expect(flags.get('--cluster-dns')).toBe('192.168.10.240'));
    it('--cluster-domain=cluster.local', () => expect(flags.get('--cluster-domain')).toBe('cluster.local'));
    it('--allow-privileged=true', () => expect(flags.get('--allow-privileged')).toBe('true'));
    it('--config=/etc/kubernetes/manifests', () => expect(flags.get('--config')).toBe('/etc/kubernetes/manifests'));
    it('--tls-cert-file=/etc/kubernetes/ssl/worker.pem', () => expect(flags.get('--tls-cert-file')).toBe('/etc/kubernetes/ssl/worker.pem'));
    it('--tls-private-key-file=/etc/kubernetes/ssl/worker-key.pem', () => expect(flags.get('--tls-private-key-file')).toBe('/etc/kubernetes/ssl/worker-key.pem'));
    it('no flags beyond those and the 2016 unit\'s --address and --logtostderr', () =>
      expect([...flags.keys()].sort()).toEqual([
        '--address', '--allow-privileged', '--api-servers', '--cluster-dns', '--cluster-domain', '--config', '--hostname-override', '--kubeconfig',
        '--logtostderr', '--network-plugin', '--network-plugin-dir', '--tls-cert-file', '--tls-private-key-file',
      ]));
    it('restarts always', () => expect(unitValues(parseUnit(text(fileAt(plan, '/etc/systemd/system/kubelet.service'))), 'Service', 'Restart')).toEqual(['always']));
    it('needs docker', () => expect(unitValues(parseUnit(text(fileAt(plan, '/etc/systemd/system/kubelet.service'))), 'Unit', 'Requires')).toEqual(['docker.service']));
    it('is enabled and restarted when the unit changes', () =>
      expect(step(plan, 'kubelet').commands).toEqual(['systemctl daemon-reload', 'systemctl enable kubelet.service', 'systemctl restart kubelet.service']));
  });
});

describe('master kubelet unit: static pods only, never registered', () => {
  const flags = flagMap(execArgv(master, '/etc/systemd/system/kubelet.service'));
  it('--register-node=false', () => expect(flags.get('--register-node')).toBe('false'));
  it('--config=/etc/kubernetes/manifests', () => expect(flags.get('--config')).toBe('/etc/kubernetes/manifests'));
  it('--allow-privileged=true', () => expect(flags.get('--allow-privileged')).toBe('true'));
  it('--cluster-dns=192.168.10.240', () => expect(flags.get('--cluster-dns')).toBe('192.168.10.240'));
  it('--cluster-domain=cluster.local', () => expect(flags.get('--cluster-domain')).toBe('cluster.local'));
  it('no --api-servers (no workloads on the master)', () => expect(flags.has('--api-servers')).toBe(false));
});

type Container = { name: string; image: string; command: string[]; ports?: { containerPort: number; hostPort: number }[]; livenessProbe?: { httpGet: { port: number } }; securityContext?: { privileged: boolean } };
type Pod = { apiVersion: string; kind: string; spec: { hostNetwork: boolean; containers: Container[] } };
type Kubeconfig = {
  clusters: { name: string; cluster: { server: string; 'certificate-authority': string } }[];
  users: { name: string; user: { 'client-certificate': string; 'client-key': string } }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
  'current-context': string;
};
const [masterPod, proxyPod, kubeconfig] = (await parseYaml([
  text(fileAt(master, '/etc/kubernetes/manifests/master.manifest')),
  text(fileAt(worker1, '/etc/kubernetes/manifests/kube-proxy.manifest')),
  text(fileAt(worker1, '/etc/kubernetes/worker-kubeconfig.yaml')),
])) as [Pod, Pod, Kubeconfig];
const container = (pod: Pod, name: string) => pod.spec.containers.find((c) => c.name === name)!;

describe('master static pod (YAML read by PyYAML)', () => {
  it('is a v1 Pod', () => expect([masterPod.apiVersion, masterPod.kind]).toEqual(['v1', 'Pod']));
  it('uses the host network', () => expect(masterPod.spec.hostNetwork).toBe(true));
  it('runs etcd, apiserver, controller-manager, scheduler, kube-proxy', () =>
    expect(masterPod.spec.containers.map((c) => c.name)).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy']));

  describe('etcd 2.2.1 for Kubernetes only, on 127.0.0.1:2379', () => {
    const etcd = container(masterPod, 'etcd');
    const flags = flagMap(etcd.command);
    it('image etcd 2.2.1', () => expect(etcd.image).toMatch(/\/etcd:2\.2\.1$/));
    it('--listen-client-urls=http://127.0.0.1:2379', () => expect(flags.get('--listen-client-urls')).toBe('http://127.0.0.1:2379'));
    it('--advertise-client-urls=http://127.0.0.1:2379', () => expect(flags.get('--advertise-client-urls')).toBe('http://127.0.0.1:2379'));
    it('--listen-peer-urls on 127.0.0.1 only', () => expect(flags.get('--listen-peer-urls')).toBe('http://127.0.0.1:2380'));
  });

  describe('apiserver (hyperkube v1.3.0)', () => {
    const api = container(masterPod, 'kube-apiserver');
    const flags = flagMap(api.command);
    it('image hyperkube v1.3.0', () => expect(api.image).toMatch(/\/hyperkube:v1\.3\.0$/));
    it('runs hyperkube apiserver', () => expect(api.command.slice(0, 2)).toEqual(['/hyperkube', 'apiserver']));
    it('--secure-port=443', () => expect(flags.get('--secure-port')).toBe('443'));
    it('--insecure-port=8080 (the master\'s own insecure port)', () => expect(flags.get('--insecure-port')).toBe('8080'));
    it('--etcd-servers=http://127.0.0.1:2379', () => expect(flags.get('--etcd-servers')).toBe('http://127.0.0.1:2379'));
    it('--service-cluster-ip-range=192.168.10.224/27', () => expect(flags.get('--service-cluster-ip-range')).toBe('192.168.10.224/27'));
    it('--admission-control=NamespaceLifecycle,NamespaceExists,LimitRanger,SecurityContextDeny,ServiceAccount,ResourceQuota', () =>
      expect(flags.get('--admission-control')).toBe('NamespaceLifecycle,NamespaceExists,LimitRanger,SecurityContextDeny,ServiceAccount,ResourceQuota'));
    it('--tls-cert-file=/etc/kubernetes/ssl/apiserver.pem', () => expect(flags.get('--tls-cert-file')).toBe('/etc/kubernetes/ssl/apiserver.pem'));
    it('--tls-private-key-file=/etc/kubernetes/ssl/apiserver-key.pem', () => expect(flags.get('--tls-private-key-file')).toBe('/etc/kubernetes/ssl/apiserver-key.pem'));
    it('--client-ca-file=/etc/kubernetes/ssl/ca.pem', () => expect(flags.get('--client-ca-file')).toBe('/etc/kubernetes/ssl/ca.pem'));
    it('--service-account-key-file=/etc/kubernetes/ssl/apiserver-key.pem', () => expect(flags.get('--service-account-key-file')).toBe('/etc/kubernetes/ssl/apiserver-key.pem'));
    it('--allow-privileged=true', () => expect(flags.get('--allow-privileged')).toBe('true'));
    it('--advertise-address=192.168.10.10', () => expect(flags.get('--advertise-address')).toBe('192.168.10.10'));
    it('publishes 443 and 8080 on the host', () => expect(api.ports!.map((p) => [p.containerPort, p.hostPort])).toEqual([[443, 443], [8080, 8080]]));
  });

  describe('controller-manager', () => {
    const cm = container(masterPod, 'kube-controller-manager');
    const flags = flagMap(cm.command);
    it('runs hyperkube controller-manager', () => expect(cm.command.slice(0, 2)).toEqual(['/hyperkube', 'controller-manager']));
    it('--master=http://127.0.0.1:8080', () => expect(flags.get('--master')).toBe('http://127.0.0.1:8080'));
    it('--service-account-private-key-file=/etc/kubernetes/ssl/apiserver-key.pem', () => expect(flags.get('--service-account-private-key-file')).toBe('/etc/kubernetes/ssl/apiserver-key.pem'));
    it('--root-ca-file=/etc/kubernetes/ssl/ca.pem', () => expect(flags.get('--root-ca-file')).toBe('/etc/kubernetes/ssl/ca.pem'));
    it('liveness probe on 10252 (a number, unlike 2016\'s "10252s")', () => expect(cm.livenessProbe!.httpGet.port).toBe(10252));
  });

  describe('scheduler', () => {
    const sched = container(masterPod, 'kube-scheduler');
    it('runs hyperkube scheduler', () => expect(sched.command.slice(0, 2)).toEqual(['/hyperkube', 'scheduler']));
    it('--master=http://127.0.0.1:8080', () => expect(flagMap(sched.command).get('--master')).toBe('http://127.0.0.1:8080'));
    it('liveness probe on 10251', () => expect(sched.livenessProbe!.httpGet.port).toBe(10251));
  });

  describe('kube-proxy (iptables)', () => {
    const proxy = container(masterPod, 'kube-proxy');
    it('runs hyperkube proxy', () => expect(proxy.command.slice(0, 2)).toEqual(['/hyperkube', 'proxy']));
    it('--master=http://127.0.0.1:8080', () => expect(flagMap(proxy.command).get('--master')).toBe('http://127.0.0.1:8080'));
    it('--proxy-mode=iptables', () => expect(flagMap(proxy.command).get('--proxy-mode')).toBe('iptables'));
    it('is privileged', () => expect(proxy.securityContext!.privileged).toBe(true));
  });
});

describe('worker kube-proxy static pod', () => {
  const proxy = container(proxyPod, 'kube-proxy');
  const flags = flagMap(proxy.command);
  it('uses the host network', () => expect(proxyPod.spec.hostNetwork).toBe(true));
  it('runs hyperkube proxy v1.3.0', () => expect([proxy.image.split(':').at(-1), ...proxy.command.slice(0, 2)]).toEqual(['v1.3.0', '/hyperkube', 'proxy']));
  it('--master=https://192.168.10.10:443', () => expect(flags.get('--master')).toBe('https://192.168.10.10:443'));
  it('--kubeconfig=/etc/kubernetes/worker-kubeconfig.yaml', () => expect(flags.get('--kubeconfig')).toBe('/etc/kubernetes/worker-kubeconfig.yaml'));
  it('--proxy-mode=iptables', () => expect(flags.get('--proxy-mode')).toBe('iptables'));
  it('is privileged', () => expect(proxy.securityContext!.privileged).toBe(true));
  it('cni-worker2 gets the same pod', () => expect(text(fileAt(worker2, '/etc/kubernetes/manifests/kube-proxy.manifest'))).toBe(text(fileAt(worker1, '/etc/kubernetes/manifests/kube-proxy.manifest'))));
});

describe('worker-kubeconfig.yaml', () => {
  const current = kubeconfig.contexts.find((c) => c.name === kubeconfig['current-context'])!;
  const clusterEntry = kubeconfig.clusters.find((c) => c.name === current.context.cluster)!;
  const user = kubeconfig.users.find((u) => u.name === current.context.user)!;
  it('server is https://192.168.10.10:443', () => expect(clusterEntry.cluster.server).toBe('https://192.168.10.10:443'));
  it('trusts /etc/kubernetes/ssl/ca.pem', () => expect(clusterEntry.cluster['certificate-authority']).toBe('/etc/kubernetes/ssl/ca.pem'));
  it('client certificate /etc/kubernetes/ssl/worker.pem', () => expect(user.user['client-certificate']).toBe('/etc/kubernetes/ssl/worker.pem'));
  it('client key /etc/kubernetes/ssl/worker-key.pem', () => expect(user.user['client-key']).toBe('/etc/kubernetes/ssl/worker-key.pem'));
  it('is written to the path the kubelet flag names', () => expect(step(worker1, 'kubeconfig').files.map((f) => f.path)).toEqual(['/etc/kubernetes/worker-kubeconfig.yaml']));
});

describe('certificates in /etc/kubernetes/ssl', () => {
  it('master: ca.pem, apiserver.pem, apiserver-key.pem', () =>
    expect(step(master, 'certificates').files.map((f) => [f.path, f.mode])).toEqual([
      ['/etc/kubernetes/ssl/ca.pem', '0644'], ['/etc/kubernetes/ssl/apiserver.pem', '0644'], ['/etc/kubernetes/ssl/apiserver-key.pem', '0600'],
    ]));
  it('worker: ca.pem, worker.pem, worker-key.pem', () =>
    expect(step(worker1, 'certificates').files.map((f) => [f.path, f.mode])).toEqual([
      ['/etc/kubernetes/ssl/ca.pem', '0644'], ['/etc/kubernetes/ssl/worker.pem', '0644'], ['/etc/kubernetes/ssl/worker-key.pem', '0600'],
    ]));
  it('the key is marked secret and carries the input PEM', () => {
    const key = fileAt(worker1, '/etc/kubernetes/ssl/worker-key.pem');
    expect([key.secret, key.content]).toEqual([true, pem.key]);
  });
  it('are required when the profile runs Kubernetes', () =>
    expect(() => planNode(cluster, 'cni-worker1', { ...inputs, certificates: undefined })).toThrow(/inputs\.certificates: required for cni-worker1/));
});

describe('Calico etcd: Ubuntu etcd 2.2 flags on cni-worker1', () => {
  const env = parseEnvFile(text(fileAt(worker1, '/etc/default/etcd')));
  const flags = flagMap(env.DAEMON_ARGS!.split(' '));
  it('--name=cni-worker1', () => expect(flags.get('--name')).toBe('cni-worker1'));
  it('--listen-client-urls on :2379 and :4001 (node IP and 127.0.0.1)', () =>
    expect(flags.get('--listen-client-urls')!.split(',')).toEqual(['http://192.168.10.21:2379', 'http://192.168.10.21:4001', 'http://127.0.0.1:2379', 'http://127.0.0.1:4001']));
  it('--advertise-client-urls on :2379 and :4001', () => expect(flags.get('--advertise-client-urls')!.split(',')).toEqual(['http://192.168.10.21:2379', 'http://192.168.10.21:4001']));
  it('--listen-peer-urls on :2380 and :7001', () => expect(flags.get('--listen-peer-urls')!.split(',')).toEqual(['http://192.168.10.21:2380', 'http://192.168.10.21:7001']));
  it('--initial-advertise-peer-urls on :2380 and :7001', () =>
    expect(flags.get('--initial-advertise-peer-urls')!.split(',')).toEqual(['http://192.168.10.21:2380', 'http://192.168.10.21:7001']));
  it('--initial-cluster', () => expect(flags.get('--initial-cluster')).toBe('cni-worker1=http://192.168.10.21:2380,cni-worker1=http://192.168.10.21:7001'));
  it('--initial-cluster-state=new', () => expect(flags.get('--initial-cluster-state')).toBe('new'));
  it('--data-dir per cluster', () => expect(flags.get('--data-dir')).toBe('/var/lib/etcd/cni-dev'));
  it('is enabled and restarted on change, without a systemd reload (its flags file is no unit file)', () =>
    expect(step(worker1, 'etcd').commands).toEqual(['systemctl enable etcd.service', 'systemctl restart etcd.service']));
  it('refuses the Calico etcd on the master on the ports of the master\'s own etcd', () => {
    const onMaster = resolveClusterOrThrow({ profile: 'xenial-2016', etcd: { node: 'cni-master1' } });
    expect(() => planOf(onMaster, 'cni-worker1')).toThrow('etcd.node: cni-master1 is the master, whose Kubernetes etcd holds port(s) 2379, 2380');
  });
  it.each([['cni-master1', master], ['cni-worker2', worker2]] as const)('%s: etcd disabled', (_name, plan) =>
    expect(step(plan, 'etcd').commands.join('\n')).toContain('systemctl disable --now etcd.service'));
});

describe('Felix unit', () => {
  describe.each(workers)('%s', (_name, plan) => {
    const unit = parseUnit(text(fileAt(plan, '/etc/systemd/system/calico-felix.service')));
    const env = Object.fromEntries(unitValues(unit, 'Service', 'Environment').map((e) => e.split('=') as [string, string]));
    it('FELIX_ETCDADDR=192.168.10.21:4001', () => expect(env.FELIX_ETCDADDR).toBe('192.168.10.21:4001'));
    it('FELIX_LOGSEVERITYSCREEN=DEBUG', () => expect(env.FELIX_LOGSEVERITYSCREEN).toBe('DEBUG'));
    it('ExecStart calico-felix', () => expect(unitValues(unit, 'Service', 'ExecStart')).toEqual(['/usr/local/bin/calico-felix']));
    it('starts after VPP', () => expect(unitValues(unit, 'Unit', 'After')[0]!.split(' ')).toContain('vpp.service'));
    it('is enabled and restarted on change', () => expect(step(plan, 'felix').commands.at(-1)).toBe('systemctl restart calico-felix.service'));
  });
  it('the master runs no Felix', () => expect(master.steps.some((s) => s.id === 'felix')).toBe(false));
});

describe('VPP uplink on the workers', () => {
  const commands = step(worker1, 'vpp-uplink').commands.join('\n');
  it('brings enp0s9 down', () => expect(commands).toContain('ip link set dev enp0s9 down'));
  it('restarts vpp after that', () => expect(commands).toMatch(/ip link set dev enp0s9 down && systemctl restart vpp/));
  it('only while the kernel still owns enp0s9 (idempotent)', () => expect(commands).toMatch(/^if ip link show dev enp0s9 >\/dev\/null 2>&1; then/));
});

describe('Calico bring-up on the etcd node', () => {
  const commands = step(worker1, 'calico-pool').commands;
  it('runs on cni-worker1 only', () => expect([master, worker2].some((p) => p.steps.some((s) => s.id === 'calico-pool'))).toBe(false));
  it('first waits until etcd answers', () => expect(commands[0]).toMatch(/etcdctl --endpoints 'http:\/\/192\.168\.10\.21:4001' cluster-health/));
  it('calicoctl profile add calico, unless it exists', () => expect(commands[1]).toMatch(/^grep -qw calico <<<"\$\(.*calicoctl profile show\)" \|\| .*calicoctl profile add calico$/));
  it('calicoctl pool add 192.168.0.0/16 --ipip --nat-outgoing, unless it exists', () =>
    expect(commands[2]).toMatch(/^grep -qF '192\.168\.0\.0\/16' <<<"\$\(.*calicoctl pool show --ipv4\)" \|\| .*calicoctl pool add '192\.168\.0\.0\/16' --ipip --nat-outgoing$/));
  it('calicoctl talks to the Calico etcd', () => expect(commands[1]).toContain("ETCD_AUTHORITY='192.168.10.21:4001' calicoctl"));
  it('etcdctl set /calico/v1/Ready true, unless it is already true', () =>
    expect(commands[3]).toMatch(/^\[ "\$\(etcdctl .* get \/calico\/v1\/Ready .*\)" = true \] \|\| etcdctl .* set \/calico\/v1\/Ready true$/));
  it('pool flags follow the model booleans', () => {
    const c = resolveClusterOrThrow({ profile: 'xenial-2016', network: { calicoPool: { cidr: '10.244.0.0/16', ipip: false, natOutgoing: true } } });
    expect(step(planOf(c, 'cni-worker1'), 'calico-pool').commands[2]).toMatch(/calicoctl pool add '10\.244\.0\.0\/16' --nat-outgoing$/);
  });
});

describe('route agent unit', () => {
  describe.each([['cni-worker1', worker1, '172.16.0.1'], ['cni-worker2', worker2, '172.16.0.2']] as const)('%s', (_name, plan, uplink) => {
    const unit = parseUnit(text(fileAt(plan, '/etc/systemd/system/vpp-calico-route-agent.service')));
    const argv = splitExecStart(unitValues(unit, 'Service', 'ExecStart')[0]!);
    it('working dir /home/ubuntu/vpp-calico-route-agent', () => expect(unitValues(unit, 'Service', 'WorkingDirectory')).toEqual(['/home/ubuntu/vpp-calico-route-agent']));
    it(`python agent.py "calico/ipam/v2/assignment/ipv4/block" 1 ${uplink} 24 http 192.168.10.21`, () =>
      expect(argv).toEqual(['/usr/bin/python', 'agent.py', 'calico/ipam/v2/assignment/ipv4/block', '1', uplink, '24', 'http', '192.168.10.21']));
    it('restarts until etcd has the IPAM subtree', () => expect(unitValues(unit, 'Service', 'Restart')).toEqual(['always']));
  });
});

describe('CNI on the workers: 10-calico.conf as original-env.md gives it', () => {
  const original = JSON.parse(
    '{"name":"calico","type":"calico","etcd_endpoints":"http://192.168.10.21:4001","kubernetes":{"kubeconfig":"/etc/kubernetes/worker-kubeconfig.yaml"},"log_level":"debug","ipam":{"type":"calico-ipam"}}',
  ) as Record<string, unknown>;
  describe.each(workers)('%s', (_name, plan) => {
    const conf = JSON.parse(text(fileAt(plan, '/etc/cni/net.d/10-calico.conf'))) as Record<string, unknown>;
    it.each(Object.keys(original))('%s', (key) => expect(conf[key]).toEqual(original[key]));
    it('nothing else', () => expect(Object.keys(conf).sort()).toEqual(Object.keys(original).sort()));
  });
  it('the kubelet is restarted when CNI configuration changes', () => expect(step(worker1, 'cni')).toMatchObject({ onlyIfChanged: true, commands: ['systemctl try-restart kubelet.service'] }));
});

describe('every value comes from the model', () => {
  const moved = resolveClusterOrThrow({
    profile: 'xenial-2016',
    name: 'elsewhere',
    network: { subnet: '192.168.77.0/24', clusterDomain: 'lab.test', apiSecurePort: 6443, apiInsecurePort: 8081, uplinkSubnet: '172.31.5.0/24' },
    etcd: { node: 'cni-worker2', clientPorts: [3379, 5001], peerPorts: [3380, 8001] },
  });
  const all = moved.nodes.map((node) => planOf(moved, node.name));
  const everything = all.flatMap((p) => p.steps.flatMap((s) => [...s.files.map((f) => `${f.path}\n${text(f)}`), ...s.commands, s.description])).join('\n');
  it.each(['192.168.10.', 'cni-dev', 'cluster.local', ':443', ':8080', ':4001', ':7001', '172.16.0.'])('no trace of the default %s', (value) =>
    expect(everything).not.toContain(value));
  it('the Calico etcd ports 2379/2380 appear only as the master\'s own etcd on 127.0.0.1', () =>
    expect(everything.match(/[\d.]+:23(79|80)\b/g)!.filter((url) => !url.startsWith('127.0.0.1:'))).toEqual([]));
  it('the moved values are there', () => {
    for (const value of ['192.168.77.10', 'elsewhere', 'lab.test', 'https://192.168.77.10:6443', '192.168.77.22:5001', '192.168.77.22:8001', '172.31.5.1 24', '192.168.77.224/27']) {
      expect(everything).toContain(value);
    }
  });
  it('the Calico bring-up moves to the new etcd node', () => expect(all.map((p) => p.steps.some((s) => s.id === 'calico-pool'))).toEqual([false, false, true]));
});

// The lab's plans need its Kubernetes PEMs: plan.lab.test.ts checks them.
describe('every command of every plan is shellcheck-clean', () => {
  it.each(['xenial-2016'])('%s', async (profile) => {
    const c = resolveClusterOrThrow({ profile });
    const commands = c.nodes.flatMap((node) => planOf(c, node.name).steps.flatMap((s) => s.commands));
    expect(commands.length).toBeGreaterThan(0);
    expect(await shellcheck(commands)).toBe('');
  });
});
