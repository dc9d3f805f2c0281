import { REPO_ROOT, resolveClusterOrThrow } from '@boxcar/model';
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile, chmod, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan } from './apply.ts';
import { readCniDir } from './cni-files.ts';
import { planNode } from './plan.ts';
import { ed25519PublicKey } from './testing/keys.ts';
import { text } from './testing/parse.ts';
import { shellcheck } from './testing/shellcheck.ts';
import { canSandbox, createSandbox, type Sandbox } from './testing/sandbox.ts';
import type { Exec, KubernetesPems, NodePlan, PlanInputs, StepEvent } from './types.ts';

// Plans applied for real (bash, coreutils, chown, mv, ln) to a directory that the commands see as `/`; see
// testing/sandbox.ts. Only systemctl and networkctl are test doubles: no systemd runs in a chroot.

const cluster = resolveClusterOrThrow({ profile: 'lab' });
const cni = await readCniDir(join(REPO_ROOT, 'cni'));
const clusterSshKey = ed25519PublicKey('boxcar-cluster-lab');
const bootstrapKey = ed25519PublicKey('boxcar-bootstrap');
const DEBIAN_PLUGINS = ['bridge', 'host-local', 'ipvlan', 'loopback'];
const pem = (name: string) => ({ cert: `-----BEGIN CERTIFICATE-----\n${name}\n`, key: `-----BEGIN PRIVATE KEY-----\n${name}\n` });
const pemsFor = (name: string): KubernetesPems => ({
  ca: '-----BEGIN CERTIFICATE-----\nca\n',
  kubelet: pem(name),
  proxy: pem('kube-proxy'),
  ...(name === cluster.master.name
    ? { master: { apiserver: pem('apiserver'), admin: pem('admin'), controllerManager: pem('cm'), scheduler: pem('scheduler'), serviceAccount: pem('sa') } }
    : {}),
});
const inputsFor = (name: string): PlanInputs => ({ clusterPublicKey: clusterSshKey, kubernetes: pemsFor(name), cni });

async function nodeWithBootstrapKey(): Promise<Sandbox> {
  const sandbox = await createSandbox({ debianCniPlugins: DEBIAN_PLUGINS });
  const ssh = join(sandbox.root, 'home/vagrant/.ssh');
  await mkdir(ssh, { recursive: true, mode: 0o700 });
  await writeFile(join(ssh, 'authorized_keys'), `${bootstrapKey}\n`, { mode: 0o600 });
  await chown(join(sandbox.root, 'home/vagrant'), 1000, 1000);
  await chown(ssh, 1000, 1000);
  await chown(join(ssh, 'authorized_keys'), 1000, 1000);
  return sandbox;
}

const allFiles = (plan: NodePlan) => plan.steps.flatMap((s) => s.files);

describe.skipIf(!canSandbox)('applyPlan on a real directory tree (needs root for chroot and namespaces)', () => {
  describe('lab plan of cni-worker1, applied twice', () => {
    const plan = planNode(cluster, 'cni-worker1', inputsFor('cni-worker1'));
    let node: Sandbox;
    const events: StepEvent[] = [];
    let first: Awaited<ReturnType<typeof applyPlan>>;
    let second: Awaited<ReturnType<typeof applyPlan>>;
    let callsAfterFirst: string[];
    let callsAfterSecond: string[];
    const sent: string[] = [];

    beforeAll(async () => {
      node = await nodeWithBootstrapKey();
      const recording: Exec = (command, input) => (sent.push(command), node.exec(command, input));
      first = await applyPlan(plan, recording, { onStep: (event) => events.push(event) });
      callsAfterFirst = await node.doubleCalls();
      second = await applyPlan(plan, node.exec);
      callsAfterSecond = await node.doubleCalls();
    });
    afterAll(() => node?.remove());

    it('the first run writes every file of the plan', () => expect(first.changedFiles.sort()).toEqual(allFiles(plan).map((f) => f.path).sort()));
    it('every file holds the planned content', async () => {
      for (const file of allFiles(plan)) expect(await readFile(join(node.root, file.path), 'utf8')).toBe(text(file));
    });
    it('every file has the planned mode', async () => {
      for (const file of allFiles(plan)) expect(((await stat(join(node.root, file.path))).mode & 0o777).toString(8)).toBe(file.mode.replace(/^0/, ''));
    });
    it('authorized_keys holds the cluster key only: the bootstrap key is gone', async () =>
      expect(await readFile(join(node.root, 'home/vagrant/.ssh/authorized_keys'), 'utf8')).toBe(`${clusterSshKey}\n`));
    it('authorized_keys still belongs to vagrant (uid 1000), mode 600', async () => {
      const s = await stat(join(node.root, 'home/vagrant/.ssh/authorized_keys'));
      expect([s.uid, s.gid, (s.mode & 0o777).toString(8)]).toEqual([1000, 1000, '600']);
    });
    it('root files belong to root', async () => expect((await stat(join(node.root, 'etc/default/etcd'))).uid).toBe(0));
    it('the BIRD configuration belongs to root, group bird (gid 120), mode 640', async () => {
      const s = await stat(join(node.root, 'etc/bird/bird.conf'));
      expect([s.uid, s.gid, (s.mode & 0o777).toString(8)]).toEqual([0, 120, '640']);
    });
    it('private keys are mode 600', async () => expect(((await stat(join(node.root, 'etc/kubernetes/ssl/kubelet-key.pem'))).mode & 0o777).toString(8)).toBe('600'));
    it('links every Debian plugin into /opt/cni/bin', async () => {
      const bin = join(node.root, 'opt/cni/bin');
      expect((await readdir(bin)).sort()).toEqual(DEBIAN_PLUGINS);
      for (const plugin of DEBIAN_PLUGINS) expect(await readlink(join(bin, plugin))).toBe(`/usr/lib/cni/${plugin}`);
    });
    const certificateRestart = 'for unit in kubelet.service kube-proxy.service; do if systemctl is-active --quiet "$unit"; then systemctl restart "$unit"; fi; done';
    // What the double of systemctl saw of it: it answers "active" for every unit.
    const certificateCalls = ['kubelet', 'kube-proxy'].flatMap((unit) => [`systemctl is-active --quiet ${unit}.service`, `systemctl restart ${unit}.service`]);
    const before = ['systemctl enable --now systemd-networkd', 'networkctl reload', 'networkctl reconfigure enp0s8'];
    const restarts = [
      'systemctl enable etcd.service',
      'systemctl restart etcd.service',
      'systemctl enable containerd.service',
      'systemctl restart containerd.service',
      'systemctl enable bird.service',
      'systemctl restart bird.service',
    ];
    const units = ['kubelet', 'kube-proxy'].flatMap((unit) => ['systemctl daemon-reload', `systemctl enable ${unit}.service`, `systemctl restart ${unit}.service`]);
    it('runs the restart commands of changed steps, in order', () =>
      expect(first.ranCommands).toEqual(['hostname -F /etc/hostname', ...before, certificateRestart, ...restarts, step(plan, 'cni').commands[0], ...units]));
    it('systemctl and networkctl were really called', () => expect(callsAfterFirst).toEqual([...before, ...certificateCalls, ...restarts, ...units]));
    it('reports each step as it starts and ends', () =>
      expect(events.map((e) => `${e.phase} ${e.step.id}`)).toEqual(plan.steps.flatMap((s) => [`start ${s.id}`, `done ${s.id}`])));
    it('leaves no temp files and no pending markers', async () => {
      for (const dir of ['etc', 'etc/default', 'etc/systemd/network', 'etc/systemd/system', 'etc/cni/net.d', 'etc/kubernetes', 'etc/kubernetes/ssl', 'etc/bird', 'etc/containerd', 'home/vagrant/.ssh']) {
        expect((await readdir(join(node.root, dir))).filter((name) => name.startsWith('.boxcar.'))).toEqual([]);
      }
      expect(await readdir(join(node.root, 'var/lib/boxcar/pending'))).toEqual([]);
    });

    it('every script sent to the node is shellcheck-clean', async () => expect(await shellcheck(sent)).toBe(''));

    it('the second run changes no file', () => expect(second.changedFiles).toEqual([]));
    it('the second run runs only the always-run, idempotent commands', () => expect(second.ranCommands).toEqual([step(plan, 'cni').commands[0]]));
    it('the second run restarts nothing', () => expect(callsAfterSecond).toEqual(callsAfterFirst));
  });

  describe('changes after the first run', () => {
    const plan = planNode(cluster, 'cni-worker1', inputsFor('cni-worker1'));
    let node: Sandbox;
    beforeAll(async () => {
      node = await nodeWithBootstrapKey();
      await applyPlan(plan, node.exec);
    });
    afterAll(() => node?.remove());

    it('an edited file is put back, and only its step\'s commands run', async () => {
      await writeFile(join(node.root, 'etc/default/etcd'), 'ETCD_NAME="someone-else"\n');
      const before = (await node.doubleCalls()).length;
      const result = await applyPlan(plan, node.exec);
      expect(result.changedFiles).toEqual(['/etc/default/etcd']);
      expect((await node.doubleCalls()).slice(before)).toEqual(['systemctl enable etcd.service', 'systemctl restart etcd.service']);
      expect(await readFile(join(node.root, 'etc/default/etcd'), 'utf8')).toBe(text(step(plan, 'etcd').files[0]!));
    });
    it('a wrong mode alone is a change', async () => {
      await chmod(join(node.root, 'etc/hosts'), 0o666);
      expect((await applyPlan(plan, node.exec)).changedFiles).toEqual(['/etc/hosts']);
      expect((await stat(join(node.root, 'etc/hosts'))).mode & 0o777).toBe(0o644);
    });
    it('a wrong owner alone is a change', async () => {
      await chown(join(node.root, 'home/vagrant/.ssh/authorized_keys'), 0, 0);
      expect((await applyPlan(plan, node.exec)).changedFiles).toEqual(['/home/vagrant/.ssh/authorized_keys']);
      expect((await stat(join(node.root, 'home/vagrant/.ssh/authorized_keys'))).uid).toBe(1000);
    });
    it('a symlink in place of a planned file is replaced by the file', async () => {
      await writeFile(join(node.root, 'etc/hostname.elsewhere'), 'cni-worker1\n');
      await import('node:fs/promises').then(async (fs) => {
        await fs.rm(join(node.root, 'etc/hostname'));
        await fs.symlink('hostname.elsewhere', join(node.root, 'etc/hostname'));
      });
      expect((await applyPlan(plan, node.exec)).changedFiles).toEqual(['/etc/hostname']);
      expect((await lstat(join(node.root, 'etc/hostname'))).isFile()).toBe(true);
    });
  });

  describe('a step whose commands fail after its files changed', () => {
    let node: Sandbox;
    beforeAll(async () => (node = await createSandbox()));
    afterAll(() => node?.remove());
    const plan: NodePlan = {
      node: 'test',
      steps: [{
        id: 'flaky',
        description: 'restart fails until /tmp/ok exists',
        files: [{ path: '/etc/flaky.conf', content: 'v1\n', mode: '0644' }],
        commands: ['test -e /tmp/ok', 'echo restarted >> /var/log-restarts'],
        onlyIfChanged: true,
      }],
    };

    it('fails naming the node and the step', () => expect(applyPlan(plan, node.exec)).rejects.toThrow(/^node test, step "flaky": command "test -e \/tmp\/ok" failed: /));
    it('the file is in place, the step is left pending', async () => {
      expect(await readFile(join(node.root, 'etc/flaky.conf'), 'utf8')).toBe('v1\n');
      expect(await readdir(join(node.root, 'var/lib/boxcar/pending'))).toEqual(['flaky']);
    });
    it('the next run runs the commands although the file did not change', async () => {
      await writeFile(join(node.root, 'tmp/ok'), '');
      const result = await applyPlan(plan, node.exec);
      expect(result).toEqual({ changedFiles: [], ranCommands: ['test -e /tmp/ok', 'echo restarted >> /var/log-restarts'] });
      expect(await readdir(join(node.root, 'var/lib/boxcar/pending'))).toEqual([]);
    });
    it('and the run after that runs nothing', async () => {
      expect(await applyPlan(plan, node.exec)).toEqual({ changedFiles: [], ranCommands: [] });
      expect(await readFile(join(node.root, 'var/log-restarts'), 'utf8')).toBe('restarted\n');
    });
  });

  describe('every lab node', () => {
    it.each(cluster.nodes.map((n) => n.name))('%s: applies, and a second run changes nothing', async (name) => {
      const node = await nodeWithBootstrapKey();
      try {
        const plan = planNode(cluster, name, inputsFor(name));
        expect((await applyPlan(plan, node.exec)).changedFiles).toHaveLength(allFiles(plan).length);
        expect(await readFile(join(node.root, 'etc/hostname'), 'utf8')).toBe(`${name}\n`);
        expect((await applyPlan(plan, node.exec)).changedFiles).toEqual([]);
      } finally {
        await node.remove();
      }
    });
    it('cni-master1: root\'s kubectl reads the admin kubeconfig; the configuration itself never waits for the API (no kubectl call)', async () => {
      const node = await nodeWithBootstrapKey();
      try {
        await applyPlan(planNode(cluster, 'cni-master1', inputsFor('cni-master1')), node.exec);
        expect(await readlink(join(node.root, 'root/.kube/config'))).toBe('/etc/kubernetes/admin.kubeconfig');
        expect((await node.doubleCalls()).filter((call) => call.startsWith('kubectl '))).toEqual([]);
      } finally {
        await node.remove();
      }
    });
  });
});

describe('applyPlan refuses a malformed plan before touching the node', () => {
  const refuse = (plan: NodePlan) => applyPlan(plan, () => Promise.reject(new Error('exec must not be called')));
  const withFile = (file: Partial<NodePlan['steps'][number]['files'][number]>): NodePlan => ({
    node: 'n',
    steps: [{ id: 's', description: '', commands: [], files: [{ path: '/etc/x', content: '', mode: '0644', ...file }] }],
  });
  it('a relative path', () => expect(refuse(withFile({ path: 'etc/x' }))).rejects.toThrow('plan.steps[0] (s).files[0].path: "etc/x" must be an absolute file path'));
  it('a mode that is not octal', () => expect(refuse(withFile({ mode: '644x' }))).rejects.toThrow('plan.steps[0] (s).files[0].mode: "644x" must be octal permission bits'));
  it('an owner without group', () => expect(refuse(withFile({ owner: 'vagrant' }))).rejects.toThrow('plan.steps[0] (s).files[0].owner: "vagrant" must be "user:group"'));
  it('a step id twice', () =>
    expect(refuse({ node: 'n', steps: [{ id: 'a', description: '', files: [], commands: [] }, { id: 'a', description: '', files: [], commands: [] }] })).rejects.toThrow(
      'plan.steps[1].id: "a" appears twice',
    ));
});

function step(plan: NodePlan, id: string) {
  return plan.steps.find((s) => s.id === id)!;
}
