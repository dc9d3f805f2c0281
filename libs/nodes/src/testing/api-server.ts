// A stand-in for a Kubernetes API server in the tests: real https on 127.0.0.1 that requires a client
// certificate of its CA (as kube-apiserver does with --client-ca-file), with throwaway certificates made
// by openssl. It records each request with the subject of the client certificate that came with it.

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PemPair {
  cert: Buffer;
  key: Buffer;
}

export interface TestPki {
  ca: PemPair;
  /** Signed by `ca`, for 127.0.0.1 (IP SAN), serverAuth. */
  server: PemPair;
  /** Signed by `ca`: CN=kube-admin, O=system:masters, clientAuth. */
  admin: PemPair;
  /** A CA the server does not trust, and a client certificate it signed (same subject as admin). */
  rogueCa: PemPair;
  rogueAdmin: PemPair;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, stem: string, commonName: string): Promise<PemPair> {
  const [cert, key] = [join(dir, `${stem}.pem`), join(dir, `${stem}-key.pem`)];
  await run('openssl', ['req', '-x509', ...EC, '-days', '1', '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', key, '-out', cert]);
  return { cert: await readFile(cert), key: await readFile(key) };
}

async function makeLeaf(dir: string, stem: string, ca: { stem: string }, subject: string, extensions: string): Promise<PemPair> {
  const [cert, key, csr, ext] = ['.pem', '-key.pem', '.csr', '.ext'].map((suffix) => join(dir, `${stem}${suffix}`)) as [string, string, string, string];
  await writeFile(ext, `${extensions}\n`);
  await run('openssl', ['req', '-new', ...EC, '-subj', subject, '-keyout', key, '-out', csr]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', join(dir, `${ca.stem}.pem`), '-CAkey', join(dir, `${ca.stem}-key.pem`), '-set_serial', String(Date.now()),
    '-days', '1', '-extfile', ext, '-out', cert]);
  return { cert: await readFile(cert), key: await readFile(key) };
}

/** A CA, a server certificate for 127.0.0.1, an admin client certificate, and a rogue CA with its own client certificate. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, 'ca', 'test-kube-ca');
  const rogueCa = await makeCa(dir, 'rogue-ca', 'rogue-ca');
  return {
    ca,
    rogueCa,
    server: await makeLeaf(dir, 'server', { stem: 'ca' }, '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'),
    admin: await makeLeaf(dir, 'admin', { stem: 'ca' }, '/O=system:masters/CN=kube-admin', 'extendedKeyUsage=clientAuth'),
    rogueAdmin: await makeLeaf(dir, 'rogue-admin', { stem: 'rogue-ca' }, '/O=system:masters/CN=kube-admin', 'extendedKeyUsage=clientAuth'),
  };
}

export interface ApiRequest {
  path: string;
  /** Subject of the verified client certificate, e.g. { O: 'system:masters', CN: 'kube-admin' }. */
  client: Record<string, string | string[]> | undefined;
}

export interface TestApiServer {
  /** https://127.0.0.1:<port> */
  server: string;
  port: number;
  requests: ApiRequest[];
  /** TLS handshakes the server refused (no client certificate, or one of another CA). */
  refusedHandshakes: () => number;
  close(): Promise<void>;
}

export type ApiHandler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

/** An https server on 127.0.0.1 with `tls.server`, trusting client certificates of `clientCa` only. */
export async function startApiServer(tls: { server: PemPair; clientCa: Buffer }, handler: ApiHandler): Promise<TestApiServer> {
  const requests: ApiRequest[] = [];
  let refused = 0;
  const server: Server = createServer({ cert: tls.server.cert, key: tls.server.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    requests.push({ path: req.url ?? '', client: peer && peer.subject ? { ...peer.subject } : undefined });
    handler(req, res, requests.length - 1);
  });
  server.on('tlsClientError', () => (refused += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server: `https://127.0.0.1:${port}`,
    port,
    requests,
    refusedHandshakes: () => refused,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A v1 NodeList as kube-apiserver 1.20 returns it (only the fields boxcar reads, and a few it must ignore). */
export function nodeList(nodes: { name: string; ready?: 'True' | 'False' | 'Unknown'; reason?: string; message?: string; kubeletVersion?: string }[]): string {
  return JSON.stringify({
    kind: 'NodeList',
    apiVersion: 'v1',
    metadata: { resourceVersion: '1234' },
    items: nodes.map((node) => ({
      metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name } },
      spec: { podCIDR: '10.244.0.0/24' },
      status: {
        conditions: [
          { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory' },
          ...(node.ready ? [{ type: 'Ready', status: node.ready, ...(node.reason ? { reason: node.reason } : {}), ...(node.message ? { message: node.message } : {}) }] : []),
        ],
        nodeInfo: { ...(node.kubeletVersion ? { kubeletVersion: node.kubeletVersion } : {}), containerRuntimeVersion: 'containerd://1.4.13' },
      },
    })),
  });
}
