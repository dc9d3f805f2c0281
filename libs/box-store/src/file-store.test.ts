import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from './catalog.ts';
import { openStore } from './store.ts';
import type { BoxStore, PublishBoxRequest } from './types.ts';
import { sha256Hex } from '@boxcar/kit';
import { makeTempDir, randomFile, snapshotTree } from './testing/fixtures.ts';

let dir: string;
let cleanup: () => Promise<void>;
let root: string;
let store: BoxStore;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir('store'));
  root = join(dir, 'store');
  store = openStore(pathToFileURL(root).href);
  await mkdir(join(dir, 'src'));
});
afterEach(() => cleanup());

const D1 = new Date('2026-11-28T09:00:00Z');
const D2 = new Date('2026-11-29T09:00:00Z');

async function box(name: string, size = 32 * 1024): Promise<string> {
  return randomFile(join(dir, 'src', name), size);
}

function request(boxFile: string, key: string, extra: Partial<PublishBoxRequest> = {}): PublishBoxRequest {
  return { boxName: 'boxcar/lab-worker', description: 'lab worker', provider: 'libvirt', boxFile, key, layer: 'worker', profile: 'lab', date: D1, ...extra };
}

const catalogFile = (name = 'boxcar/lab-worker'): string => join(root, 'boxes', name, 'metadata.json');
const boxFileOf = (version: string, provider = 'libvirt', name = 'boxcar/lab-worker'): string => join(root, 'boxes', name, version, `${provider}.box`);
const rawCatalog = async (name?: string): Promise<Catalog> => JSON.parse(await readFile(catalogFile(name), 'utf8')) as Catalog;

async function tempLeftovers(): Promise<string[]> {
  return Object.keys(await snapshotTree(root)).filter((p) => p.split('/').some((s) => s.startsWith('.tmp-')) || p === '.lock');
}

describe('publishBox', () => {
  it('writes the box and a Vagrant catalog with an absolute file URL and its sha256', async () => {
    const source = await box('a.box');
    const bytes = await readFile(source);
    const result = await store.publishBox(request(source, 'key-a', { versionDescription: 'first' }));

    const path = boxFileOf('1.20261128.0');
    const url = pathToFileURL(path).href;
    expect(result).toEqual({ version: '1.20261128.0', url, sha256: sha256Hex(bytes), size: bytes.length, created: true });
    expect(await readFile(path)).toEqual(bytes);
    expect(fileURLToPath(url)).toBe(path);
    expect(await rawCatalog()).toEqual({
      name: 'boxcar/lab-worker',
      description: 'lab worker',
      versions: [
        {
          version: '1.20261128.0',
          status: 'active',
          description: 'first',
          providers: [{ name: 'libvirt', url, checksum_type: 'sha256', checksum: sha256Hex(bytes) }],
          boxcar: { key: 'key-a', layer: 'worker', profile: 'lab', createdAt: D1.toISOString(), sizes: { libvirt: bytes.length } },
        },
      ],
    });
    expect(store.catalogUrl('boxcar/lab-worker')).toBe(pathToFileURL(catalogFile()).href);
    expect(JSON.parse(await readFile(join(root, 'index.json'), 'utf8'))).toEqual({ boxes: ['boxcar/lab-worker'], layers: {} });
    expect(await tempLeftovers()).toEqual([]);
  });

  it('numbers versions per day, finds them by key, and reuses a version only for the same key', async () => {
    const v1 = await store.publishBox(request(await box('1.box'), 'k1'));
    const v2 = await store.publishBox(request(await box('2.box'), 'k2'));
    const again = await store.publishBox(request(await box('1-again.box'), 'k1'));
    const v3 = await store.publishBox(request(await box('3.box'), 'k3', { date: D2 }));
    const qemu = await store.publishBox(request(await box('3q.box'), 'k3', { provider: 'qemu', date: D2 }));

    expect([v1.version, v2.version, v3.version]).toEqual(['1.20261128.0', '1.20261128.1', '1.20261129.0']);
    expect(again).toMatchObject({ version: '1.20261128.0', created: false, sha256: v1.sha256 });
    expect(qemu).toMatchObject({ version: '1.20261129.0', created: true });

    const found = await store.findBoxVersionByKey('boxcar/lab-worker', 'k3');
    expect(found).toMatchObject({ version: '1.20261129.0', key: 'k3', layer: 'worker', profile: 'lab' });
    expect(found?.providers.map((p) => [p.name, p.checksum])).toEqual([
      ['libvirt', v3.sha256],
      ['qemu', qemu.sha256],
    ]);
    expect(await store.findBoxVersionByKey('boxcar/lab-worker', 'nope')).toBeUndefined();
    expect(await store.findBoxVersionByKey('boxcar/other', 'k1')).toBeUndefined();

    const [listed] = await store.listBoxes();
    expect(listed?.versions.map((v) => [v.version, v.key, v.providers.length])).toEqual([
      ['1.20261128.0', 'k1', 1],
      ['1.20261128.1', 'k2', 1],
      ['1.20261129.0', 'k3', 2],
    ]);
    expect(listed?.versions[0]?.providers[0]).toEqual({ name: 'libvirt', size: 32 * 1024, checksum: v1.sha256, url: v1.url });
  });

  it('gives concurrent publishes distinct versions and keeps the catalog valid', async () => {
    const files = await Promise.all([0, 1, 2, 3].map((i) => box(`c${i}.box`)));
    const fast = openStore(pathToFileURL(root).href, { lock: { pollMs: 5 } });
    const results = await Promise.all(files.map((f, i) => fast.publishBox(request(f, `key-${i}`))));
    expect(results.map((r) => r.version).sort()).toEqual(['1.20261128.0', '1.20261128.1', '1.20261128.2', '1.20261128.3']);
    const catalog = await store.readCatalog('boxcar/lab-worker');
    expect(catalog.versions.map((v) => v.boxcar.key).sort()).toEqual(['key-0', 'key-1', 'key-2', 'key-3']);
    for (const r of results) expect(sha256Hex(await readFile(boxFileOf(r.version)))).toBe(r.sha256);
  });

  it('rejects bad arguments naming the field', async () => {
    const source = await box('x.box');
    await expect(store.publishBox(request(source, 'k', { boxName: 'lab-worker' }))).rejects.toThrow(/boxName must be "<org>\/<name>".*got "lab-worker"/);
    await expect(store.publishBox(request(source, '../k'))).rejects.toThrow(/key must be letters, digits/);
    await expect(store.publishBox(request(source, 'k', { provider: 'Libvirt' }))).rejects.toThrow(/provider must be a Vagrant provider name/);
    await expect(store.publishBox(request(join(dir, 'missing.box'), 'k'))).rejects.toThrow(/boxFile .*missing\.box: ENOENT/);
  });
});

describe('reading verifies every box', () => {
  it('detects a flipped bit and a truncated box, naming the file', async () => {
    const v = await store.publishBox(request(await box('a.box'), 'k1'));
    const path = boxFileOf(v.version);
    expect(await store.verifyBox('boxcar/lab-worker', v.version, 'libvirt')).toEqual({ location: path, sha256: v.sha256, size: v.size });

    const bytes = await readFile(path);
    bytes[1000] = (bytes[1000] as number) ^ 0x01;
    await writeFile(path, bytes);
    const flipped = new RegExp(`corrupted ${path}: sha256 [0-9a-f]{64}, catalog ${catalogFile()} says ${v.sha256}`);
    await expect(store.verifyBox('boxcar/lab-worker', v.version, 'libvirt')).rejects.toThrow(flipped);
    const dest = join(dir, 'fetched');
    await expect(store.fetchBox('boxcar/lab-worker', v.version, 'libvirt', dest)).rejects.toThrow(flipped);
    expect(await readdir(dest)).toEqual([]);
    const stream = await store.openBox('boxcar/lab-worker', v.version, 'libvirt');
    await expect((async () => { for await (const _ of stream) void _; })()).rejects.toThrow(flipped);

    await truncate(path, 1000);
    await expect(store.verifyBox('boxcar/lab-worker', v.version, 'libvirt')).rejects.toThrow(
      `corrupted ${path}: 1000 bytes, catalog ${catalogFile()} says ${v.size} (truncated or overwritten)`,
    );
  });

  it('fetches a verified copy', async () => {
    const v = await store.publishBox(request(await box('a.box'), 'k1'));
    const copy = await store.fetchBox('boxcar/lab-worker', v.version, 'libvirt', join(dir, 'out'));
    expect(copy).toBe(join(dir, 'out', `boxcar-lab-worker-${v.version}-libvirt.box`));
    expect(sha256Hex(await readFile(copy))).toBe(v.sha256);
  });

  it('reports an invalid catalog naming the file, and does not publish over it', async () => {
    await store.publishBox(request(await box('a.box'), 'k1'));
    await writeFile(catalogFile(), '{"name": "boxcar/lab-worker", "versions": [');
    const named = new RegExp(`^invalid catalog ${catalogFile()}:\\d+:\\d+: invalid JSON`);
    await expect(store.readCatalog('boxcar/lab-worker')).rejects.toThrow(named);
    await expect(store.listBoxes()).rejects.toThrow(named);
    await expect(store.publishBox(request(await box('b.box'), 'k2'))).rejects.toThrow(named);

    const valid = { name: 'boxcar/lab-worker', description: '', versions: [{ version: '1.20261128.0', providers: [], boxcar: {} }] };
    await writeFile(catalogFile(), JSON.stringify(valid));
    await expect(store.readCatalog('boxcar/lab-worker')).rejects.toThrow(`invalid catalog ${catalogFile()}: versions[0].providers must list at least one provider`);
  });

  it('says which box or version is missing', async () => {
    await expect(store.readCatalog('boxcar/none')).rejects.toThrow(`box boxcar/none is not in store ${store.url} (no ${catalogFile('boxcar/none')})`);
    const v = await store.publishBox(request(await box('a.box'), 'k1'));
    await expect(store.verifyBox('boxcar/lab-worker', '1.20991231.0', 'libvirt')).rejects.toThrow(/has no version 1\.20991231\.0 in .*metadata\.json/);
    await expect(store.verifyBox('boxcar/lab-worker', v.version, 'qemu')).rejects.toThrow(/has no qemu box in/);
    await rm(boxFileOf(v.version));
    await expect(store.verifyBox('boxcar/lab-worker', v.version, 'libvirt')).rejects.toThrow(`${boxFileOf(v.version)} is missing although catalog ${catalogFile()} lists it`);
  });
});

describe('a failed publish leaves the store unchanged', () => {
  for (const stage of ['box-copied', 'box-renamed'] as const) {
    it(`when it fails after ${stage}`, async () => {
      await store.publishBox(request(await box('a.box'), 'k1'));
      const before = await snapshotTree(root);
      const failing = openStore(pathToFileURL(root).href, {
        onPublishStage: (s) => {
          if (s === stage) throw new Error(`injected failure at ${s}`);
        },
      });
      // A new version, and a new provider in an existing version (whose directory must stay).
      await expect(failing.publishBox(request(await box('b.box'), 'k2'))).rejects.toThrow(`injected failure at ${stage}`);
      await expect(failing.publishBox(request(await box('c.box'), 'k1', { provider: 'qemu' }))).rejects.toThrow(`injected failure at ${stage}`);
      expect(await snapshotTree(root)).toEqual(before);
    });
  }

  it('when the source box cannot be read', async () => {
    await store.publishBox(request(await box('a.box'), 'k1'));
    const before = await snapshotTree(root);
    const source = await box('b.box');
    const vanishing = openStore(pathToFileURL(root).href, {
      onPublishStage: async () => {
        throw new Error('not reached');
      },
    });
    await rm(source);
    await expect(vanishing.publishBox(request(source, 'k2'))).rejects.toThrow(/boxFile .*b\.box: ENOENT/);
    await mkdir(source);
    await expect(vanishing.publishBox(request(source, 'k2'))).rejects.toThrow(/is not a regular file/);
    expect(await snapshotTree(root)).toEqual(before);
  });
});

describe('layers', () => {
  async function layerSource(name: string): Promise<string> {
    const src = join(dir, 'src', name);
    await mkdir(join(src, 'extra'), { recursive: true });
    await randomFile(join(src, 'disk.qcow2'), 48 * 1024);
    await writeFile(join(src, 'extra', 'notes.txt'), `layer ${name}\n`);
    return src;
  }

  it('publishes a layer atomically with a manifest, and reads it back verified', async () => {
    const src = await layerSource('l1');
    expect(await store.hasLayer('lab', 'base', 'k1')).toBe(false);
    const manifest = await store.publishLayer('lab', 'base', 'k1', src, { packer: '1.6.6' });
    const layerDir = join(root, 'layers', 'lab', 'base', 'k1');
    expect(manifest).toMatchObject({ profile: 'lab', layer: 'base', key: 'k1', meta: { packer: '1.6.6' } });
    expect(manifest.files.map((f) => f.path)).toEqual(['disk.qcow2', 'extra/notes.txt']);
    expect(manifest.files[0]?.sha256).toBe(sha256Hex(await readFile(join(src, 'disk.qcow2'))));
    expect(JSON.parse(await readFile(join(layerDir, 'layer.json'), 'utf8'))).toEqual(manifest);
    expect(await store.hasLayer('lab', 'base', 'k1')).toBe(true);
    expect(await store.layerFiles('lab', 'base', 'k1')).toBe(layerDir);
    expect(await readFile(join(layerDir, 'extra', 'notes.txt'), 'utf8')).toBe('layer l1\n');

    const again = await store.publishLayer('lab', 'base', 'k1', await layerSource('l1b'), {});
    expect(again).toEqual(manifest);
    expect(await store.latestLayer('lab', 'base')).toEqual(manifest);
    await sleep(5);
    const newer = await store.publishLayer('lab', 'base', 'k2', await layerSource('l2'), { n: 2 });
    expect(await store.latestLayer('lab', 'base')).toEqual(newer);
    expect(await store.latestLayer('lab', 'other')).toBeUndefined();
    expect(JSON.parse(await readFile(join(root, 'index.json'), 'utf8'))).toEqual({
      boxes: [],
      layers: { 'lab/base': [{ key: 'k1', createdAt: manifest.createdAt }, { key: 'k2', createdAt: newer.createdAt }] },
    });

    await truncate(join(layerDir, 'disk.qcow2'), 10);
    await expect(store.layerFiles('lab', 'base', 'k1')).rejects.toThrow(
      `corrupted ${join(layerDir, 'disk.qcow2')}: 10 bytes, ${join(layerDir, 'layer.json')} says ${48 * 1024}`,
    );
    await expect(store.layerFiles('lab', 'base', 'k9')).rejects.toThrow(/layer lab\/base with key k9 is not in store/);
  });

  it('leaves nothing behind when a layer publish fails', async () => {
    const failing = openStore(pathToFileURL(root).href, {
      onPublishStage: () => {
        throw new Error('disk full (injected)');
      },
    });
    await expect(failing.publishLayer('lab', 'base', 'k1', await layerSource('l1'), {})).rejects.toThrow('disk full (injected)');
    expect(await snapshotTree(root)).toEqual({ 'layers/': 'dir', 'layers/lab/': 'dir', 'layers/lab/base/': 'dir' });
    await expect(store.publishLayer('lab', 'base', 'k1', join(dir, 'nope'), {})).rejects.toThrow(/srcDir .*nope does not exist/);
  });
});

describe('gc', () => {
  it('keeps the newest N versions per box and the layers they use or that are newest, and removes leftovers', async () => {
    const layerSrc = async (key: string): Promise<string> => {
      const src = join(dir, 'src', `layer-${key}`);
      await mkdir(src);
      await randomFile(join(src, 'disk.qcow2'), 1024);
      return src;
    };
    const keys = ['k1', 'k2', 'k3', 'k4'];
    for (const [i, key] of keys.entries()) {
      await store.publishLayer('lab', 'worker', key, await layerSrc(key), {});
      await sleep(5);
      await store.publishBox(request(await box(`${key}.box`), key, { date: new Date(D1.getTime() + i * 86_400_000) }));
    }
    // k1's box version goes, but the layer of a version that is kept stays even if it is older.
    await store.publishLayer('lab', 'worker', 'k5', await layerSrc('k5'), {});
    const boxDir = join(root, 'boxes', 'boxcar', 'lab-worker');
    await writeFile(join(boxDir, '.tmp-crashed'), 'partial');
    await mkdir(join(boxDir, '1.20200101.0'));
    await mkdir(join(root, 'layers', 'lab', 'worker', '.tmp-crashed'));

    const before = await snapshotTree(root);
    const planned = await store.gc({ keep: 2, dryRun: true });
    expect(await snapshotTree(root)).toEqual(before);

    const removed = await store.gc({ keep: 2 });
    expect(removed).toEqual(planned);
    expect(removed.boxVersions).toEqual([
      { name: 'boxcar/lab-worker', version: '1.20261128.0' },
      { name: 'boxcar/lab-worker', version: '1.20261129.0' },
    ]);
    expect(removed.layers).toEqual([
      { profile: 'lab', layer: 'worker', key: 'k1' },
      { profile: 'lab', layer: 'worker', key: 'k2' },
    ]);
    expect(removed.paths).toEqual(expect.arrayContaining([join(boxDir, '.tmp-crashed'), join(boxDir, '1.20200101.0'), join(root, 'layers', 'lab', 'worker', '.tmp-crashed')]));

    expect((await store.readCatalog('boxcar/lab-worker')).versions.map((v) => v.version)).toEqual(['1.20261130.0', '1.20261201.0']);
    expect((await readdir(boxDir)).sort()).toEqual(['1.20261130.0', '1.20261201.0', 'metadata.json']);
    expect((await readdir(join(root, 'layers', 'lab', 'worker'))).sort()).toEqual(['k3', 'k4', 'k5']);
    await store.verifyBox('boxcar/lab-worker', '1.20261201.0', 'libvirt');

    expect(await store.gc({ keep: 2 })).toEqual({ boxVersions: [], layers: [], kept: [], paths: [] });
    await expect(store.gc({ keep: 0 })).rejects.toThrow('keep must be an integer of at least 1 (got 0)');
    // A version number is never handed out again after gc.
    expect((await store.publishBox(request(await box('k6.box'), 'k6', { date: D1 }))).version).toBe('1.20261201.1');
  });
});

/** A layer "lab/worker/<key>" with two files (one in a subdirectory), published into `into`. */
async function publishWorkerLayer(into: BoxStore, key: string): Promise<string> {
  const src = join(dir, 'src', `layer-${key}`);
  await mkdir(join(src, 'extra'), { recursive: true });
  await randomFile(join(src, 'disk.qcow2'), 48 * 1024);
  await writeFile(join(src, 'extra', 'notes.txt'), `layer ${key}\n`);
  await into.publishLayer('lab', 'worker', key, src, { inputs: { key }, builder: 'qemu' });
  return src;
}

describe('copyTo and pull carry the layers the boxes were baked from', () => {
  const layerJson = (storeRoot: string, key: string): string => join(storeRoot, 'layers', 'lab', 'worker', key, 'layer.json');

  it('copies each box version with its layer and catalog, verified at the target, and the copy is readable alone', async () => {
    await publishWorkerLayer(store, 'k1');
    await publishWorkerLayer(store, 'k2');
    const a = await store.publishBox(request(await box('a.box'), 'k1'));
    const b = await store.publishBox(request(await box('b.box'), 'k2', { date: D2 }));
    const teamRoot = join(dir, 'team');
    const team = openStore(teamRoot);

    const result = await store.copyTo(team);
    expect(result.copied.map((c) => c.version)).toEqual([a.version, b.version]);
    expect(result.layers).toEqual({ copied: [{ profile: 'lab', layer: 'worker', key: 'k1' }, { profile: 'lab', layer: 'worker', key: 'k2' }], present: [], missing: [] });
    // The manifest travels as it is (files, digests, meta, createdAt): caches and readers see the same layer.json.
    for (const key of ['k1', 'k2']) expect(await readFile(layerJson(teamRoot, key), 'utf8')).toBe(await readFile(layerJson(root, key), 'utf8'));
    // What readers of the copy need: the index lists the layers (http readers cannot list directories) ...
    const index = JSON.parse(await readFile(join(teamRoot, 'index.json'), 'utf8')) as { boxes: string[]; layers: Record<string, { key: string }[]> };
    expect(index.boxes).toEqual(['boxcar/lab-worker']);
    expect(index.layers['lab/worker']?.map((l) => l.key).sort()).toEqual(['k1', 'k2']);
    // ... and with the source gone, the copy's boxes and layer files verify on their own.
    await rm(root, { recursive: true });
    const files = await team.layerFiles('lab', 'worker', 'k2');
    expect(files).toBe(join(teamRoot, 'layers', 'lab', 'worker', 'k2'));
    expect(await readFile(join(files, 'extra', 'notes.txt'), 'utf8')).toBe('layer k2\n');
    await team.verifyBox('boxcar/lab-worker', b.version, 'libvirt');
    expect(await snapshotTree(teamRoot).then((tree) => Object.keys(tree).filter((p) => p.includes('.tmp-') || p === '.lock' || p.startsWith('keys')))).toEqual([]);
  });

  it('publishing again finds the layers present and verifies them there; a layer the source lacks is reported missing', async () => {
    await publishWorkerLayer(store, 'k1');
    await store.publishBox(request(await box('a.box'), 'k1'));
    await store.publishBox(request(await box('b.box'), 'k2', { date: D2 }));
    const team = openStore(join(dir, 'team'));
    expect((await store.copyTo(team)).layers).toEqual({ copied: [{ profile: 'lab', layer: 'worker', key: 'k1' }], present: [], missing: [{ profile: 'lab', layer: 'worker', key: 'k2' }] });
    const again = await store.copyTo(team);
    expect(again.layers).toEqual({ copied: [], present: [{ profile: 'lab', layer: 'worker', key: 'k1' }], missing: [{ profile: 'lab', layer: 'worker', key: 'k2' }] });
    expect(again.copied).toEqual([]);
  });

  it('refuses a corrupted layer in the source: nothing of that version reaches the target', async () => {
    await publishWorkerLayer(store, 'k1');
    await store.publishBox(request(await box('a.box'), 'k1'));
    const disk = join(root, 'layers', 'lab', 'worker', 'k1', 'disk.qcow2');
    const bytes = await readFile(disk);
    bytes[100] = (bytes[100] as number) ^ 0x01;
    await writeFile(disk, bytes);
    const teamRoot = join(dir, 'team');
    await expect(store.copyTo(openStore(teamRoot))).rejects.toThrow(`corrupted ${disk}: sha256`);
    // The layer goes first: no layer directory, no box, no catalog, no temp file in the target.
    expect(Object.keys(await snapshotTree(teamRoot)).filter((p) => !p.endsWith('/') && p !== 'index.json')).toEqual([]);
    await writeFile(disk, 'short');
    await expect(store.copyTo(openStore(teamRoot))).rejects.toThrow(`corrupted ${disk}: 5 bytes, ${layerJson(root, 'k1')} says 49152`);
  });

  it('refuses a copy whose layer was damaged at the target, naming the file, instead of taking it for a good one', async () => {
    await publishWorkerLayer(store, 'k1');
    await store.publishBox(request(await box('a.box'), 'k1'));
    const teamRoot = join(dir, 'team');
    const team = openStore(teamRoot);
    await store.copyTo(team);
    const copiedDisk = join(teamRoot, 'layers', 'lab', 'worker', 'k1', 'disk.qcow2');
    const bytes = await readFile(copiedDisk);
    bytes[0] = (bytes[0] as number) ^ 0x80;
    await writeFile(copiedDisk, bytes);
    await expect(store.copyTo(team)).rejects.toThrow(`corrupted ${copiedDisk}: sha256`);
    await expect(team.layerFiles('lab', 'worker', 'k1')).rejects.toThrow(`corrupted ${copiedDisk}: sha256`);
    // A layer of that key with other files in the target is a conflict, never overwritten.
    const otherRoot = join(dir, 'other');
    await publishWorkerLayer(openStore(otherRoot), 'k1');
    await expect(store.copyTo(openStore(otherRoot))).rejects.toThrow(/layer lab\/worker k1 holds other files in .*other.*layer\.json than in .*store.*layer\.json/);
  });

  it('pull copies the chosen version with its layer', async () => {
    await publishWorkerLayer(store, 'k1');
    await publishWorkerLayer(store, 'k2');
    await store.publishBox(request(await box('a.box'), 'k1'));
    const b = await store.publishBox(request(await box('b.box'), 'k2', { date: D2 }));
    const local = openStore(join(dir, 'local'));
    const pulled = await store.pull('boxcar/lab-worker', undefined, { into: local });
    expect(pulled).toMatchObject({ version: b.version, layers: { copied: [{ profile: 'lab', layer: 'worker', key: 'k2' }], present: [], missing: [] } });
    expect(await local.hasLayer('lab', 'worker', 'k1')).toBe(false);
    await local.layerFiles('lab', 'worker', 'k2');
  });
});

describe('a store holds no private key', () => {
  it('refuses to write into a store served to other hosts while it holds the private key older bakes kept there', async () => {
    await publishWorkerLayer(store, 'k1');
    await store.publishBox(request(await box('a.box'), 'k1'));
    expect(Object.keys(await snapshotTree(root)).filter((p) => p.startsWith('keys'))).toEqual([]);
    // What an older boxcar left in a store.
    await mkdir(join(root, 'keys'));
    await writeFile(join(root, 'keys', 'bootstrap_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\n', { mode: 0o600 });
    const message = `store ${root} holds a private key (${join(root, 'keys', 'bootstrap_ed25519')}, the bootstrap key older bakes kept in the store) and is served at http://boxes.lab.example: boxcar never serves a private key; remove ${join(root, 'keys')}`;
    const served = openStore(root, { publicUrl: 'http://boxes.lab.example/' });
    await expect(served.publishBox(request(await box('b.box'), 'k2'))).rejects.toThrow(message);
    await expect(store.copyTo(openStore(join(dir, 'other')))).resolves.toMatchObject({ copied: [expect.anything()] });
    // Copies leave the key behind.
    expect(Object.keys(await snapshotTree(join(dir, 'other'))).filter((p) => p.startsWith('keys'))).toEqual([]);
    await expect(openStore(join(dir, 'other')).copyTo(served)).rejects.toThrow(message);
    await expect(openStore(root, { publicUrl: 'https://boxes.lab.example/' }).publishBox(request(await box('c.box'), 'k3'))).rejects.toThrow(/holds a private key/);
    // Loopback (a test server, the baker's own look) is not serving it to anyone else.
    await openStore(root, { publicUrl: 'http://127.0.0.1:8080/' }).publishBox(request(await box('d.box'), 'k4'));
    await rm(join(root, 'keys'), { recursive: true });
    expect((await served.publishBox(request(await box('b.box'), 'k2'))).created).toBe(true);
  });
});

describe('copyTo and pull', () => {
  it('copies boxes and catalogs with URLs pointing into the target store', async () => {
    const a = await store.publishBox(request(await box('a.box'), 'k1'));
    const b = await store.publishBox(request(await box('b.box'), 'k2', { date: D2 }));
    const sourceCatalog = await readFile(catalogFile(), 'utf8');
    const teamRoot = join(dir, 'team');
    const team = openStore(teamRoot, { publicUrl: 'https://boxes.example.test/team/' });

    const result = await store.copyTo(team);
    const teamBoxUrl = (v: string): string => `https://boxes.example.test/team/boxes/boxcar/lab-worker/${v}/libvirt.box`;
    expect(result.copied.map((c) => [c.version, c.url])).toEqual([
      [a.version, teamBoxUrl(a.version)],
      [b.version, teamBoxUrl(b.version)],
    ]);
    expect(result.present).toEqual([]);
    const copied = JSON.parse(await readFile(join(teamRoot, 'boxes', 'boxcar', 'lab-worker', 'metadata.json'), 'utf8')) as Catalog;
    expect(copied.versions.map((v) => [v.version, v.providers[0]?.url, v.providers[0]?.checksum, v.boxcar.key])).toEqual([
      [a.version, teamBoxUrl(a.version), a.sha256, 'k1'],
      [b.version, teamBoxUrl(b.version), b.sha256, 'k2'],
    ]);
    expect(team.catalogUrl('boxcar/lab-worker')).toBe('https://boxes.example.test/team/boxes/boxcar/lab-worker/metadata.json');
    await team.verifyBox('boxcar/lab-worker', b.version, 'libvirt');
    expect(await readFile(catalogFile(), 'utf8')).toBe(sourceCatalog);

    const again = await store.copyTo(team);
    expect(again.copied).toEqual([]);
    expect(again.present.map((p) => p.version)).toEqual([a.version, b.version]);

    // Pull the newest version into a local store: file URLs of that store.
    const local = openStore(join(dir, 'local'));
    const pulled = await team.pull('boxcar/lab-worker', undefined, { into: local });
    expect(pulled).toMatchObject({ version: b.version, catalogUrl: local.catalogUrl('boxcar/lab-worker') });
    expect((await local.readCatalog('boxcar/lab-worker')).versions.map((v) => [v.version, v.providers[0]?.url])).toEqual([
      [b.version, pathToFileURL(join(dir, 'local', 'boxes', 'boxcar', 'lab-worker', b.version, 'libvirt.box')).href],
    ]);
    await expect(team.pull('boxcar/lab-worker', '1.20000101.0', { into: local })).rejects.toThrow(/has no version 1\.20000101\.0/);
  });

  it('refuses to overwrite a version that holds other content, and does not copy a corrupted box', async () => {
    const a = await store.publishBox(request(await box('a.box'), 'k1'));
    const other = openStore(join(dir, 'other'));
    await other.publishBox(request(await box('x.box'), 'different'));
    await expect(store.copyTo(other)).rejects.toThrow(`box boxcar/lab-worker ${a.version} has key different in ${other.url} but k1 in ${store.url}`);

    const third = openStore(join(dir, 'third'));
    const bytes = await readFile(boxFileOf(a.version));
    bytes[0] = (bytes[0] as number) ^ 0x80;
    await writeFile(boxFileOf(a.version), bytes);
    await expect(store.copyTo(third)).rejects.toThrow(`corrupted ${boxFileOf(a.version)}: sha256`);
    expect(await snapshotTree(join(dir, 'third'))).toEqual({ 'boxes/': 'dir', 'boxes/boxcar/': 'dir', 'boxes/boxcar/lab-worker/': 'dir' });
    await writeFile(boxFileOf(a.version), 'short');
    await expect(store.copyTo(third)).rejects.toThrow(`corrupted ${boxFileOf(a.version)}: 5 bytes`);
  });

  it('pulls into the default store named by BOXCAR_STORE', async () => {
    const v = await store.publishBox(request(await box('a.box'), 'k1'));
    const saved = process.env.BOXCAR_STORE;
    process.env.BOXCAR_STORE = pathToFileURL(join(dir, 'default')).href;
    try {
      const pulled = await store.pull('boxcar/lab-worker');
      expect(pulled.catalogUrl).toBe(pathToFileURL(join(dir, 'default', 'boxes', 'boxcar', 'lab-worker', 'metadata.json')).href);
      expect((await stat(join(dir, 'default', 'boxes', 'boxcar', 'lab-worker', v.version, 'libvirt.box'))).size).toBe(v.size);
    } finally {
      if (saved === undefined) delete process.env.BOXCAR_STORE;
      else process.env.BOXCAR_STORE = saved;
    }
  });
});
