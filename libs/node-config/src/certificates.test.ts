import { resolveClusterOrThrow } from '@boxcar/model';
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterPki, readNodeCertificates, type ClusterPki } from './certificates.ts';
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
  it('an admin client certificate chains to the CA', async () => {
    expect(await subject(pki.admin.cert)).toBe('subject=CN=kube-admin');
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
