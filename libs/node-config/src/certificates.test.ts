import { resolveClusterOrThrow } from '@boxcar/model';
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterPki, readKubernetesPems, readNodeCertificates, type ClusterPki } from './certificates.ts';
import { planNode } from './plan.ts';
import { ed25519PublicKey } from './testing/keys.ts';

// Certificates made and checked with the real openssl binary.
const cluster = resolveClusterOrThrow({ profile: 'xenial-2016' });

const x509Text = async (cert: string) => (await execa('openssl', ['x509', '-in', cert, '-noout', '-text'])).stdout;
const subject = async (cert: string) => (await execa('openssl', ['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253'])).stdout;
const sans = async (cert: string) => {
  const match = /X509v3 Subject Alternative Name:.*\n\s*(.*)/.exec(await x509Text(cert));
  return match ? match[1]!.split(', ').sort() : [];
};
const verify = (ca: string, cert: string) => execa('openssl', ['verify', '-CAfile', ca, cert], { reject: false });
const modeOf = async (path: string) => ((await stat(path)).mode & 0o777).toString(8);
const keyMatches = async (cert: string, key: string) => {
  const fromCert = (await execa('openssl', ['x509', '-in', cert, '-noout', '-pubkey'])).stdout;
  const fromKey = (await execa('openssl', ['pkey', '-in', key, '-pubout'])).stdout;
  return fromCert === fromKey;
};

describe('ensureClusterPki', () => {
  let base: string;
  let dir: string;
  let pki: ClusterPki;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'boxcar-pki-'));
    dir = join(base, 'pki');
    pki = await ensureClusterPki(dir, cluster);
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  describe('the CA', () => {
    it('has subject /CN=kube-ca', async () => expect(await subject(pki.caCert)).toBe('subject=CN=kube-ca'));
    it('is a CA', async () => expect(await x509Text(pki.caCert)).toMatch(/Basic Constraints: critical\n\s*CA:TRUE/));
    it('verifies against itself', async () => expect((await verify(pki.caCert, pki.caCert)).exitCode).toBe(0));
  });

  describe('the apiserver certificate', () => {
    it('has subject CN=kube-apiserver', async () => expect(await subject(pki.apiserver.cert)).toBe('subject=CN=kube-apiserver'));
    it('chains to the CA', async () => expect((await verify(pki.caCert, pki.apiserver.cert)).stdout).toContain(': OK'));
    it('has the SANs of cluster.master.certificateSans', async () =>
      expect(await sans(pki.apiserver.cert)).toEqual(
        [...cluster.master.certificateSans.dns.map((d) => `DNS:${d}`), ...cluster.master.certificateSans.ip.map((ip) => `IP Address:${ip}`)].sort(),
      ));
    it('includes kubernetes and kubernetes.default (2016)', async () => expect(await sans(pki.apiserver.cert)).toEqual(expect.arrayContaining(['DNS:kubernetes', 'DNS:kubernetes.default'])));
    it('includes the master IP 192.168.10.10', async () => expect(await sans(pki.apiserver.cert)).toContain('IP Address:192.168.10.10'));
    it('includes the kubernetes service IP 192.168.10.225, which 2016 missed', async () => expect(await sans(pki.apiserver.cert)).toContain('IP Address:192.168.10.225'));
    it('is for TLS servers', async () => expect(await x509Text(pki.apiserver.cert)).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Server Authentication/));
    it('matches its key', async () => expect(await keyMatches(pki.apiserver.cert, pki.apiserver.key)).toBe(true));
  });

  describe.each(cluster.workers.map((w) => [w.name, w.ip] as const))('the certificate of %s', (name, ip) => {
    const pair = () => pki.nodes[name]!;
    it(`has subject CN=${name}`, async () => expect(await subject(pair().cert)).toBe(`subject=CN=${name}`));
    it('chains to the CA', async () => expect((await verify(pki.caCert, pair().cert)).stdout).toContain(': OK'));
    it(`has its IP ${ip} as SAN`, async () => expect(await sans(pair().cert)).toEqual([`DNS:${name}`, `IP Address:${ip}`]));
    it('serves (kubelet) and authenticates (kubeconfig)', async () =>
      expect(await x509Text(pair().cert)).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/));
    it('matches its key', async () => expect(await keyMatches(pair().cert, pair().key)).toBe(true));
  });

  it('no certificate for the master besides the apiserver one', () => expect(Object.keys(pki.nodes)).toEqual(['cni-worker1', 'cni-worker2']));
  it('no identities of the lab\'s Kubernetes', async () => {
    expect(pki.kubernetes).toBeUndefined();
    expect((await readdir(dir)).filter((f) => /^(sa|kube-)/.test(f))).toEqual([]);
  });
  it('an admin client certificate in system:masters chains to the CA', async () => {
    expect(await subject(pki.admin.cert)).toBe('subject=CN=kube-admin,O=system:masters');
    expect((await verify(pki.caCert, pki.admin.cert)).exitCode).toBe(0);
  });
  it('verification can fail: the apiserver certificate does not chain to a worker certificate', async () =>
    expect((await verify(pki.nodes['cni-worker1']!.cert, pki.apiserver.cert)).exitCode).not.toBe(0));

  it('the directory is mode 700', async () => expect(await modeOf(dir)).toBe('700'));
  it('every key is mode 600', async () => {
    for (const key of [pki.caKey, pki.apiserver.key, pki.admin.key, ...Object.values(pki.nodes).map((n) => n.key)]) expect(await modeOf(key)).toBe('600');
  });
  it('certificates are mode 644', async () => expect(await modeOf(pki.apiserver.cert)).toBe('644'));
  it('the first call made everything', () => expect(pki.generated).toHaveLength(2 * (1 + 1 + 1 + cluster.workers.length)));
  it('leaves no scratch files', async () => expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]));

  describe('idempotence', () => {
    it('a second call keeps every file', async () => {
      const before = await readFile(pki.apiserver.cert, 'utf8');
      const again = await ensureClusterPki(dir, cluster);
      expect(again.generated).toEqual([]);
      expect(await readFile(pki.apiserver.cert, 'utf8')).toBe(before);
    });
    it('a key left with a loose mode gets 600 back', async () => {
      await chmod(pki.nodes['cni-worker1']!.key, 0o644);
      expect((await ensureClusterPki(dir, cluster)).generated).toEqual([]);
      expect(await modeOf(pki.nodes['cni-worker1']!.key)).toBe('600');
    });
    it('a model with other SANs remakes those certificates, keeping the CA', async () => {
      const caBefore = await readFile(pki.caCert, 'utf8');
      const moved = resolveClusterOrThrow({ profile: 'xenial-2016', nodes: [{ name: 'cni-worker2', ip: '192.168.10.23' }] });
      const again = await ensureClusterPki(dir, moved);
      expect(again.generated).toEqual([pki.nodes['cni-worker2']!.cert, pki.nodes['cni-worker2']!.key]);
      expect(await sans(pki.nodes['cni-worker2']!.cert)).toEqual(['DNS:cni-worker2', 'IP Address:192.168.10.23']);
      expect(await readFile(pki.caCert, 'utf8')).toBe(caBefore);
      await ensureClusterPki(dir, cluster);
    });
    it('a corrupt certificate is remade', async () => {
      await writeFile(pki.admin.cert, 'garbage');
      expect((await ensureClusterPki(dir, cluster)).generated).toEqual([pki.admin.cert, pki.admin.key]);
      expect((await verify(pki.caCert, pki.admin.cert)).exitCode).toBe(0);
    });
    it('a key that does not belong to its certificate is remade', async () => {
      await writeFile(pki.apiserver.key, await readFile(pki.admin.key));
      expect((await ensureClusterPki(dir, cluster)).generated).toEqual([pki.apiserver.cert, pki.apiserver.key]);
      expect(await keyMatches(pki.apiserver.cert, pki.apiserver.key)).toBe(true);
    });
    it('a new CA remakes every certificate, which then chains to it', async () => {
      await rm(pki.caCert);
      const again = await ensureClusterPki(dir, cluster);
      expect(again.generated).toHaveLength(pki.generated.length);
      for (const cert of [again.apiserver.cert, again.admin.cert, ...Object.values(again.nodes).map((n) => n.cert)]) {
        expect((await verify(again.caCert, cert)).exitCode).toBe(0);
      }
    });
  });

  describe('into a node plan', () => {
    it('the master gets the CA and the apiserver pair', async () => {
      const pem = await readNodeCertificates(pki, cluster, 'cni-master1');
      expect(pem).toEqual({ ca: await readFile(pki.caCert, 'utf8'), cert: await readFile(pki.apiserver.cert, 'utf8'), key: await readFile(pki.apiserver.key, 'utf8') });
    });
    it('a worker gets its own pair, installed as worker.pem / worker-key.pem (600)', async () => {
      const certificates = await readNodeCertificates(pki, cluster, 'cni-worker2');
      const plan = planNode(cluster, 'cni-worker2', { clusterPublicKey: ed25519PublicKey('k'), certificates, cni: { conf: [], bin: [] } });
      const files = plan.steps.find((s) => s.id === 'certificates')!.files;
      expect(files.find((f) => f.path === '/etc/kubernetes/ssl/worker.pem')!.content).toBe(await readFile(pki.nodes['cni-worker2']!.cert, 'utf8'));
      expect(files.find((f) => f.path === '/etc/kubernetes/ssl/worker-key.pem')!.mode).toBe('0600');
    });
    it('names a node without a certificate', () =>
      expect(readNodeCertificates(pki, cluster, 'nobody')).rejects.toThrow('node "nobody": no certificate in'));
  });
});

describe('ensureClusterPki for the lab\'s Kubernetes (cluster.kubernetes)', () => {
  const lab = resolveClusterOrThrow({ profile: 'lab' });
  let base: string;
  let dir: string;
  let pki: ClusterPki;
  const k8s = () => pki.kubernetes!;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'boxcar-pki-lab-'));
    dir = join(base, 'pki');
    pki = await ensureClusterPki(dir, lab);
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  describe.each(lab.nodes.map((n) => [n.name, n.ip] as const))('the node certificate of %s', (name, ip) => {
    const pair = () => pki.nodes[name]!;
    it(`is system:node:${name} in system:nodes (the Node authorizer's identity)`, async () =>
      expect(await subject(pair().cert)).toBe(`subject=CN=system:node:${name},O=system:nodes`));
    it(`has its name and IP ${ip} as SANs`, async () => expect(await sans(pair().cert)).toEqual([`DNS:${name}`, `IP Address:${ip}`]));
    it('serves (the kubelet API) and authenticates (to the apiserver)', async () =>
      expect(await x509Text(pair().cert)).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/));
    it('chains to the CA and matches its key', async () => {
      expect((await verify(pki.caCert, pair().cert)).stdout).toContain(': OK');
      expect(await keyMatches(pair().cert, pair().key)).toBe(true);
    });
  });
  it('the master has one too: its kubelet registers like the others', () => expect(Object.keys(pki.nodes)).toEqual(['cni-master1', 'cni-worker1', 'cni-worker2']));

  it.each([
    ['controllerManager', 'subject=CN=system:kube-controller-manager', 'kube-controller-manager'],
    ['scheduler', 'subject=CN=system:kube-scheduler', 'kube-scheduler'],
    ['proxy', 'subject=CN=system:kube-proxy', 'kube-proxy'],
  ] as const)('%s: %s, a client certificate without SANs in %s.pem', async (key, expected, stem) => {
    const pair = k8s()[key];
    expect(pair).toEqual({ cert: join(dir, `${stem}.pem`), key: join(dir, `${stem}-key.pem`) });
    expect(await subject(pair.cert)).toBe(expected);
    expect(await sans(pair.cert)).toEqual([]);
    expect(await x509Text(pair.cert)).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Client Authentication\n/);
    expect((await verify(pki.caCert, pair.cert)).exitCode).toBe(0);
    expect(await keyMatches(pair.cert, pair.key)).toBe(true);
  });
  it('admin is in system:masters (the apiserver\'s identity towards the kubelets too)', async () =>
    expect(await subject(pki.admin.cert)).toBe('subject=CN=kube-admin,O=system:masters'));
  it('the apiserver certificate also names 127.0.0.1, where the master\'s components and the host\'s forwarded port reach it', async () =>
    expect(await sans(pki.apiserver.cert)).toEqual(expect.arrayContaining(['IP Address:127.0.0.1', 'IP Address:192.168.10.10', 'IP Address:192.168.10.225', 'DNS:kubernetes'])));

  describe('the service-account key pair', () => {
    it('sa-key.pem is a 2048-bit RSA private key, sa.pem its public key', async () => {
      expect(k8s().serviceAccount).toEqual({ cert: join(dir, 'sa.pem'), key: join(dir, 'sa-key.pem') });
      expect((await execa('openssl', ['pkey', '-in', k8s().serviceAccount.key, '-noout', '-text'])).stdout).toMatch(/Private-Key: \(2048 bit/);
      expect((await execa('openssl', ['pkey', '-in', k8s().serviceAccount.key, '-pubout'])).stdout).toBe((await readFile(k8s().serviceAccount.cert, 'utf8')).trim());
    });
    it('modes 600 and 644', async () => expect([await modeOf(k8s().serviceAccount.key), await modeOf(k8s().serviceAccount.cert)]).toEqual(['600', '644']));
  });

  it('the first call made everything: CA, apiserver, 3 nodes, admin, 3 components, the service-account pair', () => expect(pki.generated).toHaveLength(2 * 10));
  it('every key is mode 600', async () => {
    for (const name of (await readdir(dir)).filter((f) => f.endsWith('-key.pem'))) expect(await modeOf(join(dir, name))).toBe('600');
  });

  describe('idempotence', () => {
    it('a second call keeps every file, the service-account pair included', async () => {
      const before = await readFile(k8s().serviceAccount.key, 'utf8');
      expect((await ensureClusterPki(dir, lab)).generated).toEqual([]);
      expect(await readFile(k8s().serviceAccount.key, 'utf8')).toBe(before);
    });
    it('a service-account key left with a loose mode gets 600 back, and is kept', async () => {
      await chmod(k8s().serviceAccount.key, 0o644);
      expect((await ensureClusterPki(dir, lab)).generated).toEqual([]);
      expect(await modeOf(k8s().serviceAccount.key)).toBe('600');
    });
    it('a public key that is not the private key\'s remakes the pair', async () => {
      await writeFile(k8s().serviceAccount.cert, (await execa('openssl', ['pkey', '-in', pki.admin.key, '-pubout'])).stdout);
      expect((await ensureClusterPki(dir, lab)).generated).toEqual([k8s().serviceAccount.cert, k8s().serviceAccount.key]);
      expect((await execa('openssl', ['pkey', '-in', k8s().serviceAccount.key, '-pubout'])).stdout).toBe((await readFile(k8s().serviceAccount.cert, 'utf8')).trim());
    });
    it('a missing public key remakes the pair', async () => {
      await rm(k8s().serviceAccount.cert);
      expect((await ensureClusterPki(dir, lab)).generated).toEqual([k8s().serviceAccount.cert, k8s().serviceAccount.key]);
    });
    it('a new CA remakes every certificate but keeps the service-account pair (tokens stay valid)', async () => {
      const sa = await readFile(k8s().serviceAccount.key, 'utf8');
      await rm(pki.caCert);
      const again = await ensureClusterPki(dir, lab);
      expect(again.generated).toHaveLength(2 * 9);
      expect(again.generated).not.toContain(k8s().serviceAccount.key);
      expect(await readFile(k8s().serviceAccount.key, 'utf8')).toBe(sa);
    });
    it('an admin certificate of the old subject (no O) is remade', async () => {
      const old = join(base, 'old-admin.cnf');
      await writeFile(old, '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = kube-admin\n[ext]\nextendedKeyUsage = clientAuth\n');
      await execa('openssl', ['req', '-new', '-key', pki.admin.key, '-config', old, '-out', join(base, 'old.csr')]);
      await execa('openssl', ['x509', '-req', '-in', join(base, 'old.csr'), '-CA', pki.caCert, '-CAkey', pki.caKey, '-set_serial', '7', '-days', '30', '-extfile', old, '-extensions', 'ext', '-out', pki.admin.cert]);
      expect(await subject(pki.admin.cert)).toBe('subject=CN=kube-admin');
      expect((await ensureClusterPki(dir, lab)).generated).toEqual([pki.admin.cert, pki.admin.key]);
      expect(await subject(pki.admin.cert)).toBe('subject=CN=kube-admin,O=system:masters');
    });
  });

  describe('into a node plan', () => {
    const pem = (path: string) => readFile(path, 'utf8');
    it('the master gets the CA, its node pair as the kubelet\'s, kube-proxy\'s and the control plane\'s', async () => {
      const pems = await readKubernetesPems(pki, lab, 'cni-master1');
      expect(pems).toEqual({
        ca: await pem(pki.caCert),
        kubelet: { cert: await pem(pki.nodes['cni-master1']!.cert), key: await pem(pki.nodes['cni-master1']!.key) },
        proxy: { cert: await pem(k8s().proxy.cert), key: await pem(k8s().proxy.key) },
        master: {
          apiserver: { cert: await pem(pki.apiserver.cert), key: await pem(pki.apiserver.key) },
          admin: { cert: await pem(pki.admin.cert), key: await pem(pki.admin.key) },
          controllerManager: { cert: await pem(k8s().controllerManager.cert), key: await pem(k8s().controllerManager.key) },
          scheduler: { cert: await pem(k8s().scheduler.cert), key: await pem(k8s().scheduler.key) },
          serviceAccount: { cert: await pem(k8s().serviceAccount.cert), key: await pem(k8s().serviceAccount.key) },
        },
      });
    });
    it('a worker gets its own pair and kube-proxy\'s, nothing of the control plane', async () => {
      const pems = await readKubernetesPems(pki, lab, 'cni-worker2');
      expect(pems.master).toBeUndefined();
      expect(pems.kubelet.cert).toBe(await pem(pki.nodes['cni-worker2']!.cert));
    });
    it('every private key of the master\'s plan is a secret file of mode 600, with the key the PKI holds', async () => {
      const plan = planNode(lab, 'cni-master1', { clusterPublicKey: ed25519PublicKey('k'), kubernetes: await readKubernetesPems(pki, lab, 'cni-master1'), cni: { conf: [], bin: [] } });
      const keys = plan.steps.find((s) => s.id === 'certificates')!.files.filter((f) => f.path.endsWith('-key.pem'));
      expect(keys.map((f) => [f.path, f.mode, f.secret])).toEqual(
        ['kubelet', 'kube-proxy', 'apiserver', 'admin', 'kube-controller-manager', 'kube-scheduler', 'sa'].map((stem) => [`/etc/kubernetes/ssl/${stem}-key.pem`, '0600', true]),
      );
      expect(keys.find((f) => f.path === '/etc/kubernetes/ssl/sa-key.pem')!.content).toBe(await pem(k8s().serviceAccount.key));
    });
    it('names a PKI made for a cluster without cluster.kubernetes', async () => {
      const xenialPki = await ensureClusterPki(join(base, 'xenial'), cluster);
      await expect(readKubernetesPems(xenialPki, cluster, 'cni-worker1')).rejects.toThrow(/holds no Kubernetes identities/);
    });
    it('names a node without a certificate', () => expect(readKubernetesPems(pki, lab, 'nobody')).rejects.toThrow('node "nobody": no certificate in'));
  });
});
