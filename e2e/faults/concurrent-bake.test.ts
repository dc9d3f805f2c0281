import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bakeJson, boxcar, doubleEvents, killGroup, makeWorld, prepublishBase, PROFILE, removeWorld, startBoxcar, verifyStore, waitFor, workDirs, type BakeJson, type CliResult, type World } from './helpers.ts';

// Scenario "two bakes on one store at the same time". Packer is the TEST DOUBLE
// fixtures/packer-double. The first bake's Packer waits at "Waiting for SSH" of layer "node" until
// the test opens a gate, so the two bakes overlap the same way on a busy machine as on an idle one.

const BAKE = ['images', 'bake', '--profile', PROFILE, '--json'];

function gated(world: World): { env: Record<string, string>; open: () => void } {
  const file = join(world.root, 'gate');
  return {
    env: { PACKER_DOUBLE: JSON.stringify({ node: { gate: { step: 'Waiting for SSH', file } } }) },
    open: () => writeFileSync(file, ''),
  };
}

/** The first bake, held inside Packer for "node" until the gate opens; the CLI's stderr as it comes. */
async function firstBakeHeld(world: World, gateEnv: Record<string, string>) {
  const cli = startBoxcar(world, BAKE, gateEnv);
  await waitFor('the first bake to reach the gate', () => doubleEvents(world).some((event) => event.event === 'gate'), 60_000);
  return { cli, pid: cli.pid };
}

const asResult = (ended: { exitCode?: number; stdout: unknown; stderr: unknown }): CliResult => ({ exitCode: ended.exitCode, stdout: String(ended.stdout), stderr: String(ended.stderr), seconds: 0 });

function boxVersions(json: BakeJson): Record<string, string> {
  return Object.fromEntries((json.result?.built ?? []).flatMap((built) => (built.box ? [[built.box.name, built.box.version]] : [])));
}

describe('scenario 3a: two bakes on one machine (one cache) and one store', () => {
  let world: World;
  let pid: number | undefined;
  let first: CliResult;
  let second: CliResult;

  beforeAll(async () => {
    world = makeWorld();
    await prepublishBase(world);
    const gate = gated(world);
    const held = await firstBakeHeld(world, gate.env);
    pid = held.pid;
    const secondCli = startBoxcar(world, BAKE);
    let secondErr = '';
    secondCli.stderr?.on('data', (chunk: Buffer) => (secondErr += chunk.toString()));
    await waitFor('the second bake to wait for the first', () => secondErr.includes('[node] waiting for pid'), 60_000);
    gate.open();
    [first, second] = (await Promise.all([held.cli, secondCli])).map(asResult) as [CliResult, CliResult];
  });
  afterAll(() => {
    killGroup(pid);
    removeWorld(world);
  });

  it('both succeed', () => {
    expect(first.exitCode, first.stderr).toBe(0);
    expect(second.exitCode, second.stderr).toBe(0);
  });

  it('the second waits for the first, says so on stderr, and finds the layer cached', () => {
    expect(bakeJson(second).plan.layers.find((layer) => layer.layer === 'node')?.status).toBe('build');
    expect(second.stderr).toMatch(new RegExp(`\\[node\\] waiting for pid ${pid} on \\S+ \\(since [^)]+\\), which bakes this layer \\(lock .*\\.lock\\)`));
    expect(second.stderr).toContain('[node] published meanwhile by another bake: cached');
    expect(bakeJson(second).result?.cached).toContain('node');
  });

  it('Packer ran once per layer', () => {
    const starts = doubleEvents(world).filter((event) => event.role === 'build' && event.event === 'start');
    expect(starts.map((event) => event.layer).sort()).toEqual(['master', 'node', 'worker']);
  });

  it('the store ends whole with each box version once, and no work dir is left', async () => {
    const checked = await verifyStore(world.storeUrl);
    expect(Object.values(checked.boxes).map((versions) => versions.length)).toEqual([1, 1]);
    expect(checked.layers.map((layer) => layer.split('/')[0]).sort()).toEqual(['base', 'master', 'node', 'worker']);
    expect(workDirs(world)).toEqual([]);
  });
});

describe('scenario 3b: two machines (separate caches) sharing one store', () => {
  let world: World;
  let pid: number | undefined;
  let first: CliResult;
  let second: CliResult;

  beforeAll(async () => {
    world = makeWorld();
    await prepublishBase(world);
    const gate = gated(world);
    const held = await firstBakeHeld(world, gate.env);
    pid = held.pid;
    // The other machine bakes and publishes "node" while the first is still inside Packer for it.
    const secondRun = boxcar(world, BAKE, { XDG_CACHE_HOME: join(world.root, 'other-machine-cache') });
    await waitFor('the other machine to publish node', () => doubleEvents(world).some((event) => event.role === 'build' && event.layer === 'node' && event.event === 'exit'), 60_000);
    gate.open();
    [first, second] = [asResult(await held.cli), await secondRun];
  });
  afterAll(() => {
    killGroup(pid);
    removeWorld(world);
  });

  it('both succeed and report the same box versions', () => {
    expect(first.exitCode, first.stderr).toBe(0);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(boxVersions(bakeJson(second))).toEqual(boxVersions(bakeJson(first)));
  });

  it('the store ends whole, each content key published once', async () => {
    const checked = await verifyStore(world.storeUrl);
    expect(Object.values(checked.boxes).map((versions) => versions.length)).toEqual([1, 1]);
    expect(checked.layers.map((layer) => layer.split('/')[0]).sort()).toEqual(['base', 'master', 'node', 'worker']);
  });
});
