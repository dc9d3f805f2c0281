// References: gc keeps what a cluster's nodes run on, says which cluster keeps it, and lets it go once
// the references are dropped; references written by several processes at once, under the store lock.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { thisHost } from './refs.ts';
import { openStore } from './store.ts';
import type { BoxStore, LayerRef } from './types.ts';
import { makeTempDir, randomFile } from './testing/fixtures.ts';
import type { StaticServer } from './testing/static-server.ts';
import { serveDirectory } from './testing/static-server.ts';

const packageDir = join(import.meta.dirname, '..');
const child = join(import.meta.dirname, 'testing', 'ref-child.ts');
const NAME = 'boxcar/lab-worker';

let dir: string;
let cleanup: () => Promise<void>;
let root: string;
let store: BoxStore;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir('refs'));
  root = join(dir, 'store');
  store = openStore(pathToFileURL(root).href);
});
afterEach(() => cleanup());

/** A layer lab/worker with this key and the box version baked from it (one day per key). */
async function bake(key: string, day: number): Promise<string> {
  const src = join(dir, 'src', key);
  await mkdir(src, { recursive: true });
  await randomFile(join(src, 'disk.qcow2'), 16 * 1024);
  await store.publishLayer('lab', 'worker', key, src, {});
  // layer.json's createdAt orders the layers: keep them apart.
  await sleep(5);
  const box = await randomFile(join(dir, 'src', `${key}.box`), 16 * 1024);
  const date = new Date(Date.UTC(2026, 10, day, 12));
  return (await store.publishBox({ boxName: NAME, description: 'worker', provider: 'libvirt', boxFile: box, key, layer: 'worker', profile: 'lab', date })).version;
}

const ref = (node: string, key: string, version: string, cluster = 'lab') => ({ cluster, node, profile: 'lab', layer: 'worker', key, box: { name: NAME, version } });
const exists = (path: string) => stat(path).then(() => true, () => false);
const layerPath = (key: string) => join(root, 'layers', 'lab', 'worker', key);
const versionPath = (version: string) => join(root, 'boxes', NAME, version);

describe('thisHost', () => {
  it("is the host name and a hash of the machine id, so that two machines of one name sharing a store stay apart", () => {
    const id = existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8').trim() : '';
    const name = hostname().replace(/[^A-Za-z0-9._-]/g, '_');
    expect(thisHost()).toBe(id ? `${name}-${createHash('sha256').update(id).digest('hex').slice(0, 8)}` : name);
  });
});

describe('references and gc', () => {
  it('keeps a referenced layer and the box versions built from it, says which cluster keeps them, and lets them go once dropped', async () => {
    const old = await bake('k1', 28);
    const newest = await bake('k2', 30);
    const recorded = await store.addRef(ref('cni-worker1', 'k1', old));
    await store.addRef(ref('cni-worker2', 'k1', old));
    expect(recorded).toMatchObject({ cluster: 'lab', node: 'cni-worker1', key: 'k1', host: thisHost() });
    expect(JSON.parse(await readFile(join(root, 'refs', thisHost(), 'lab', 'cni-worker1.json'), 'utf8'))).toEqual(recorded);

    const dry = await store.gc({ keep: 1, dryRun: true });
    const result = await store.gc({ keep: 1 });
    for (const outcome of [dry, result]) {
      expect(outcome.boxVersions).toEqual([]);
      expect(outcome.layers).toEqual([]);
      expect(outcome.kept.map((k) => [k.box ? `${k.box.version} of ${k.box.name}` : `layer ${k.key}`, k.reason])).toEqual([
        [`${old} of ${NAME}`, 'used by cluster lab (cni-worker1, cni-worker2)'],
        ['layer k1', 'used by cluster lab (cni-worker1, cni-worker2)'],
      ]);
    }
    expect((await store.readCatalog(NAME)).versions.map((v) => v.version)).toEqual([old, newest]);
    expect(await exists(layerPath('k1'))).toBe(true);
    expect(await exists(versionPath(old))).toBe(true);
    await store.verifyBox(NAME, old, 'libvirt');
    await store.layerFiles('lab', 'worker', 'k1');

    // One node down: the other still keeps it.
    expect((await store.dropRefs({ cluster: 'lab', node: 'cni-worker1' })).map((r) => r.node)).toEqual(['cni-worker1']);
    expect((await store.gc({ keep: 1 })).kept[0]?.reason).toBe('used by cluster lab (cni-worker2)');

    expect((await store.dropRefs({ cluster: 'lab' })).map((r) => r.node)).toEqual(['cni-worker2']);
    expect(await store.listRefs()).toEqual([]);
    const after = await store.gc({ keep: 1 });
    expect(after.kept).toEqual([]);
    expect(after.boxVersions).toEqual([{ name: NAME, version: old }]);
    expect(after.layers).toEqual([{ profile: 'lab', layer: 'worker', key: 'k1' }]);
    expect(await exists(layerPath('k1'))).toBe(false);
    expect(await exists(versionPath(old))).toBe(false);
    expect(await exists(join(root, 'refs', thisHost(), 'lab'))).toBe(false);
  });

  it('names another host, drops only this host’s references unless told which, and refuses a layer gc has removed', async () => {
    const old = await bake('k1', 28);
    await bake('k2', 30);
    const theirs: LayerRef = { ...ref('cni-worker1', 'k1', old), host: 'build-host-2', createdAt: new Date().toISOString() };
    await mkdir(join(root, 'refs', 'build-host-2', 'lab'), { recursive: true });
    await writeFile(join(root, 'refs', 'build-host-2', 'lab', 'cni-worker1.json'), JSON.stringify(theirs));

    expect((await store.gc({ keep: 1 })).kept[0]?.reason).toBe('used by cluster lab on build-host-2 (cni-worker1)');
    expect(await store.dropRefs({ cluster: 'lab' })).toEqual([]);
    expect(await store.listRefs()).toEqual([theirs]);
    expect(await store.dropRefs({ cluster: 'lab', host: 'build-host-2' })).toEqual([theirs]);
    await store.gc({ keep: 1 });

    await expect(store.addRef(ref('cni-worker1', 'k1', old))).rejects.toThrow(/layer lab\/worker with key k1 is not in store/);
    await expect(store.addRef(ref('../x', 'k2', old))).rejects.toThrow(/node must be letters, digits/);
    expect(await store.listRefs()).toEqual([]);
  });

  it('an unreadable reference stops gc (it names the file) and is removed by dropping its cluster', async () => {
    const old = await bake('k1', 28);
    await bake('k2', 30);
    await store.addRef(ref('cni-worker1', 'k1', old));
    const file = join(root, 'refs', thisHost(), 'lab', 'cni-worker1.json');
    await writeFile(file, '{"cluster": ');
    await expect(store.gc({ keep: 1 })).rejects.toThrow(`invalid reference ${file}`);
    expect(await exists(layerPath('k1'))).toBe(true);
    expect(await store.dropRefs({ cluster: 'lab' })).toEqual([]);
    expect((await store.gc({ keep: 1 })).layers).toEqual([{ profile: 'lab', layer: 'worker', key: 'k1' }]);
  });

  it('references written by separate processes while others publish and gc are all kept, and so is their layer', async () => {
    const old = await bake('k1', 28);
    await bake('k2', 30);
    await store.addRef(ref('cni-master1', 'k1', old));
    const nodes = ['cni-worker1', 'cni-worker2', 'cni-worker3', 'cni-worker4'];
    const storeUrl = pathToFileURL(root).href;
    let running = true;
    const children = Promise.all(nodes.map((node) => execa(process.execPath, ['--import', 'tsx', child, storeUrl, 'lab', node, 'k1', old], { cwd: packageDir })))
      .finally(() => (running = false));
    // Publishes and gcs contend for the same lock meanwhile: no reference is lost between them.
    const collections = [];
    for (let day = 1; running; day += 1) {
      await bake(`k-new${day}`, day);
      collections.push(await store.gc({ keep: 1 }));
    }
    const written = (await children).map((run) => JSON.parse(run.stdout) as LayerRef);
    expect(written.map((r) => r.node)).toEqual(nodes);
    expect(collections.length).toBeGreaterThan(0);
    expect(collections.flatMap((c) => c.layers).map((l) => l.key)).not.toContain('k1');
    const all = ['cni-master1', ...nodes];
    expect((await store.listRefs()).map((r) => r.node)).toEqual(all);
    expect((await store.gc({ keep: 1 })).kept.map((k) => k.reason)).toEqual(Array(2).fill(`used by cluster lab (${all.join(', ')})`));
    expect(await exists(layerPath('k1'))).toBe(true);
    expect(await exists(join(root, '.lock'))).toBe(false);
  });
});

describe('references of an http store', () => {
  let server: StaticServer;
  afterEach(() => server?.close());

  it('are kept in the local cache, and a cached layer nodes run on is never refreshed from under them', async () => {
    await bake('k1', 28);
    server = await serveDirectory(root);
    const cacheDir = join(dir, 'cache');
    const http = openStore(server.url, { cacheDir });
    const local = await http.layerFiles('lab', 'worker', 'k1');
    await http.addRef(ref('cni-worker1', 'k1', '1.20261128.0'));
    expect(await exists(join(cacheDir, 'refs', thisHost(), 'lab', 'cni-worker1.json'))).toBe(true);
    expect(await exists(join(root, 'refs'))).toBe(false);
    expect((await http.listRefs()).map((r) => r.node)).toEqual(['cni-worker1']);
    await expect(http.addRef(ref('cni-worker2', 'k9', '1.20261128.0'))).rejects.toThrow(/layer lab\/worker with key k9 is not in store/);

    // The store's layer.json changes under the same key (a rebuilt store): the cached copy stays while used.
    const manifestFile = join(root, 'layers', 'lab', 'worker', 'k1', 'layer.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { meta: Record<string, unknown> };
    await writeFile(manifestFile, JSON.stringify({ ...manifest, meta: { rebuilt: true } }));
    await expect(http.layerFiles('lab', 'worker', 'k1')).rejects.toThrow(
      /differs from .*layer\.json, but it is used by cluster lab \(cni-worker1\): take those nodes down first/,
    );
    expect(await exists(join(local, 'disk.qcow2'))).toBe(true);

    expect((await http.dropRefs({ cluster: 'lab' })).map((r) => r.node)).toEqual(['cni-worker1']);
    expect(await http.layerFiles('lab', 'worker', 'k1')).toBe(local);
    expect(JSON.parse(await readFile(join(local, 'layer.json'), 'utf8'))).toMatchObject({ meta: { rebuilt: true } });
  });
});
