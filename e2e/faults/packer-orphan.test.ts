import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processIdentity } from '@boxcar/kit';
import { bakeJson, boxcar, doubleEvents, makeWorld, prepublishBase, PROFILE, removeWorld, startBoxcar, waitFor, type CliResult, type World } from './helpers.ts';

// Scenario "a bake killed with SIGKILL leaves its packer behind". Packer is the TEST DOUBLE
// fixtures/packer-double (a wrapper process around a build process, like Packer 1.6.6). The CLI is
// killed alone (SIGKILL to its pid, not its process group), as an OOM killer or `kill -9 <pid>` does;
// packer must then stop by itself, and a bake that takes over the layer lock of a killed bake must
// end a packer still recorded there before it bakes.

const BAKE = ['images', 'bake', '--profile', PROFILE, '--json', '--jobs', '1'];

/** Alive and not a zombie (a zombie has ended; only its parent has not collected it yet). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return !/^State:\s+Z/m.test(status);
}

function lockDir(world: World, layer: string, key: string): string {
  return join(world.cache, 'boxcar', 'work', PROFILE, '.locks', `${layer}-${key.slice(0, 12)}`);
}

function packerPids(world: World): number[] {
  return [...new Set(doubleEvents(world).filter((event) => event.event === 'start').map((event) => event.pid))];
}

function endPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

describe('scenario 2f: SIGKILL of the CLI alone while packer halts the VM', () => {
  let world: World;
  let keys: Record<string, string>;
  let recorded: { pid: number; startTicks?: number };
  let pids: number[];
  let stillRunning: number[];

  beforeAll(async () => {
    world = makeWorld();
    ({ keys } = await prepublishBase(world));
    const cli = startBoxcar(world, BAKE, { PACKER_DOUBLE: JSON.stringify({ node: { hang: 'Gracefully halting' } }) });
    await waitFor('the packer double to hang', () => doubleEvents(world).some((event) => event.event === 'hang'), 60_000);
    const record = join(lockDir(world, 'node', keys.node!), 'packer.json');
    recorded = JSON.parse(await waitFor('the layer lock to record packer', () => existsSync(record) && readFileSync(record, 'utf8'), 10_000)) as typeof recorded;
    pids = packerPids(world);
    process.kill(cli.pid!, 'SIGKILL');
    await cli;
    await waitFor('packer to end by itself', () => pids.every((pid) => !running(pid)), 10_000).catch(() => undefined);
    stillRunning = pids.filter(running);
  });
  afterAll(() => {
    endPids(pids ?? []);
    removeWorld(world);
  });

  it('the layer lock records the packer the bake started (pid and start time)', () => {
    const wrapper = doubleEvents(world).find((event) => event.role === 'wrapper' && event.event === 'start');
    expect(recorded.pid).toBe(wrapper?.pid);
    expect(Number.isSafeInteger(recorded.startTicks)).toBe(true);
  });

  it('packer gets SIGTERM when the CLI dies, cancels, and its processes end within seconds', () => {
    expect(stillRunning).toEqual([]);
    const events = doubleEvents(world);
    // Once or a few times: as the killed CLI's threads exit one by one, each passes the parent-death signal on.
    const signals = events.filter((event) => event.role === 'wrapper' && event.event === 'signal').map((event) => event.signal);
    expect(signals.length).toBeGreaterThan(0);
    expect(new Set(signals)).toEqual(new Set(['SIGTERM']));
    expect(events.filter((event) => event.role === 'build').at(-1)).toMatchObject({ event: 'exit', code: 1 });
  });
});

/** A stand-in for an orphaned packer: records the SIGTERM it gets, then takes a moment to clean up. */
function startOrphan(world: World, ignoreTerm = false): ResultPromise {
  const script = `
    const { appendFileSync } = require('node:fs');
    process.on('SIGTERM', () => {
      appendFileSync(${JSON.stringify(world.record)}, JSON.stringify({ time: Date.now(), pid: process.pid, role: 'orphan', event: 'signal', signal: 'SIGTERM' }) + '\\n');
      if (!${ignoreTerm}) setTimeout(() => process.exit(0), 300);
    });
    setInterval(() => undefined, 1000);
    appendFileSync(${JSON.stringify(world.record)}, JSON.stringify({ time: Date.now(), pid: process.pid, role: 'orphan', event: 'start' }) + '\\n');`;
  return execa(process.execPath, ['-e', script], { reject: false, stdin: 'ignore' });
}

/** The layer lock of a bake that was killed: its holder is gone, and `record` names its packer. */
async function plantStaleLock(world: World, layer: string, key: string, deadPid: number, record: object): Promise<void> {
  const dir = lockDir(world, layer, key);
  mkdirSync(dir, { recursive: true });
  // As a bake of this machine writes it (host, boot, pid namespace), its pid gone.
  writeFileSync(join(dir, '.lock'), JSON.stringify({ ...(await processIdentity(process.pid)), startTicks: undefined, pid: deadPid, createdAt: new Date(Date.now() - 600_000).toISOString(), purpose: `bake layer ${layer}`, token: 'a1b2c3d4e5f6' }));
  writeFileSync(join(dir, 'packer.json'), `${JSON.stringify(record)}\n`);
}

describe('scenario 4c: a stale layer lock whose packer still runs', () => {
  let world: World;
  let orphan: ResultPromise;
  let impostor: ResultPromise;
  let bake: CliResult;

  beforeAll(async () => {
    world = makeWorld();
    const { keys } = await prepublishBase(world);
    const deadPid = Number((await execa('sh', ['-c', 'echo $$'])).stdout);
    orphan = startOrphan(world);
    await waitFor('the orphan to start', () => doubleEvents(world).some((event) => (event.role as string) === 'orphan'), 10_000);
    await plantStaleLock(world, 'node', keys.node!, deadPid, await processIdentity(orphan.pid!));
    // A live process under a recorded pid, but started at another time: the recorded packer's pid was reused.
    impostor = startOrphan(world, true);
    await waitFor('the second process to start', () => doubleEvents(world).filter((event) => (event.role as string) === 'orphan').length === 2, 10_000);
    const identity = await processIdentity(impostor.pid!);
    await plantStaleLock(world, 'master', keys.master!, deadPid, { ...identity, startTicks: identity.startTicks! - 1 });
    bake = await boxcar(world, BAKE);
  });
  afterAll(() => {
    endPids([orphan?.pid, impostor?.pid].filter((pid): pid is number => pid !== undefined));
    removeWorld(world);
  });

  it('the bake takes the lock over, ends the orphan packer first, says so, and bakes', () => {
    expect(bake.exitCode, bake.stderr).toBe(0);
    expect(bakeJson(bake).result?.built.map((built) => built.layer)).toEqual(['node', 'master', 'worker']);
    expect(bake.stderr).toContain(`[node] packer pid ${orphan.pid}, started by a bake that was killed, still runs: ending it first`);
    expect(bake.stderr).toContain(`[node] packer pid ${orphan.pid} has ended`);
    const events = doubleEvents(world);
    const terminated = events.find((event) => event.pid === orphan.pid && event.event === 'signal');
    const nodeStart = events.find((event) => event.role === 'build' && event.event === 'start' && event.layer === 'node');
    expect(terminated?.signal).toBe('SIGTERM');
    expect(nodeStart!.time).toBeGreaterThan(terminated!.time);
    expect(running(orphan.pid!)).toBe(false);
  });

  it('never signals a process that only has the recorded pid (another start time)', () => {
    expect(doubleEvents(world).some((event) => event.pid === impostor.pid && event.event === 'signal')).toBe(false);
    expect(running(impostor.pid!)).toBe(true);
    expect(bake.stderr).not.toContain(`packer pid ${impostor.pid}`);
  });

  it('no record of a packer is left once the bake is done', () => {
    expect(existsSync(join(lockDir(world, 'node', bakeJson(bake).plan.layers[1]!.key), 'packer.json'))).toBe(false);
  });
});
