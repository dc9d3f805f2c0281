// The cluster's PKI on the host (<repo>/.cluster/<name>/pki): a CA, the apiserver certificate, one certificate
// per worker and an admin client certificate, made with openssl. Private keys stay on the host and reach a
// node only through its plan, over SSH; they are never part of an image.

import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster } from '@boxcar/model';
import { execa } from 'execa';
import type { NodeCertificates } from './types.ts';

export interface CertPair {
  cert: string;
  key: string;
}

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserver: CertPair;
  /** One pair per worker, by node name. */
  nodes: Record<string, CertPair>;
  admin: CertPair;
  /** Files (re)made by this call; empty when everything was already valid. */
  generated: string[];
}

export interface CertificateSpec {
  /** File stem: <stem>.pem and <stem>-key.pem. */
  stem: string;
  commonName: string;
  sans: { dns: string[]; ip: string[] };
  usage: ('serverAuth' | 'clientAuth')[];
}

const CA = { stem: 'ca', commonName: 'kube-ca', days: 3650 };
const LEAF_DAYS = 825;
/** A certificate closer than this to its end is made again. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
const KEY_BITS = 2048;

/** What the cluster needs, from the model: names, subjects and SANs (the apiserver's include the service IP). */
export function certificateSpecs(cluster: Cluster): { apiserver: CertificateSpec; nodes: CertificateSpec[]; admin: CertificateSpec } {
  return {
    apiserver: { stem: 'apiserver', commonName: 'kube-apiserver', sans: cluster.master.certificateSans, usage: ['serverAuth'] },
    nodes: cluster.workers.map((node) => ({ stem: node.name, commonName: node.name, sans: node.certificateSans, usage: ['serverAuth', 'clientAuth'] })),
    admin: { stem: 'admin', commonName: 'kube-admin', sans: { dns: [], ip: [] }, usage: ['clientAuth'] },
  };
}

/**
 * Makes `dir` hold a valid PKI for `cluster`, keeping what is already valid: a certificate is made again
 * when it is missing, does not match its key, does not chain to the CA, ends within 30 days, or has other
 * subject or SANs than the model asks for. A new CA makes every certificate new.
 */
export async function ensureClusterPki(dir: string, cluster: Cluster): Promise<ClusterPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const specs = certificateSpecs(cluster);
  const generated: string[] = [];
  const paths = (stem: string): CertPair => ({ cert: join(dir, `${stem}.pem`), key: join(dir, `${stem}-key.pem`) });

  const ca = paths(CA.stem);
  let caCert = await validCa(ca);
  if (!caCert) {
    await withWorkDir(dir, async (work) => {
      const made = { cert: join(work, 'ca.pem'), key: join(work, 'ca-key.pem') };
      await writeFile(join(work, 'ca.cnf'), caConfig(), { mode: 0o600 });
      await openssl(['req', '-x509', '-new', '-newkey', `rsa:${KEY_BITS}`, '-nodes', '-sha256', '-days', String(CA.days),
        '-config', join(work, 'ca.cnf'), '-extensions', 'ext', '-keyout', made.key, '-out', made.cert]);
      await install(made, ca);
    });
    generated.push(ca.cert, ca.key);
    caCert = new X509Certificate(await readFile(ca.cert));
  }

  const leaf = async (spec: CertificateSpec): Promise<CertPair> => {
    const target = paths(spec.stem);
    if (!(await validLeaf(target, spec, caCert))) {
      await issue(dir, spec, ca, target);
      generated.push(target.cert, target.key);
    }
    return target;
  };
  const apiserver = await leaf(specs.apiserver);
  const nodes: Record<string, CertPair> = {};
  for (const spec of specs.nodes) nodes[spec.stem] = await leaf(spec);
  const admin = await leaf(specs.admin);

  return { dir, caCert: ca.cert, caKey: ca.key, apiserver, nodes, admin, generated };
}

/** The PEMs a node's plan installs: the CA and the apiserver pair on the master, the node's own pair on a worker. */
export async function readNodeCertificates(pki: ClusterPki, cluster: Cluster, nodeName: string): Promise<NodeCertificates> {
  const node = cluster.nodes.find((candidate) => candidate.name === nodeName);
  const pair = node?.role === 'master' ? pki.apiserver : pki.nodes[nodeName];
  if (!pair) throw new Error(`node "${nodeName}": no certificate in ${pki.dir}; allowed: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  const [ca, cert, key] = await Promise.all([readFile(pki.caCert, 'utf8'), readFile(pair.cert, 'utf8'), readFile(pair.key, 'utf8')]);
  return { ca, cert, key };
}

async function issue(dir: string, spec: CertificateSpec, ca: CertPair, target: CertPair): Promise<void> {
  await withWorkDir(dir, async (work) => {
    const made = { cert: join(work, 'cert.pem'), key: join(work, 'key.pem') };
    const config = join(work, 'leaf.cnf');
    const csr = join(work, 'leaf.csr');
    await writeFile(config, leafConfig(spec), { mode: 0o600 });
    await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${KEY_BITS}`, '-out', made.key]);
    await openssl(['req', '-new', '-key', made.key, '-config', config, '-out', csr]);
    await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-sha256', '-days', String(LEAF_DAYS), '-extfile', config, '-extensions', 'ext', '-out', made.cert]);
    await install(made, target);
  });
}

function caConfig(): string {
  return [
    '[req]', 'distinguished_name = dn', 'prompt = no',
    '[dn]', `CN = ${CA.commonName}`,
    '[ext]', 'basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash',
    '',
  ].join('\n');
}

function leafConfig(spec: CertificateSpec): string {
  const alt = [...spec.sans.dns.map((name, i) => `DNS.${i + 1} = ${name}`), ...spec.sans.ip.map((ip, i) => `IP.${i + 1} = ${ip}`)];
  return [
    '[req]', 'distinguished_name = dn', 'prompt = no',
    '[dn]', `CN = ${spec.commonName}`,
    '[ext]',
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${spec.usage.join(', ')}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    ...(alt.length ? ['subjectAltName = @alt', '[alt]', ...alt] : []),
    '',
  ].join('\n');
}

async function validCa(ca: CertPair): Promise<X509Certificate | undefined> {
  const loaded = await load(ca);
  if (!loaded) return undefined;
  const { cert } = loaded;
  return cert.ca && cert.subject === `CN=${CA.commonName}` && cert.verify(cert.publicKey) && fresh(cert) ? cert : undefined;
}

async function validLeaf(pair: CertPair, spec: CertificateSpec, ca: X509Certificate): Promise<boolean> {
  const loaded = await load(pair);
  if (!loaded) return false;
  const { cert } = loaded;
  return cert.subject === `CN=${spec.commonName}` && cert.checkIssued(ca) && cert.verify(ca.publicKey) && fresh(cert) && sameSans(cert, spec);
}

/** The pair, when both files parse and the key belongs to the certificate; a readable key gets mode 600 back. */
async function load(pair: CertPair): Promise<{ cert: X509Certificate } | undefined> {
  try {
    const cert = new X509Certificate(await readFile(pair.cert));
    if (!cert.checkPrivateKey(createPrivateKey(await readFile(pair.key)))) return undefined;
    if (((await stat(pair.key)).mode & 0o777) !== 0o600) await chmod(pair.key, 0o600);
    return { cert };
  } catch (error) {
    if (isMissingOrUnparsable(error)) return undefined;
    throw error;
  }
}

/** A missing file or one OpenSSL cannot read is a reason to make the pair again; anything else is a real error. */
function isMissingOrUnparsable(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return code === 'ENOENT' || code.startsWith('ERR_OSSL');
}

function fresh(cert: X509Certificate): boolean {
  const now = Date.now();
  return new Date(cert.validFrom).getTime() <= now && new Date(cert.validTo).getTime() - now > RENEW_BEFORE_MS;
}

function sameSans(cert: X509Certificate, spec: CertificateSpec): boolean {
  const have = (cert.subjectAltName ?? '').split(', ').filter(Boolean).sort();
  const want = [...spec.sans.dns.map((name) => `DNS:${name}`), ...spec.sans.ip.map((ip) => `IP Address:${ip}`)].sort();
  return have.length === want.length && have.every((entry, i) => entry === want[i]);
}

/** A private scratch directory beside the PKI (same file system, so the final renames are atomic). */
async function withWorkDir(dir: string, work: (path: string) => Promise<void>): Promise<void> {
  const path = await mkdtemp(join(dir, '.work-'));
  try {
    await chmod(path, 0o700);
    await work(path);
  } finally {
    await rm(path, { recursive: true, force: true });
  }
}

async function install(made: CertPair, target: CertPair): Promise<void> {
  await chmod(made.key, 0o600);
  await chmod(made.cert, 0o644);
  // Key first: a crash between the renames leaves a pair that does not match, which the next run remakes.
  await rename(made.key, target.key);
  await rename(made.cert, target.cert);
}

async function openssl(args: string[]): Promise<void> {
  const result = await execa('openssl', args, { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new Error(`openssl ${args[0]} failed (exit ${result.exitCode ?? result.signal}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
}
