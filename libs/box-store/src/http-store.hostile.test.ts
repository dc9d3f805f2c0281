// An http store served by a hostile or broken server on 127.0.0.1: bodies that never end, sizes that
// lie, a redirect from https to plain http, a body that trickles past its deadline. Every read stays
// bounded, fails naming the URL and what was exceeded, and leaves nothing in the cache; and stale
// `.tmp-` leftovers of interrupted downloads are swept from the cache when it is opened.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BoxStoreError } from './errors.ts';
import { openStore } from './store.ts';
import type { BoxStore, HttpStoreLimits, PublishBoxResult } from './types.ts';
import { makeTempDir, randomFile } from './testing/fixtures.ts';

type Misbehaviour = (req: IncomingMessage, res: ServerResponse) => void;

let dir: string;
let cleanup: () => Promise<void>;
let root: string;
let published: PublishBoxResult;
/** Paths answered by a misbehaviour instead of the file. */
let overrides: Map<string, Misbehaviour>;
const servers: Server[] = [];

const DISK_SIZE = 128 * 1024;
const DISK = '/layers/lab/base/k0/disk.qcow2';

/** Serves `root` like a static file server, except the paths in `overrides`. */
const handler: RequestListener = (req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const override = overrides.get(path);
  if (override) {
    override(req, res);
    return;
  }
  const file = normalize(join(root, path));
  if (!file.startsWith(root + sep)) {
    res.writeHead(403).end();
    return;
  }
  readFile(file).then(
    (bytes) => res.writeHead(200, { 'content-length': bytes.length }).end(bytes),
    () => res.writeHead(404).end(),
  );
};

async function listen(server: Server, scheme: 'http' | 'https'): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function httpStore(url: string, limits: HttpStoreLimits = {}): BoxStore {
  return openStore(`${url}/`, { cacheDir: join(dir, 'cache'), http: limits });
}

/** A body that never ends (chunked), sent as fast as the client reads it. */
const endless: Misbehaviour = (_req, res) => {
  res.writeHead(200);
  const chunk = Buffer.alloc(64 * 1024, 0x7b);
  let open = true;
  res.on('close', () => (open = false));
  const pump = (): void => {
    while (open) if (!res.write(chunk)) return void res.once('drain', pump);
  };
  pump();
};

/** Announces the right size, then sends a byte every 20 ms: never idle, never done. */
const trickle: Misbehaviour = (_req, res) => {
  res.writeHead(200, { 'content-length': DISK_SIZE });
  const timer = setInterval(() => res.write('x'), 20);
  res.on('close', () => clearInterval(timer));
};

async function rejection(promise: Promise<unknown>): Promise<BoxStoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BoxStoreError);
  return error as BoxStoreError;
}

async function cacheLayerEntries(): Promise<string[]> {
  return readdir(join(dir, 'cache', 'layers', 'lab', 'base')).catch(() => []);
}

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir('http-hostile'));
  root = join(dir, 'store');
  await mkdir(join(dir, 'src', 'layer'), { recursive: true });
  overrides = new Map();
  const files = openStore(root);
  published = await files.publishBox({
    boxName: 'boxcar/lab-worker',
    description: 'worker',
    provider: 'libvirt',
    boxFile: await randomFile(join(dir, 'src', 'a.box'), 64 * 1024),
    key: 'k1',
    layer: 'worker',
    profile: 'lab',
  });
  await randomFile(join(dir, 'src', 'layer', 'disk.qcow2'), DISK_SIZE);
  await files.publishLayer('lab', 'base', 'k0', join(dir, 'src', 'layer'), { from: 'test' });
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await cleanup();
});

describe('a hostile http store stays bounded', () => {
  it('caps catalogs, manifests and index.json (maxTextBytes), naming the URL and the limit', async () => {
    const url = await listen(createServer(handler), 'http');
    const store = httpStore(url, { maxTextBytes: 64 * 1024 });
    expect((await store.readCatalog('boxcar/lab-worker')).name).toBe('boxcar/lab-worker');

    overrides.set('/boxes/boxcar/lab-worker/metadata.json', endless);
    const catalog = await rejection(store.readCatalog('boxcar/lab-worker'));
    expect(catalog.code).toBe('http');
    expect(catalog.message).toBe(`${url}/boxes/boxcar/lab-worker/metadata.json sent more than the limit of ${64 * 1024} bytes`);

    overrides.set('/index.json', endless);
    expect((await rejection(store.listBoxes())).message).toBe(`${url}/index.json sent more than the limit of ${64 * 1024} bytes`);

    overrides.set('/layers/lab/base/k0/layer.json', endless);
    expect((await rejection(store.layerFiles('lab', 'base', 'k0'))).message).toBe(`${url}/layers/lab/base/k0/layer.json sent more than the limit of ${64 * 1024} bytes`);
    expect(await cacheLayerEntries()).toEqual([]);
  });

  it('stops a layer disk that never ends right past the manifest size, and leaves no partial download', async () => {
    const url = await listen(createServer(handler), 'http');
    overrides.set(DISK, endless);
    const error = await rejection(httpStore(url).layerFiles('lab', 'base', 'k0'));
    expect(error.code).toBe('http');
    expect(error.message).toBe(`${url}${DISK} sent more than the expected ${DISK_SIZE} bytes`);
    expect(await cacheLayerEntries()).toEqual([]);
  });

  it('refuses a layer disk whose Content-Length disagrees with the manifest before reading it', async () => {
    const url = await listen(createServer(handler), 'http');
    overrides.set(DISK, (_req, res) => res.writeHead(200, { 'content-length': 10 * DISK_SIZE }).end(Buffer.alloc(10 * DISK_SIZE)));
    const error = await rejection(httpStore(url).layerFiles('lab', 'base', 'k0'));
    expect(error.code).toBe('corrupt');
    expect(error.message).toBe(`corrupted ${url}${DISK}: ${10 * DISK_SIZE} bytes, ${url}/layers/lab/base/k0/layer.json says ${DISK_SIZE} (truncated or overwritten)`);
    expect(await cacheLayerEntries()).toEqual([]);
  });

  it('stops a box that never ends past the catalog size, and fetchBox leaves no partial file', async () => {
    const url = await listen(createServer(handler), 'http');
    const boxPath = `/boxes/boxcar/lab-worker/${published.version}/libvirt.box`;
    overrides.set(boxPath, endless);
    const store = httpStore(url);
    await expect(store.verifyBox('boxcar/lab-worker', published.version, 'libvirt')).rejects.toThrow(`${url}${boxPath} sent more than the expected ${published.size} bytes`);
    await expect(store.fetchBox('boxcar/lab-worker', published.version, 'libvirt', join(dir, 'out'))).rejects.toThrow(
      `${url}${boxPath} sent more than the expected ${published.size} bytes`,
    );
    expect(await readdir(join(dir, 'out'))).toEqual([]);
  });

  it('cuts a layer disk that trickles past the deadline its size allows', async () => {
    const url = await listen(createServer(handler), 'http');
    overrides.set(DISK, trickle);
    const started = Date.now();
    const error = await rejection(httpStore(url, { deadline: { baseMs: 300, minBytesPerSecond: 1_000_000_000 } }).layerFiles('lab', 'base', 'k0'));
    expect(error.code).toBe('http');
    expect(error.message).toMatch(new RegExp(`^GET ${url}${DISK} exceeded its deadline of 301 ms \\(\\d+ bytes of the body received\\)$`));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await cacheLayerEntries()).toEqual([]);
  });

  it('refuses a redirect from https to plain http (real https with a self-signed CA)', async () => {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    const cert = await readFile(join(dir, 'cert.pem'));
    const plain = await listen(createServer(handler), 'http');
    const secure = await listen(createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert }, handler) as unknown as Server, 'https');
    const store = httpStore(secure, { ca: cert });
    expect((await store.readCatalog('boxcar/lab-worker')).name).toBe('boxcar/lab-worker');

    overrides.set('/boxes/boxcar/lab-worker/metadata.json', (_req, res) => res.writeHead(301, { location: `${plain}/boxes/boxcar/lab-worker/metadata.json` }).end());
    const error = await rejection(store.readCatalog('boxcar/lab-worker'));
    expect(error.code).toBe('http');
    expect(error.message).toBe(
      `${secure}/boxes/boxcar/lab-worker/metadata.json redirects to ${plain}/boxes/boxcar/lab-worker/metadata.json: refusing to follow a redirect from https to plain http`,
    );
    // An http store may still move within http.
    overrides.clear();
    const moved = await listen(createServer((_req, res) => res.writeHead(302, { location: `${plain}${_req.url ?? '/'}` }).end()), 'http');
    expect((await httpStore(moved).readCatalog('boxcar/lab-worker')).name).toBe('boxcar/lab-worker');
  });
});

describe('the layer cache sweeps abandoned downloads when opened', () => {
  it('removes .tmp- leftovers older than staleTempMs, keeps fresh ones and real entries', async () => {
    const url = await listen(createServer(handler), 'http');
    const cache = join(dir, 'cache');
    const old = (Date.now() - 2 * 24 * 3600 * 1000) / 1000;
    const make = async (path: string, age: number | undefined, asDir = false): Promise<string> => {
      const full = join(cache, path);
      if (asDir) {
        await mkdir(full, { recursive: true });
        await writeFile(join(full, 'disk.qcow2'), 'partial');
        if (age !== undefined) await utimes(join(full, 'disk.qcow2'), age, age);
      } else {
        await mkdir(join(full, '..'), { recursive: true });
        await writeFile(full, 'partial');
      }
      if (age !== undefined) await utimes(full, age, age);
      return full;
    };
    await make('layers/lab/base/.tmp-abandoned', old, true);
    await make('layers/lab/base/.tmp-live', undefined, true);
    // An old directory whose file is still being written is alive.
    await make('layers/lab/base/.tmp-growing', old, true);
    await utimes(join(cache, 'layers/lab/base/.tmp-growing/disk.qcow2'), Date.now() / 1000, Date.now() / 1000);
    await make('keys/0123456789abcdef/.tmp-bootstrap_ed25519-abc', old);
    await make('refs/host/lab/.tmp-node.json-abc', old);
    await make('layers/lab/other/k7/disk.qcow2', old);

    await httpStore(url, { staleTempMs: 24 * 3600 * 1000 }).layerFiles('lab', 'base', 'k0');
    expect((await cacheLayerEntries()).sort()).toEqual(['.tmp-growing', '.tmp-live', 'k0']);
    expect(await readdir(join(cache, 'keys', '0123456789abcdef'))).toEqual([]);
    expect(await readdir(join(cache, 'refs', 'host', 'lab'))).toEqual([]);
    expect(await readdir(join(cache, 'layers', 'lab', 'other', 'k7'))).toEqual(['disk.qcow2']);
  });
});

describe('a store whose layer disk names a host file', () => {
  it('is refused, named, over http and from a file store, and nothing is cached', async () => {
    // A real qcow2 made by qemu-img whose header names a host file as its backing file (here one of the
    // test's own, standing for the baker's key): a VM booted on it would read that file as its disk.
    const secret = join(dir, 'id_ed25519');
    await writeFile(secret, 'not a disk\n');
    const hostile = join(dir, 'src', 'hostile');
    await mkdir(hostile, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', secret, join(hostile, 'disk.qcow2'), '1M']);
    await openStore(root).publishLayer('lab', 'base', 'k6', hostile, {});

    const url = await listen(createServer(handler), 'http');
    const error = await rejection(httpStore(url).layerFiles('lab', 'base', 'k6'));
    expect(error.code).toBe('unsafe-image');
    expect(error.message).toBe(
      `${url}/layers/lab/base/k6/disk.qcow2 (listed in ${url}/layers/lab/base/k6/layer.json) is a disk image that names files on this host, refused before any VM sees it: ` +
        `a backing file: ${JSON.stringify(secret)}. A layer's disk must be self-contained: bake the layer again, or ask who publishes this store`,
    );
    expect(await cacheLayerEntries()).toEqual([]);
    expect((await rejection(openStore(root).layerFiles('lab', 'base', 'k6'))).code).toBe('unsafe-image');
    // The honest layer of the same store still reads.
    expect(await httpStore(url).layerFiles('lab', 'base', 'k0')).toBe(join(dir, 'cache', 'layers', 'lab', 'base', 'k0'));
  });
});
