import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bakeJson, boxcar, doubleEvents, makeWorld, prepublishBase, PROFILE, removeWorld, startBoxcar, storeContents, waitFor, workDirs, type BakeJson, type CliResult, type World } from './helpers.ts';

// Scenario "two bakes on one store at the same time". Packer is the TEST DOUBLE
// fixtures/packer-double. The first bake's Packer waits at "Waiting for SSH" of layer "node" until
// the test opens a gate, so the two bakes overlap the same way on a busy machine as on an idle one.

const BAKE = ['images', 'bake', '--profile', PROFILE, '--json'];

const asResult = (ended: { exitCode?: number; stdout: unknown; stderr: unknown }): CliResult => ({ exitCode: ended.exitCode, stdout: String(ended.stdout), stderr: String(ended.stderr), seconds: 0 });

interface SecondBake {
  /** What the second bake has done (waited, published) when the first is let go. */
  what: string;
  reached: () => boolean;
  result: Promise<CliResult>;
}

/**
 * Two overlapping bakes of a world with the base published: the first is held inside Packer for
 * "node" until the one `startSecond` starts has reached its point; then both run to their end.
 */
async function overlappingBakes(world: World, startSecond: () => SecondBake): Promise<{ firstPid: number | undefined; first: CliResult; second: CliResult }> {
  await prepublishBase(world);
  const gate = join(world.root, 'gate');
  const cli = startBoxcar(world, BAKE, { PACKER_DOUBLE: JSON.stringify({ node: { gate: { step: 'Waiting for SSH', file: gate } } }) });
  await waitFor('the first bake to reach the gate', () => doubleEvents(world).some((event) => event.event === 'gate'), 60_000);
  const second = startSecond();
  await waitFor(second.what, second.reached, 60_000);
  writeFileSync(gate, '');
  const [first, secondResult] = await Promise.all([cli, second.result]);
  return { firstPid: cli.pid, first: asResult(first), second: secondResult };
}

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
    ({ firstPid: pid, first, second } = await overlappingBakes(world, () => {
      const cli = startBoxcar(world, BAKE);
      let stderr = '';
      cli.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      return { what: 'the second bake to wait for the first', reached: () => stderr.includes('[node] waiting for pid'), result: cli.then(asResult) };
    }));
  });
  afterAll(() => removeWorld(world));

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
    expect(await storeContents(world)).toEqual({ versionsPerBox: [1, 1], layers: ['base', 'master', 'node', 'worker'] });
    expect(workDirs(world)).toEqual([]);
  });
});

describe('scenario 3b: two machines (separate caches) sharing one store', () => {
  let world: World;
  let first: CliResult;
  let second: CliResult;

  beforeAll(async () => {
    world = makeWorld();
    // The other machine bakes and publishes "node" while the first is still inside Packer for it.
    ({ first, second } = await overlappingBakes(world, () => ({
      what: 'the other machine to publish node',
      reached: () => doubleEvents(world).some((event) => event.role === 'build' && event.layer === 'node' && event.event === 'exit'),
      result: boxcar(world, BAKE, { XDG_CACHE_HOME: join(world.root, 'other-machine-cache') }),
    })));
  });
  afterAll(() => removeWorld(world));

  it('both succeed and report the same box versions', () => {
    expect(first.exitCode, first.stderr).toBe(0);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(boxVersions(bakeJson(second))).toEqual(boxVersions(bakeJson(first)));
  });

  it('the store ends whole, each content key published once', async () => {
    expect(await storeContents(world)).toEqual({ versionsPerBox: [1, 1], layers: ['base', 'master', 'node', 'worker'] });
  });
});
