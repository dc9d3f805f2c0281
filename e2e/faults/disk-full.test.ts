import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type BoxStore } from '@boxcar/box-store';
import { bakeJson, boxcar, makeWorld, prepublishBase, PROFILE, removeWorld, snapshot, tempEntries, verifyStore, type World } from './helpers.ts';

// Scenario "disk full while publishing": the store lives on a 20 MiB tmpfs this test mounts (root is
// needed), and something bigger than the free space is published into it. Packer, in the bake case,
// is the TEST DOUBLE fixtures/packer-double, told to write a 30 MiB disk for "master".

const MiB = 2 ** 20;
let mountPoint: string;
let mounted = false;

function freeBytes(): number {
  const stats = statfsSync(mountPoint);
  return stats.bavail * stats.bsize;
}

function fileOf(dir: string, name: string, bytes: number, fill: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), Buffer.alloc(bytes, fill));
  return join(dir, name);
}

beforeAll(async () => {
  mountPoint = mkdtempSync(join(tmpdir(), 'boxcar-faults-tmpfs-'));
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0755', 'tmpfs', mountPoint]);
  mounted = true;
});
afterAll(async () => {
  if (mounted) await execa('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe('scenario 6a: publishing into a full store (the store API)', () => {
  let scratch: string;
  let store: BoxStore;
  let before: Record<string, string>;
  let freeBefore: number;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'boxcar-faults-full-'));
    store = openStore(pathToFileURL(join(mountPoint, 'api-store')).href);
    fileOf(join(scratch, 'small-layer'), 'disk.qcow2', MiB, 'n');
    await store.publishLayer(PROFILE, 'node', 'a'.repeat(64), join(scratch, 'small-layer'), { note: 'existing' });
    await store.publishBox({ boxName: 'boxcar/faults-worker', description: 'existing', provider: 'libvirt', boxFile: fileOf(scratch, 'small.box', MiB, 'w'), key: 'a'.repeat(64), layer: 'node', profile: PROFILE });
    before = snapshot(join(mountPoint, 'api-store'));
    freeBefore = freeBytes();
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('a box bigger than the free space: a clear error, and the store as it was', async () => {
    const big = fileOf(scratch, 'big.box', 30 * MiB, 'B');
    await expect(
      store.publishBox({ boxName: 'boxcar/faults-worker', description: 'too big', provider: 'libvirt', boxFile: big, key: 'b'.repeat(64), layer: 'node', profile: PROFILE }),
    ).rejects.toThrow(/no space left on device/);
    expect(snapshot(join(mountPoint, 'api-store'))).toEqual(before);
    expect(freeBytes()).toBe(freeBefore);
  });

  it('a layer bigger than the free space: a clear error, and the store as it was', async () => {
    fileOf(join(scratch, 'big-layer'), 'disk.qcow2', 30 * MiB, 'L');
    await expect(store.publishLayer(PROFILE, 'master', 'c'.repeat(64), join(scratch, 'big-layer'), { note: 'too big' })).rejects.toThrow(/no space left on device/);
    expect(snapshot(join(mountPoint, 'api-store'))).toEqual(before);
    expect(freeBytes()).toBe(freeBefore);
  });
});

describe('scenario 6b: a bake whose layer does not fit into the store', () => {
  let world: World;
  let bake: Awaited<ReturnType<typeof boxcar>>;
  let before: Record<string, string>;

  beforeAll(async () => {
    world = makeWorld({ storeDir: join(mountPoint, 'bake-store') });
    await prepublishBase(world);
    const first = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json', '--only', 'node']);
    expect(first.exitCode, first.stderr).toBe(0);
    before = snapshot(world.storeDir);
    bake = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json', '--jobs', '1', '--only', 'master'], {
      PACKER_DOUBLE: JSON.stringify({ master: { diskBytes: 30 * MiB } }),
    });
  });
  afterAll(() => removeWorld(world));

  it('fails with exit 1, naming the layer, the store and the cause', () => {
    expect(bake.exitCode, bake.stderr).toBe(1);
    expect(bakeJson(bake).result?.failed?.layer).toBe('master');
    expect(bake.stderr).toMatch(new RegExp(`bake failed: layer master: .*${world.storeUrl}.*no space left on device`));
  });

  it('leaves the store as it was before the bake (no layer, box, catalog entry or temp file)', async () => {
    const after = snapshot(world.storeDir);
    // The only write a failed bake may leave is the store's index, rewritten with the same content.
    expect(after).toEqual(before);
    expect(tempEntries(world.storeDir)).toEqual([]);
    await verifyStore(world.storeUrl);
  });
});
