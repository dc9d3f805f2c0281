import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BakeResult } from '@boxcar/bake';
import { bakeJson, boxcar, doubleEvents, makeWorld, prepublishBase, PROFILE, removeWorld, storeContents, verifyStore, waitFor, workDirs, type CliResult, type World } from './helpers.ts';
import { startLibraryBake } from './library-bake.ts';

// Scenario "artifact mirror down, slow or wrong": the "node" layer of the fault-test profile needs one
// artifact, and its lock entry points at an http server on 127.0.0.1 that this test runs. The
// artifacts library's own tests cover the fetcher; these go through the bake. Packer is the TEST
// DOUBLE fixtures/packer-double (it fails, like Packer, when a file provisioner's source is missing).

const ID = 'deb-fault-test';
const CONTENT = Buffer.alloc(64 * 1024, 'artifact bytes ');
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');
const FILE = 'fault-test_1.0_amd64.deb';

let server: Server;
let port: number;
let stalled: import('node:http').ServerResponse[] = [];
let stalledBytes = 0;

beforeAll(async () => {
  server = createServer((request, response) => {
    const mode = request.url!.split('/')[1];
    if (mode === 'wrong') {
      response.writeHead(200, { 'content-length': CONTENT.length });
      response.end(Buffer.alloc(CONTENT.length, 'other bytes '));
    } else if (mode === 'slow') {
      // 16 pieces, 150 ms apart: about 2.4 s for 64 KiB.
      response.writeHead(200, { 'content-length': CONTENT.length });
      let piece = 0;
      const timer = setInterval(() => {
        response.write(CONTENT.subarray(piece * 4096, (piece + 1) * 4096));
        piece += 1;
        if (piece === 16) {
          clearInterval(timer);
          response.end();
        }
      }, 150);
    } else if (mode === 'stall') {
      response.writeHead(200, { 'content-length': CONTENT.length });
      response.write(CONTENT.subarray(0, CONTENT.length / 2));
      stalledBytes += CONTENT.length / 2;
      stalled.push(response);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const response of stalled) response.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function worldFor(url: string): World {
  return makeWorld({ artifacts: [{ id: ID, url, sha256: SHA256, size: CONTENT.length }] });
}

/** The CLI bake of `world`, with the base published first so that it starts at "node". */
async function bakeWithBase(world: World): Promise<CliResult> {
  await prepublishBase(world);
  return boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json']);
}

const cached = (world: World) => join(world.cache, 'boxcar', 'artifacts', 'sha256', SHA256, FILE);
const packerRan = (world: World) => doubleEvents(world).some((event) => event.role === 'build');

async function expectNothingPublished(world: World) {
  expect(await storeContents(world)).toEqual({ versionsPerBox: [], layers: ['base'] });
  expect(workDirs(world)).toEqual([]);
}

describe('scenario 7a: the mirror is down (connection refused)', () => {
  let world: World;
  let bake: CliResult;

  beforeAll(async () => {
    // A port that was just free: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    world = worldFor(`http://127.0.0.1:${deadPort}/pool/${FILE}`);
    bake = await bakeWithBase(world);
  });
  afterAll(() => removeWorld(world));

  it('fails with exit 1 and an error naming the layer, the artifact and the address', () => {
    expect(bake.exitCode).toBe(1);
    expect(bakeJson(bake).result?.failed).toMatchObject({ layer: 'node', error: expect.stringContaining(`artifact "${ID}"`) });
    expect(bake.stderr).toMatch(new RegExp(`bake failed: layer node: artifact "${ID}": download from http://127\\.0\\.0\\.1:\\d+/pool/${FILE} failed after 5 attempts: .*ECONNREFUSED`));
    expect(bakeJson(bake).result?.skipped.sort()).toEqual(['master', 'worker']);
  });

  it('puts no file into the cache, runs no Packer and publishes nothing', async () => {
    expect(existsSync(cached(world))).toBe(false);
    expect(packerRan(world)).toBe(false);
    await expectNothingPublished(world);
  });
});

describe('scenario 7b: the mirror serves the wrong bytes', () => {
  let world: World;
  let bake: CliResult;

  beforeAll(async () => {
    world = worldFor(`http://127.0.0.1:${port}/wrong/${FILE}`);
    bake = await bakeWithBase(world);
  });
  afterAll(() => removeWorld(world));

  it('fails with exit 1, naming the artifact, the source and both digests', () => {
    expect(bake.exitCode).toBe(1);
    expect(bake.stderr).toMatch(new RegExp(`bake failed: layer node: artifact "${ID}" from http://127\\.0\\.0\\.1:${port}/wrong/${FILE}: sha256 mismatch: expected ${SHA256}, got [0-9a-f]{64}; the download was discarded`));
  });

  it('keeps not even a partial download, runs no Packer and publishes nothing', async () => {
    const dir = join(world.cache, 'boxcar', 'artifacts', 'sha256', SHA256);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect(packerRan(world)).toBe(false);
    await expectNothingPublished(world);
  });
});

describe('scenario 7c: a slow mirror (64 KiB over about 2.4 s)', () => {
  let world: World;
  let bake: CliResult;

  beforeAll(async () => {
    world = worldFor(`http://127.0.0.1:${port}/slow/${FILE}`);
    bake = await bakeWithBase(world);
  });
  afterAll(() => removeWorld(world));

  it('is waited for: the artifact arrives verified, and the bake completes', async () => {
    expect(bake.exitCode, bake.stderr).toBe(0);
    expect(createHash('sha256').update(readFileSync(cached(world))).digest('hex')).toBe(SHA256);
    expect(bakeJson(bake).result?.built.map((built) => built.layer).sort()).toEqual(['master', 'node', 'worker']);
    await verifyStore(world.storeUrl);
  });
});

describe('scenario 7d: a mirror that stalls, and the bake is interrupted (the bake library, aborted)', () => {
  let world: World;
  let result: BakeResult;

  beforeAll(async () => {
    world = worldFor(`http://127.0.0.1:${port}/stall/${FILE}`);
    const controller = new AbortController();
    const before = stalledBytes;
    const bake = await startLibraryBake(world, {}, controller.signal);
    await waitFor('the mirror to stall mid-file', () => stalledBytes > before, 30_000);
    controller.abort();
    result = await bake.result;
  });
  afterAll(() => removeWorld(world));

  it('reports the interrupted download as the failure of the layer that needs it', () => {
    expect(result.failed?.layer).toBe('node');
    expect(result.failed?.error.name).toBe('AbortError');
    expect(result.skipped.sort()).toEqual(['master', 'worker']);
    expect(result.built).toEqual([]);
  });

  it('leaves no file at the cache path (a .partial is kept only to resume), runs no Packer, publishes nothing', async () => {
    expect(existsSync(cached(world))).toBe(false);
    const dir = join(world.cache, 'boxcar', 'artifacts', 'sha256', SHA256);
    expect((existsSync(dir) ? readdirSync(dir) : []).filter((name) => !name.endsWith('.partial'))).toEqual([]);
    expect(packerRan(world)).toBe(false);
    await expectNothingPublished(world);
  });
});
