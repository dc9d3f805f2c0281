import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BakeResult } from '@boxcar/bake';
import { PackerBuildError } from '@boxcar/packer';
import {
  bakeJson,
  boxcar,
  doubleEvents,
  killGroup,
  makeWorld,
  prepublishBase,
  PROFILE,
  removeWorld,
  startBoxcar,
  storeContents,
  tempEntries,
  waitFor,
  workDirs,
  type World,
} from './helpers.ts';
import { startLibraryBake, type LibraryBake } from './library-bake.ts';

// Scenario "interrupted bake". Packer is the TEST DOUBLE fixtures/packer-double: it hangs at "Waiting
// for SSH" after it has written the layer's disk into the work dir, and records every signal it gets.
// Like Packer 1.6.6 it is a wrapper process (panicwrap) around the build process: the wrapper ignores
// SIGINT and forwards SIGTERM (checked against the real packer here). `keepOutput` makes it leave the
// disk behind when cancelled (as `-on-error=abort` or a crashed Packer would), so the bake itself
// must clean up.

const BAKE = ['images', 'bake', '--profile', PROFILE, '--json', '--jobs', '1'];
const HANG_NODE = { node: { hang: 'Waiting for SSH', keepOutput: true } };

async function packerHangs(world: World): Promise<void> {
  await waitFor('the packer double to hang', () => doubleEvents(world).some((event) => event.event === 'hang'), 60_000);
  const [work] = workDirs(world);
  expect(existsSync(join(world.cache, 'boxcar', 'work', PROFILE, work!, 'output', 'disk.qcow2'))).toBe(true);
}

/** Pids of the packer double's processes (the wrapper and the build process). */
function packerPids(world: World): number[] {
  return [...new Set(doubleEvents(world).filter((event) => event.event === 'start').map((event) => event.pid))];
}

function endPacker(world: World): void {
  for (const pid of packerPids(world)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The bake library, aborted once Packer hangs in "node" (the CLI's share of Ctrl-C or SIGTERM). */
async function abortedWhileHung(world: World): Promise<LibraryBake> {
  const controller = new AbortController();
  const bake = await startLibraryBake(world, HANG_NODE, controller.signal);
  await packerHangs(world);
  controller.abort();
  return bake;
}

/** What a terminal does on Ctrl-C once Packer hangs in "node": SIGINT to the CLI's process group; the CLI's result. */
async function ctrlCWhileHung(world: World, entry: 'source' | 'bin') {
  await prepublishBase(world);
  const cli = startBoxcar(world, BAKE, { PACKER_DOUBLE: JSON.stringify(HANG_NODE) }, entry);
  await packerHangs(world);
  process.kill(-cli.pid!, 'SIGINT');
  return cli;
}

/** Nothing but the pre-published base in the store, and the store whole. */
async function expectOnlyBase(world: World) {
  expect(await storeContents(world)).toEqual({ versionsPerBox: [], layers: ['base'] });
  expect(existsSync(join(world.storeDir, 'boxes'))).toBe(false);
  expect(tempEntries(world.storeDir)).toEqual([]);
  expect(existsSync(join(world.storeDir, '.lock'))).toBe(false);
}

describe('scenario 2a: Ctrl-C while a layer bakes (the bake library: abort, and SIGINT to every process of the group)', () => {
  let world: World;
  let result: BakeResult;

  beforeAll(async () => {
    world = makeWorld();
    const bake = await abortedWhileHung(world);
    // What a terminal does: SIGINT to the foreground group. The CLI's share of it is the abort.
    for (const pid of packerPids(world)) process.kill(pid, 'SIGINT');
    result = await bake.result;
  });
  afterAll(() => {
    endPacker(world);
    removeWorld(world);
  });

  it('reports the layer as interrupted, and starts nothing after it', () => {
    expect(result.failed?.layer).toBe('node');
    expect(result.failed?.error).toBeInstanceOf(PackerBuildError);
    expect((result.failed?.error as PackerBuildError).interrupted).toBe(true);
    expect(result.skipped).toEqual(['master', 'worker']);
    expect(result.built).toEqual([]);
  });

  it('the packer build process got SIGINT and cancelled', () => {
    const build = doubleEvents(world).filter((event) => event.role === 'build');
    expect(build.filter((event) => event.event === 'signal').map((event) => event.signal)).toContain('SIGINT');
    expect(build.at(-1)).toMatchObject({ event: 'exit', code: 1 });
    const [log] = readdirSync(join(world.buildDir, 'logs', PROFILE));
    expect(readFileSync(join(world.buildDir, 'logs', PROFILE, log!), 'utf8')).toContain('Cleanly cancelled builds after being interrupted.');
  });

  it('removes the work dir, although Packer left its disk in it', () => {
    expect(workDirs(world)).toEqual([]);
  });

  it('leaves no partial layer, box or catalog entry in the store', async () => {
    await expectOnlyBase(world);
  });
});

describe('scenario 2b: interrupt without a terminal (the bake library: abort only, as on SIGTERM to the CLI, a CI cancel or timeout(1))', () => {
  let world: World;
  let outcome: BakeResult | 'still running';

  beforeAll(async () => {
    world = makeWorld();
    const bake = await abortedWhileHung(world);
    outcome = await Promise.race([bake.result, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
  });
  afterAll(() => {
    endPacker(world);
    removeWorld(world);
  });

  it('stops Packer within 10 s: its build process gets a signal and the bake ends', () => {
    const signalled = doubleEvents(world).some((event) => event.role === 'build' && event.event === 'signal');
    expect({ packerSignalled: signalled, bake: outcome === 'still running' ? outcome : 'ended' }).toEqual({ packerSignalled: true, bake: 'ended' });
  });
});

describe('scenario 2c: Ctrl-C on the CLI (`npm run boxcar`: one node process, SIGINT to its process group)', () => {
  let world: World;
  let result: { exitCode?: number; signal?: string; stdout: string; stderr: string };

  beforeAll(async () => {
    world = makeWorld();
    const ended = await ctrlCWhileHung(world, 'source');
    result = { exitCode: ended.exitCode, signal: ended.signal, stdout: String(ended.stdout), stderr: String(ended.stderr) };
  });
  afterAll(() => removeWorld(world));

  it('exits 130 once Packer has stopped, with the work dir removed and nothing half-published', async () => {
    expect(result.stderr).toContain('interrupted: stopping packer');
    expect({ exitCode: result.exitCode, killedBy: result.signal, workDirs: workDirs(world) }).toEqual({ exitCode: 130, killedBy: undefined, workDirs: [] });
    expect(bakeJson({ ...result, seconds: 0 }).result?.failed?.layer).toBe('node');
    await expectOnlyBase(world);
  });
});

describe('scenario 2d: Ctrl-C through the installed entry point apps/cli/bin/boxcar.mjs', () => {
  let world: World;
  let stateAtExit: { exitCode?: number; killedBy?: string; packerRunning: boolean; workDirs: string[] };

  beforeAll(async () => {
    world = makeWorld();
    const ended = await ctrlCWhileHung(world, 'bin');
    const last = doubleEvents(world).filter((event) => event.role === 'build').at(-1);
    stateAtExit = { exitCode: ended.exitCode, killedBy: ended.signal, packerRunning: last?.event !== 'exit', workDirs: workDirs(world) };
  });
  afterAll(async () => {
    await waitFor('the bake behind the entry point to end', () => doubleEvents(world).filter((e) => e.role === 'wrapper').at(-1)?.event === 'exit', 20_000).catch(() => undefined);
    removeWorld(world);
  });

  it('returns only when the bake has stopped and cleaned up, with exit code 130', () => {
    // The shell prompt comes back when this process exits: Packer must be stopped and the work dir gone by then.
    expect(stateAtExit).toEqual({ exitCode: 130, killedBy: undefined, packerRunning: false, workDirs: [] });
  });
});

describe('scenario 2e: SIGKILL of the whole bake while it publishes, then the next bake', () => {
  let world: World;
  let leftovers: { storeTemps: string[]; workDirs: string[] };
  let next: Awaited<ReturnType<typeof boxcar>>;

  beforeAll(async () => {
    world = makeWorld();
    await prepublishBase(world);
    // A big disk keeps the publish of "master" going long enough to be killed in the middle of it.
    const cli = startBoxcar(world, BAKE, { PACKER_DOUBLE: JSON.stringify({ master: { diskBytes: 96 * 2 ** 20 } }) });
    const masterDir = join(world.storeDir, 'layers', PROFILE, 'master');
    await waitFor('master being copied into the store', () => existsSync(masterDir) && readdirSync(masterDir).some((name) => name.startsWith('.tmp-')), 60_000);
    killGroup(cli.pid);
    await cli;
    leftovers = { storeTemps: tempEntries(world.storeDir), workDirs: workDirs(world) };
    next = await boxcar(world, BAKE);
  });
  afterAll(() => removeWorld(world));

  it('the kill leaves a temp copy in the store and the work dir (what the next bake must handle)', () => {
    expect(leftovers.storeTemps.some((path) => path.startsWith(`layers/${PROFILE}/master/.tmp-`))).toBe(true);
    expect(leftovers.workDirs.some((name) => name.startsWith('master-'))).toBe(true);
  });

  it('the next bake removes the leftovers, says so, and bakes only what is missing', () => {
    expect(next.exitCode, next.stderr).toBe(0);
    const json = bakeJson(next);
    expect(json.plan.layers.map((layer) => [layer.layer, layer.status])).toEqual([
      ['base', 'cached'],
      ['node', 'cached'],
      ['master', 'build'],
      ['worker', 'build'],
    ]);
    expect(json.result?.built.map((built) => built.layer)).toEqual(['master', 'worker']);
    expect(next.stderr).toMatch(/removed leftovers of an interrupted bake from the store: .*layers\/faults\/master\/\.tmp-/);
    expect(next.stderr).toMatch(/\[master\] removing .*master-[0-9a-f]{12}, left by a bake that was killed/);
  });

  it('the store ends whole, each box once, and no work dir is left', async () => {
    expect((await storeContents(world)).versionsPerBox).toEqual([1, 1]);
    expect(workDirs(world)).toEqual([]);
  });
});
