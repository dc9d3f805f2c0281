// An http store read through a real node http server on 127.0.0.1 serving a store directory.
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from './store.ts';
import type { BoxStore, PublishBoxResult } from './types.ts';
import { sha256Hex } from '@boxcar/kit';
import { makeTempDir, randomFile } from './testing/fixtures.ts';
import type { StaticServer } from './testing/static-server.ts';
import { serveDirectory } from './testing/static-server.ts';

let dir: string;
let cleanup: () => Promise<void>;
let server: StaticServer;
let root: string;
let published: PublishBoxResult;
let http: BoxStore;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir('http'));
  root = join(dir, 'store');
  await mkdir(root);
  server = await serveDirectory(root);
  // The directory store knows the URL it is served at, so its catalog points Vagrant there.
  const files = openStore(root, { publicUrl: `${server.url}/` });
  await mkdir(join(dir, 'src', 'layer'), { recursive: true });
  published = await files.publishBox({
    boxName: 'boxcar/lab-worker',
    description: 'worker',
    provider: 'libvirt',
    boxFile: await randomFile(join(dir, 'src', 'a.box'), 256 * 1024),
    key: 'k1',
    layer: 'worker',
    profile: 'lab',
  });
  await randomFile(join(dir, 'src', 'layer', 'disk.qcow2'), 128 * 1024);
  await files.publishLayer('lab', 'base', 'k0', join(dir, 'src', 'layer'), { from: 'test' });
  http = openStore(`${server.url}/`, { cacheDir: join(dir, 'cache') });
});
afterEach(async () => {
  await server.close();
  await cleanup();
});

describe('http store', () => {
  it('reads catalogs and lists boxes over http', async () => {
    expect(http.url).toBe(server.url);
    expect(http.writable).toBe(false);
    expect(published.url).toBe(`${server.url}/boxes/boxcar/lab-worker/${published.version}/libvirt.box`);
    const boxes = await http.listBoxes();
    expect(boxes.map((b) => [b.name, b.versions.map((v) => [v.version, v.key, v.providers[0]?.url])])).toEqual([
      ['boxcar/lab-worker', [[published.version, 'k1', published.url]]],
    ]);
    expect(await http.findBoxVersionByKey('boxcar/lab-worker', 'k1')).toMatchObject({ version: published.version });
    expect(await http.findBoxVersionByKey('boxcar/nothing', 'k1')).toBeUndefined();
    expect(server.requests).toContain('/index.json');
  });

  it('verifies and fetches boxes over http, and names the URL of a corrupted one', async () => {
    const url = `${server.url}/boxes/boxcar/lab-worker/${published.version}/libvirt.box`;
    expect(await http.verifyBox('boxcar/lab-worker', published.version, 'libvirt')).toEqual({ location: url, sha256: published.sha256, size: published.size });
    const fetched = await http.fetchBox('boxcar/lab-worker', published.version, 'libvirt', join(dir, 'out'));
    expect(sha256Hex(await readFile(fetched))).toBe(published.sha256);

    const file = join(root, 'boxes', 'boxcar', 'lab-worker', published.version, 'libvirt.box');
    const bytes = await readFile(file);
    bytes[5] = (bytes[5] as number) ^ 0x10;
    await writeFile(file, bytes);
    await expect(http.verifyBox('boxcar/lab-worker', published.version, 'libvirt')).rejects.toThrow(new RegExp(`corrupted ${url}: sha256 [0-9a-f]{64}, catalog ${server.url}/boxes/boxcar/lab-worker/metadata.json says`));
    await expect(http.fetchBox('boxcar/lab-worker', published.version, 'libvirt', join(dir, 'out2'))).rejects.toThrow(`corrupted ${url}`);
    expect(await readdir(join(dir, 'out2'))).toEqual([]);
    await truncate(file, 100);
    await expect(http.verifyBox('boxcar/lab-worker', published.version, 'libvirt')).rejects.toThrow(`corrupted ${url}: 100 bytes`);
  });

  it('names the URL of an invalid catalog', async () => {
    await writeFile(join(root, 'boxes', 'boxcar', 'lab-worker', 'metadata.json'), '{"name": ');
    await expect(http.readCatalog('boxcar/lab-worker')).rejects.toThrow(new RegExp(`^invalid catalog ${server.url}/boxes/boxcar/lab-worker/metadata.json:\\d+:\\d+: invalid JSON`));
    await expect(http.readCatalog('boxcar/missing')).rejects.toThrow(`box boxcar/missing is not in store ${server.url} (no ${server.url}/boxes/boxcar/missing/metadata.json)`);
  });

  it('downloads a layer into the cache once, verified', async () => {
    expect(await http.hasLayer('lab', 'base', 'k0')).toBe(true);
    expect(await http.hasLayer('lab', 'base', 'k9')).toBe(false);
    expect(await http.latestLayer('lab', 'base')).toMatchObject({ key: 'k0', meta: { from: 'test' } });
    expect(await http.latestLayer('lab', 'none')).toBeUndefined();
    const local = await http.layerFiles('lab', 'base', 'k0');
    expect(local).toBe(join(dir, 'cache', 'layers', 'lab', 'base', 'k0'));
    expect(await readFile(join(local, 'disk.qcow2'))).toEqual(await readFile(join(dir, 'src', 'layer', 'disk.qcow2')));
    const diskUrl = '/layers/lab/base/k0/disk.qcow2';
    expect(server.requests.filter((r) => r === diskUrl)).toHaveLength(1);
    expect(await http.layerFiles('lab', 'base', 'k0')).toBe(local);
    expect(server.requests.filter((r) => r === diskUrl)).toHaveLength(1);

    // A corrupted layer on the server is refused and nothing lands in the cache.
    await truncate(join(root, 'layers', 'lab', 'base', 'k0', 'disk.qcow2'), 10);
    const fresh = openStore(server.url, { cacheDir: join(dir, 'cache2') });
    await expect(fresh.layerFiles('lab', 'base', 'k0')).rejects.toThrow(`corrupted ${server.url}${diskUrl}: 10 bytes, ${server.url}/layers/lab/base/k0/layer.json says ${128 * 1024}`);
    expect(await readdir(join(dir, 'cache2', 'layers', 'lab', 'base'))).toEqual([]);
  });

  it('refuses every write', async () => {
    const message = `http stores are read-only; publish to a file:// store and serve it (store: ${server.url})`;
    await expect(http.publishBox({ boxName: 'boxcar/x', description: '', provider: 'libvirt', boxFile: join(dir, 'src', 'a.box'), key: 'k', layer: 'l', profile: 'p' })).rejects.toThrow(message);
    await expect(http.publishLayer('lab', 'base', 'k1', join(dir, 'src', 'layer'), {})).rejects.toThrow(message);
    await expect(http.gc({ keep: 1 })).rejects.toThrow(message);
    await expect(http.sweepIncomplete()).rejects.toThrow(message);
    await expect(openStore(join(dir, 'other')).copyTo(http)).rejects.toThrow(message);
  });

  it('pulls a box with the layer it was baked from over http, verified, and refuses a layer file the server corrupts', async () => {
    await openStore(root, { publicUrl: `${server.url}/` }).publishLayer('lab', 'worker', 'k1', join(dir, 'src', 'layer'), { from: 'test' });
    const local = openStore(join(dir, 'local'));
    const pulled = await http.pull('boxcar/lab-worker', undefined, { into: local });
    expect(pulled.layers).toEqual({ copied: [{ profile: 'lab', layer: 'worker', key: 'k1' }], present: [], missing: [] });
    expect(await readFile(join(await local.layerFiles('lab', 'worker', 'k1'), 'disk.qcow2'))).toEqual(await readFile(join(dir, 'src', 'layer', 'disk.qcow2')));
    expect(server.requests).toContain('/layers/lab/worker/k1/disk.qcow2');

    const served = join(root, 'layers', 'lab', 'worker', 'k1', 'disk.qcow2');
    const bytes = await readFile(served);
    bytes[7] = (bytes[7] as number) ^ 0x10;
    await writeFile(served, bytes);
    const other = join(dir, 'other');
    await expect(http.pull('boxcar/lab-worker', undefined, { into: openStore(other) })).rejects.toThrow(`corrupted ${server.url}/layers/lab/worker/k1/disk.qcow2: sha256`);
    await expect(stat(join(other, 'layers', 'lab', 'worker', 'k1'))).rejects.toThrow(/ENOENT/);
  });

  it('pulls a box into a local store with file URLs', async () => {
    const local = openStore(join(dir, 'local'));
    const pulled = await http.pull('boxcar/lab-worker', undefined, { into: local });
    expect(pulled.copied.map((c) => c.url)).toEqual([local.boxUrl('boxcar/lab-worker', published.version, 'libvirt')]);
    expect(local.boxUrl('boxcar/lab-worker', published.version, 'libvirt')).toMatch(/^file:\/\//);
    await local.verifyBox('boxcar/lab-worker', published.version, 'libvirt');
  });
});
