// The cluster's PKI on the host (<repo>/.cluster/<name>/pki): a CA, the apiserver certificate, one certificate
// per worker and an admin client certificate, made with openssl. The lab's Kubernetes (cluster.kubernetes)
// also gets a certificate per node (the master's kubelet too), one per control-plane component and kube-proxy,
// and the service-account key pair. Private keys stay on the host and reach a node only through its plan,
// over SSH; they are never part of an image.

import { X509Certificate, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cluster } from '@boxcar/model';
import { execa } from 'execa';
import type { KubernetesPems, NodeCertificates, PemPair } from './types.ts';

export interface CertPair {
  cert: string;
  key: string;
}

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  apiserver: CertPair;
  /** One pair per worker (with cluster.kubernetes: per node), by node name. */
  nodes: Record<string, CertPair>;
  admin: CertPair;
  /** Where the cluster runs the lab's Kubernetes (cluster.kubernetes). */
  kubernetes?: KubernetesPki;
  /** Files (re)made by this call; empty when everything was already valid. */
  generated: string[];
}

export interface KubernetesPki {
  controllerManager: CertPair;
  scheduler: CertPair;
  proxy: CertPair;
  /** Signs and checks service-account tokens: `cert` is sa.pem, the public key, `key` sa-key.pem. */
  serviceAccount: CertPair;
}

export interface CertificateSpec {
  /** File stem: <stem>.pem and <stem>-key.pem. */
  stem: string;
  commonName: string;
  /** The subject's O: Kubernetes reads it as the group (system:masters, system:nodes). */
  organization?: string;
  sans: { dns: string[]; ip: string[] };
  usage: ('serverAuth' | 'clientAuth')[];
}

interface CertificateSpecs {
  apiserver: CertificateSpec;
  nodes: CertificateSpec[];
  admin: CertificateSpec;
  kubernetes?: { controllerManager: CertificateSpec; scheduler: CertificateSpec; proxy: CertificateSpec };
}

const CA = { stem: 'ca', commonName: 'kube-ca', days: 3650 };
const LEAF_DAYS = 825;
/** A certificate closer than this to its end is made again. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
const KEY_BITS = 2048;
const SERVICE_ACCOUNT_STEM = 'sa';
const NO_SANS = { dns: [], ip: [] };

/**
 * What the cluster needs, from the model: names, subjects and SANs (the apiserver's include the service IP).
 * The lab's Kubernetes authorizes by subject (Node authorizer, RBAC's default bindings), hence its names.
 */
export function certificateSpecs(cluster: Cluster): CertificateSpecs {
  const admin: CertificateSpec = { stem: ADMIN_STEM, commonName: 'kube-admin', organization: 'system:masters', sans: NO_SANS, usage: ['clientAuth'] };
  const apiserver: CertificateSpec = { stem: 'apiserver', commonName: 'kube-apiserver', sans: cluster.master.certificateSans, usage: ['serverAuth'] };
  if (!cluster.kubernetes) {
    const nodes = cluster.workers.map((node): CertificateSpec => ({ stem: node.name, commonName: node.name, sans: node.certificateSans, usage: ['serverAuth', 'clientAuth'] }));
    return { apiserver, nodes, admin };
  }
  const client = (stem: string, commonName: string): CertificateSpec => ({ stem, commonName, sans: NO_SANS, usage: ['clientAuth'] });
  return {
    apiserver,
    // The kubelet serves with it too (the apiserver reaches it by IP for logs and exec), hence serverAuth and the SANs.
    nodes: cluster.nodes.map((node) => ({
      stem: node.name,
      commonName: `system:node:${node.name}`,
      organization: 'system:nodes',
      sans: { dns: [node.name], ip: [node.ip] },
      usage: ['serverAuth', 'clientAuth'],
    })),
    admin,
    kubernetes: {
      controllerManager: client('kube-controller-manager', 'system:kube-controller-manager'),
      scheduler: client('kube-scheduler', 'system:kube-scheduler'),
      proxy: client('kube-proxy', 'system:kube-proxy'),
    },
  };
}

const ADMIN_STEM = 'admin';

/** Where the pair of certificate file stem `stem` lives in a PKI folder: <stem>.pem and <stem>-key.pem. */
function pairIn(dir: string, stem: string): CertPair {
  return { cert: join(dir, `${stem}.pem`), key: join(dir, `${stem}-key.pem`) };
}

/**
 * The files of the CA certificate and the admin client pair in a PKI folder that ensureClusterPki made: what
 * reads the cluster's API from the host uses, without checking (or remaking) the rest of the PKI.
 */
export function adminCredentialFiles(dir: string): { ca: string; cert: string; key: string } {
  return { ca: pairIn(dir, CA.stem).cert, ...pairIn(dir, ADMIN_STEM) };
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
  const paths = (stem: string): CertPair => pairIn(dir, stem);

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
  const kubernetes = specs.kubernetes && {
    controllerManager: await leaf(specs.kubernetes.controllerManager),
    scheduler: await leaf(specs.kubernetes.scheduler),
    proxy: await leaf(specs.kubernetes.proxy),
    serviceAccount: await serviceAccountKeys(dir, paths(SERVICE_ACCOUNT_STEM), generated),
  };

  return { dir, caCert: ca.cert, caKey: ca.key, apiserver, nodes, admin, ...(kubernetes ? { kubernetes } : {}), generated };
}

/** The PEMs a node's plan installs: the CA and the apiserver pair on the master, the node's own pair on a worker. */
export async function readNodeCertificates(pki: ClusterPki, cluster: Cluster, nodeName: string): Promise<NodeCertificates> {
  const node = cluster.nodes.find((candidate) => candidate.name === nodeName);
  const pair = node?.role === 'master' ? pki.apiserver : pki.nodes[nodeName];
  if (!pair) throw new Error(`node "${nodeName}": no certificate in ${pki.dir}; allowed: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  const [ca, cert, key] = await Promise.all([readFile(pki.caCert, 'utf8'), readFile(pair.cert, 'utf8'), readFile(pair.key, 'utf8')]);
  return { ca, cert, key };
}

/** The PEMs a node of the lab's Kubernetes installs: the CA, its kubelet and kube-proxy pairs, and on the master the control plane's. */
export async function readKubernetesPems(pki: ClusterPki, cluster: Cluster, nodeName: string): Promise<KubernetesPems> {
  const node = cluster.nodes.find((candidate) => candidate.name === nodeName);
  const kubelet = pki.nodes[nodeName];
  if (!node || !kubelet) throw new Error(`node "${nodeName}": no certificate in ${pki.dir}; allowed: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  const k8s = pki.kubernetes;
  if (!k8s) throw new Error(`${pki.dir}: holds no Kubernetes identities; it was made for a cluster without cluster.kubernetes`);
  const read = (path: string) => readFile(path, 'utf8');
  const pair = async (files: CertPair): Promise<PemPair> => ({ cert: await read(files.cert), key: await read(files.key) });
  return {
    ca: await read(pki.caCert),
    kubelet: await pair(kubelet),
    proxy: await pair(k8s.proxy),
    ...(node.role === 'master'
      ? {
          master: {
            apiserver: await pair(pki.apiserver),
            admin: await pair(pki.admin),
            controllerManager: await pair(k8s.controllerManager),
            scheduler: await pair(k8s.scheduler),
            serviceAccount: await pair(k8s.serviceAccount),
          },
        }
      : {}),
  };
}

/** The service-account RSA key pair, kept while the public key belongs to the private one: new keys would void every token. */
async function serviceAccountKeys(dir: string, target: CertPair, generated: string[]): Promise<CertPair> {
  if (await validKeyPair(target)) return target;
  await withWorkDir(dir, async (work) => {
    const made = { cert: join(work, 'public.pem'), key: join(work, 'key.pem') };
    await generateKey(made.key);
    await openssl(['pkey', '-in', made.key, '-pubout', '-out', made.cert]);
    await install(made, target);
  });
  generated.push(target.cert, target.key);
  return target;
}

async function issue(dir: string, spec: CertificateSpec, ca: CertPair, target: CertPair): Promise<void> {
  await withWorkDir(dir, async (work) => {
    const made = { cert: join(work, 'cert.pem'), key: join(work, 'key.pem') };
    const config = join(work, 'leaf.cnf');
    const csr = join(work, 'leaf.csr');
    await writeFile(config, leafConfig(spec), { mode: 0o600 });
    await generateKey(made.key);
    await openssl(['req', '-new', '-key', made.key, '-config', config, '-out', csr]);
    await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-sha256', '-days', String(LEAF_DAYS), '-extfile', config, '-extensions', 'ext', '-out', made.cert]);
    await install(made, target);
  });
}

const generateKey = (path: string) => openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${KEY_BITS}`, '-out', path]);

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
    '[dn]', ...(spec.organization ? [`O = ${spec.organization}`] : []), `CN = ${spec.commonName}`,
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
  return cert.subject === subjectOf(spec) && cert.checkIssued(ca) && cert.verify(ca.publicKey) && fresh(cert) && sameSans(cert, spec);
}

/** X509Certificate.subject: one `TYPE=value` line per attribute, in the order leafConfig writes them. */
function subjectOf(spec: CertificateSpec): string {
  return [...(spec.organization ? [`O=${spec.organization}`] : []), `CN=${spec.commonName}`].join('\n');
}

/** The pair, when both files parse and the key belongs to the certificate; a readable key gets mode 600 back. */
async function load(pair: CertPair): Promise<{ cert: X509Certificate } | undefined> {
  try {
    const cert = new X509Certificate(await readFile(pair.cert));
    if (!cert.checkPrivateKey(createPrivateKey(await readFile(pair.key)))) return undefined;
    await keepPrivate(pair.key);
    return { cert };
  } catch (error) {
    if (isMissingOrUnparsable(error)) return undefined;
    throw error;
  }
}

/** Whether `cert` holds the public key of the RSA key `key`; a readable key gets mode 600 back. */
async function validKeyPair(pair: CertPair): Promise<boolean> {
  try {
    const key = createPrivateKey(await readFile(pair.key));
    if (key.asymmetricKeyType !== 'rsa' || !createPublicKey(await readFile(pair.cert)).equals(createPublicKey(key))) return false;
    await keepPrivate(pair.key);
    return true;
  } catch (error) {
    if (isMissingOrUnparsable(error)) return false;
    throw error;
  }
}

async function keepPrivate(key: string): Promise<void> {
  if (((await stat(key)).mode & 0o777) !== 0o600) await chmod(key, 0o600);
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
