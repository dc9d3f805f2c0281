import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { processIdentity } from '@boxcar/kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bakeJson, boxcar, makeWorld, prepublishBase, PROFILE, removeWorld, verifyStore, type CliResult, type World } from './helpers.ts';

// Scenario "a store lock left behind". The lock is written as the store writes it (JSON: pid, host,
// createdAt, purpose, token); the bake is the product CLI with Packer as the TEST DOUBLE
// fixtures/packer-double.

const BAKE = ['images', 'bake', '--profile', PROFILE, '--json'];

/** The lock as a baker of this machine writes it (its identity: host, boot, pid namespace), with `pid`. */
async function writeLock(world: World, pid: number, createdAt: string): Promise<string> {
  const lock = join(world.storeDir, '.lock');
  writeFileSync(lock, JSON.stringify({ ...(await processIdentity(process.pid)), startTicks: undefined, pid, createdAt, purpose: 'publish boxcar/faults-master libvirt (key 0123456789ab)', token: 'a1b2c3d4e5f6' }));
  return lock;
}

describe('scenario 4a: a stale lock of a killed baker (dead pid on this host)', () => {
  let world: World;
  let deadPid: number;
  let bake: CliResult;

  beforeAll(async () => {
    world = makeWorld();
    await prepublishBase(world);
    // A pid that existed and is gone now: the baker that was killed.
    const killed = await execa('sh', ['-c', 'echo $$']);
    deadPid = Number(killed.stdout);
    await writeLock(world, deadPid, new Date(Date.now() - 3_600_000).toISOString());
    bake = await boxcar(world, BAKE);
  });
  afterAll(() => removeWorld(world));

  it('is taken over: the bake publishes every layer and box', async () => {
    expect(bake.exitCode, bake.stderr).toBe(0);
    expect(bakeJson(bake).result?.built.map((built) => built.layer).sort()).toEqual(['master', 'node', 'worker']);
    const checked = await verifyStore(world.storeUrl);
    expect(Object.keys(checked.boxes).sort()).toEqual(['boxcar/faults-master', 'boxcar/faults-worker']);
  });

  it('no lock is left once the bake is done', () => {
    expect(existsSync(join(world.storeDir, '.lock'))).toBe(false);
    expect(existsSync(join(world.storeDir, '.lock.takeover'))).toBe(false);
  });
});

describe('scenario 4b: a lock held by a live process on this host', () => {
  let world: World;
  let bake: CliResult;
  let holder: ReturnType<typeof execa>;
  let waitedWhileHeld: boolean;

  beforeAll(async () => {
    world = makeWorld();
    await prepublishBase(world);
    holder = execa('sleep', ['600'], { reject: false });
    const lock = await writeLock(world, holder.pid!, new Date().toISOString());
    const running = boxcar(world, BAKE);
    const early = await Promise.race([running, new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 4_000))]);
    waitedWhileHeld = early === 'waiting';
    // The holder is done with the store: its lock goes, as the store's own release removes it.
    rmSync(lock);
    bake = await running;
  });
  afterAll(() => {
    holder.kill('SIGKILL');
    removeWorld(world);
  });

  it('the bake waits while the holder lives, naming it on stderr', () => {
    expect(waitedWhileHeld).toBe(true);
    expect(bake.stderr).toMatch(new RegExp(`waiting for the store lock, held by pid ${holder.pid} on ${hostname()} since \\S+ for "publish boxcar/faults-master`));
  });

  it('and bakes once the lock is released', async () => {
    expect(bake.exitCode, bake.stderr).toBe(0);
    await verifyStore(world.storeUrl);
  });
});
