import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processIdentity, type LockHolder } from '@boxcar/kit';
import { withStoreLock } from './lock.ts';
import { makeTempDir } from './testing/fixtures.ts';

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir: root, cleanup } = await makeTempDir('lock')));
afterEach(() => cleanup());

/** The pid of a process that has exited: what a crashed publisher leaves in its lock. */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid as number;
}

const lockFile = (): string => join(root, '.lock');
const writeLock = (info: LockHolder): Promise<void> => writeFile(lockFile(), JSON.stringify(info));

describe('withStoreLock', () => {
  it('holds <root>/.lock with pid, host, createdAt and purpose while fn runs, and removes it after', async () => {
    const seen = await withStoreLock(root, 'publish test', async () => JSON.parse(await readFile(lockFile(), 'utf8')) as LockHolder);
    expect(seen).toMatchObject({ pid: process.pid, host: hostname(), purpose: 'publish test' });
    expect(Date.parse(seen.createdAt)).not.toBeNaN();
    await expect(readFile(lockFile())).rejects.toThrow(/ENOENT/);
  });

  it('releases the lock when fn throws', async () => {
    await expect(withStoreLock(root, 'x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(readFile(lockFile())).rejects.toThrow(/ENOENT/);
  });

  // A crashed holder of this machine: its identity (host, boot, pid namespace) with a pid that is gone.
  it('takes over a lock left by a dead process on this host', async () => {
    await writeLock({ ...(await processIdentity(process.pid)), pid: await deadPid(), createdAt: '2026-11-28T00:00:00Z', purpose: 'crashed publish' });
    const waits: unknown[] = [];
    const ran = await withStoreLock(root, 'after crash', async () => 'ran', { onWait: (h) => waits.push(h), timeoutMs: 5_000 });
    expect(ran).toBe('ran');
    expect(waits).toEqual([]);
  });

  it('lets exactly one of several waiters take a stale lock at a time', async () => {
    await writeLock({ ...(await processIdentity(process.pid)), pid: await deadPid(), createdAt: '2026-11-28T00:00:00Z', purpose: 'crashed publish' });
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      // Staggered, so that some waiters judge the lock stale while another is replacing it.
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        await sleep(i * 3);
        return withStoreLock(
          root,
          `waiter ${i}`,
          async () => {
            inside++;
            most = Math.max(most, inside);
            await sleep(20);
            order.push(i);
            inside--;
          },
          { pollMs: 5, timeoutMs: 10_000 },
        );
      }),
    );
    expect(most).toBe(1);
    expect(order.sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('waits for a live holder, reports it once, and fails after the timeout naming it', async () => {
    const holder = execa('sleep', ['30']);
    try {
      const info = { pid: holder.pid as number, host: hostname(), createdAt: '2026-11-28T10:00:00Z', purpose: 'publish boxcar/lab-worker' };
      await writeLock(info);
      const waits: (LockHolder | undefined)[] = [];
      const started = Date.now();
      await expect(withStoreLock(root, 'second', async () => 'never', { pollMs: 20, timeoutMs: 300, onWait: (h) => waits.push(h) })).rejects.toThrow(
        `store lock ${lockFile()}, held by pid ${info.pid} on ${info.host} since ${info.createdAt} for "publish boxcar/lab-worker"`,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(waits).toEqual([info]);
      expect(JSON.parse(await readFile(lockFile(), 'utf8'))).toEqual(info);
    } finally {
      holder.kill();
      await holder.catch(() => undefined);
    }
  });

  it('does not take over a lock from another host, whose pid it cannot check', async () => {
    await writeLock({ pid: await deadPid(), host: 'elsewhere.invalid', createdAt: '2026-11-28T00:00:00Z', purpose: 'remote publish' });
    await expect(withStoreLock(root, 'x', async () => 'never', { pollMs: 10, timeoutMs: 100 })).rejects.toThrow(/held by pid \d+ on elsewhere\.invalid/);
  });

  it('acquires as soon as the holder releases', async () => {
    const events: string[] = [];
    const first = withStoreLock(root, 'first', async () => {
      await sleep(100);
      events.push('first done');
    });
    await sleep(10);
    await withStoreLock(root, 'second', async () => void events.push('second ran'), {
      pollMs: 10,
      onWait: (h) => events.push(`waiting for ${h?.purpose}`),
    });
    await first;
    expect(events).toEqual(['waiting for first', 'first done', 'second ran']);
  });

  it('reports a lock that was taken from its holder while fn ran', async () => {
    await expect(
      withStoreLock(root, 'victim', async () => {
        await writeFile(lockFile(), JSON.stringify({ pid: 1, host: 'other', createdAt: 'now', purpose: 'intruder' }));
      }),
    ).rejects.toThrow(/was taken from "victim" while it ran: .* for "intruder"/);
  });
});
