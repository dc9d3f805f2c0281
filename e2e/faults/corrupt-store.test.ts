import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { DEFAULT_CNI_DIR, resolveClusterOrThrow } from '@boxcar/model';
import { clusterPaths, nodeUp, type NodeContext } from '@boxcar/nodes';
import { BOXCAR, processesMentioning } from './helpers.ts';

// Scenario "a corrupted store". The store holds a small lab layer ("master": a real, tiny qcow2) and
// its box, published with the store's own API; each case copies it, damages one file the way disks
// and people do (a flipped bit, a truncation, broken JSON, a schema violation) and reads it back
// through the product: `images list`, `images publish` (copies and verifies boxes), `node up`.

const KEY = 'c0ffee'.padEnd(64, '0');
const BOX = 'boxcar/lab-master';
const cluster = resolveClusterOrThrow({ profile: 'lab' });
let root: string;
let pristine: string;

interface Case {
  store: string;
  url: string;
  state: string;
}

function copyStore(name: string): Case {
  const dir = join(root, name);
  cpSync(pristine, join(dir, 'store'), { recursive: true });
  return { store: join(dir, 'store'), url: pathToFileURL(join(dir, 'store')).href, state: join(dir, 'state') };
}

async function cli(c: Case, args: string[]) {
  const result = await execa(process.execPath, [BOXCAR, ...args], {
    env: { BOXCAR_STORE: c.url, BOXCAR_STATE_DIR: c.state, XDG_CACHE_HOME: join(c.state, 'cache') },
    cwd: root,
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
  });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

function flipBit(file: string): void {
  const bytes = readFileSync(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
  writeFileSync(file, bytes);
}

async function nodeUpError(c: Case): Promise<string> {
  const context: NodeContext = { cluster: { ...cluster, timeouts: { ...cluster.timeouts, sshReadySeconds: 5 } }, store: openStore(c.url), paths: clusterPaths(cluster, c.state), cniDir: DEFAULT_CNI_DIR };
  const error = await nodeUp(context, 'cni-master1').then(
    () => undefined,
    (failure: Error) => failure,
  );
  expect(error, 'node up must fail').toBeInstanceOf(Error);
  return error!.message;
}

/** Nothing booted: no process mentions the case's files, no provider state was created. */
async function expectNothingBooted(c: Case): Promise<void> {
  expect(await processesMentioning(join(c.store, '..'))).toEqual([]);
  expect(existsSync(join(c.state, cluster.name, 'qemu'))).toBe(false);
  expect(existsSync(join(c.state, cluster.name, 'nodes'))).toBe(false);
}

const catalog = (c: Case) => join(c.store, 'boxes', 'boxcar', 'lab-master', 'metadata.json');
const disk = (c: Case) => join(c.store, 'layers', 'lab', 'master', KEY, 'disk.qcow2');
const layerJson = (c: Case) => join(c.store, 'layers', 'lab', 'master', KEY, 'layer.json');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'boxcar-faults-corrupt-'));
  pristine = join(root, 'pristine');
  const staging = join(root, 'staging');
  mkdirSync(staging);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(staging, 'disk.qcow2'), '64M']);
  const store = openStore(pristine);
  await store.publishLayer('lab', 'master', KEY, staging, { note: 'fault tests: a tiny stand-in for the baked master disk' });
  await execa('tar', ['-cf', join(root, 'libvirt.box'), '-C', staging, 'disk.qcow2']);
  await store.publishBox({ boxName: BOX, description: 'fault tests', provider: 'libvirt', boxFile: join(root, 'libvirt.box'), key: KEY, layer: 'master', profile: 'lab' });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('scenario 5: a corrupted store fails on read, naming the file, and boots nothing', () => {
  it('the untouched store lists its box (the cases below start from it)', async () => {
    const listed = await cli(copyStore('untouched'), ['images', 'list', '--json']);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((box: { name: string }) => box.name)).toEqual([BOX]);
  });

  it('catalog that is not JSON any more (truncated): images list and node up fail naming metadata.json', async () => {
    const c = copyStore('catalog-truncated');
    truncateSync(catalog(c), 40);
    const listed = await cli(c, ['images', 'list']);
    expect(listed.exitCode).toBe(1);
    expect(listed.stderr).toContain(`invalid catalog ${catalog(c)}`);
    expect(await nodeUpError(c)).toContain(`invalid catalog ${catalog(c)}`);
    const up = await cli(c, ['node', 'up', 'cni-master1', '--profile', 'lab']);
    expect(up.exitCode).toBe(1);
    expect(up.stderr).toContain(catalog(c));
    await expectNothingBooted(c);
  });

  it('catalog that breaks the schema (checksum not hex): both fail naming the file and the field', async () => {
    const c = copyStore('catalog-schema');
    const text = readFileSync(catalog(c), 'utf8').replace(/"checksum": "[0-9a-f]{64}"/, '"checksum": "not-a-digest"');
    writeFileSync(catalog(c), text);
    const listed = await cli(c, ['images', 'list']);
    expect(listed.exitCode).toBe(1);
    expect(listed.stderr).toContain(`invalid catalog ${catalog(c)}: versions[0].providers[0].checksum must be 64 lowercase hex digits`);
    expect(await nodeUpError(c)).toContain(`invalid catalog ${catalog(c)}: versions[0].providers[0].checksum`);
    await expectNothingBooted(c);
  });

  it('a bit flipped in the layer disk that node up boots from: node up fails naming the disk', async () => {
    const c = copyStore('disk-bitflip');
    flipBit(disk(c));
    expect(await nodeUpError(c)).toMatch(new RegExp(`corrupted ${disk(c)}: sha256 [0-9a-f]{64}, .*layer\\.json says`));
    const up = await cli(c, ['node', 'up', 'cni-master1', '--profile', 'lab']);
    expect(up.exitCode).toBe(1);
    expect(up.stderr).toContain(`corrupted ${disk(c)}`);
    await expectNothingBooted(c);
  });

  it('the layer disk truncated: node up fails naming the disk and the sizes', async () => {
    const c = copyStore('disk-truncated');
    truncateSync(disk(c), 4096);
    expect(await nodeUpError(c)).toMatch(new RegExp(`corrupted ${disk(c)}: 4096 bytes, .*says \\d+ \\(truncated or overwritten\\)`));
    await expectNothingBooted(c);
  });

  it('layer.json that is not JSON: node up fails naming it', async () => {
    const c = copyStore('layer-json');
    writeFileSync(layerJson(c), '{"profile": "lab", ');
    expect(await nodeUpError(c)).toContain(`invalid layer manifest ${layerJson(c)}`);
    await expectNothingBooted(c);
  });

  for (const damage of ['bit flip', 'truncation'] as const) {
    it(`a box file damaged (${damage}): copying it out fails naming the file, and the target gets nothing`, async () => {
      const c = copyStore(`box-${damage.replace(' ', '-')}`);
      const boxFile = join(c.store, 'boxes', 'boxcar', 'lab-master', readFileSync(catalog(c), 'utf8').match(/"version": "([^"]+)"/)![1]!, 'libvirt.box');
      if (damage === 'bit flip') flipBit(boxFile);
      else truncateSync(boxFile, 1000);
      const target = join(c.store, '..', 'team-store');
      const copied = await cli(c, ['images', 'publish', '--to', pathToFileURL(target).href]);
      expect(copied.exitCode).toBe(1);
      expect(copied.stderr).toContain(`corrupted ${boxFile}`);
      expect(copied.stderr).toMatch(damage === 'bit flip' ? /sha256 [0-9a-f]{64}, catalog .* says [0-9a-f]{64}/ : /1000 bytes, catalog .* says \d+ \(truncated or overwritten\)/);
      expect(existsSync(join(target, 'boxes', 'boxcar', 'lab-master', 'metadata.json'))).toBe(false);
      // `images list` reads catalogs only; box bytes are verified by whatever reads them.
      expect((await cli(c, ['images', 'list'])).exitCode).toBe(0);
    });
  }
});
