import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, LockLostError, LockTimeoutError, withLock, type LockHolder } from './lock.ts';

// The store's own tests (libs/box-store/src/lock.test.ts, processes.test.ts) cover waiting, reporting
// and serialized takeover through withStoreLock; these cover how a holder is recognized.

let dir: string;
let lockFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-kit-lock-'));
  lockFile = join(dir, 'lock');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

type LockText = LockHolder & { token?: string };

/** What this process writes into a lock: its host, boot, machine, pid namespace, pid and start time. */
async function ownLockText(): Promise<LockText> {
  const scratch = join(dir, 'own');
  const release = await acquireLock(scratch, { purpose: 'probe' });
  const text = JSON.parse(await readFile(scratch, 'utf8')) as LockText;
  await release();
  return text;
}

/** The pid of a process that has exited. */
const deadPid = (): number => spawnSync('true').pid;

const writeLock = (text: LockText): Promise<void> => writeFile(lockFile, JSON.stringify(text));
const readLock = async (): Promise<LockText> => JSON.parse(await readFile(lockFile, 'utf8')) as LockText;
const attempt = (timeoutMs = 300) => withLock(lockFile, async () => 'ran', { purpose: 'attempt', pollMs: 10, timeoutMs });

describe('acquireLock and withLock', () => {
  it('runs holders one at a time and takes over a lock whose holder died', async () => {
    const order: string[] = [];
    const hold = (name: string) =>
      withLock(lockFile, async () => {
        order.push(`${name}+`);
        await new Promise((done) => setTimeout(done, 50));
        order.push(`${name}-`);
      });
    await Promise.all([hold('a'), hold('b'), hold('c')]);
    expect(order.join(' ')).toMatch(/^(\w)\+ \1- (\w)\+ \2- (\w)\+ \3-$/);

    const own = await ownLockText();
    await writeLock({ ...own, pid: 999_999_999, createdAt: '2026-11-28T00:00:00Z', purpose: 'crashed', token: 'dead' });
    expect(await withLock(lockFile, async () => 'taken over', { timeoutMs: 2_000 })).toBe('taken over');
  });

  it('names this process by boot, machine, pid namespace and start time', async () => {
    const own = await ownLockText();
    expect(own).toMatchObject({ pid: process.pid, host: hostname(), purpose: 'probe' });
    expect(own.bootId).toBe((await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim());
    expect(own.startTicks).toEqual(expect.any(Number));
    expect(own.pidNamespace).toMatch(/^pid:\[\d+\]$/);
  });

  it('takes over a lock whose pid now belongs to another process (same pid, other start time)', async () => {
    const own = await ownLockText();
    await writeLock({ ...own, startTicks: own.startTicks! + 1, purpose: 'before the pid was recycled', token: 'recycled' });
    expect(await attempt()).toBe('ran');
  });

  it('waits for a live holder recognized by its start time, and names it when giving up', async () => {
    const own = await ownLockText();
    const holder = { ...own, purpose: 'still running', token: 'other' };
    await writeLock(holder);
    const error = await attempt().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as Error).message).toBe(`${lockFile}, held by pid ${own.pid} on ${own.host} since ${own.createdAt} for "still running"; gave up after 0.3 s`);
    expect(await readLock()).toEqual(holder);
  });

  it('leaves alone the lock of another machine with the same host name (other boot and machine id), even of a pid dead here', async () => {
    const own = await ownLockText();
    const holder = { ...own, pid: deadPid(), bootId: 'another-boot', machineId: 'another-machine', token: 'theirs' };
    await writeLock(holder);
    await expect(attempt()).rejects.toThrow(LockTimeoutError);
    expect(await readLock()).toEqual(holder);
  });

  it('leaves alone a lock without a boot id (its holder cannot be judged here), even of a pid dead here, and says who holds it', async () => {
    const own = await ownLockText();
    const { bootId: _boot, ...holder } = { ...own, pid: deadPid(), token: 'theirs' };
    await writeLock(holder);
    await expect(attempt()).rejects.toThrow(`${lockFile}, held by pid ${holder.pid} on ${holder.host} since ${holder.createdAt}`);
    expect(await readLock()).toEqual(holder);
  });

  it('leaves alone the lock of another container on this kernel with the same host name (other pid namespace)', async () => {
    const own = await ownLockText();
    const holder = { ...own, pid: deadPid(), pidNamespace: 'pid:[1]', token: 'theirs' };
    await writeLock(holder);
    await expect(attempt()).rejects.toThrow(LockTimeoutError);
    expect(await readLock()).toEqual(holder);
  });

  it('takes over a lock taken on this machine before it rebooted (same machine id, other boot)', async () => {
    const own = await ownLockText();
    expect(own.machineId, 'this test needs /etc/machine-id').toBeDefined();
    await writeLock({ ...own, bootId: 'before-the-reboot', token: 'old' });
    expect(await attempt()).toBe('ran');
  });

  it('never takes over a lock it cannot read, such as the lock directory of an older boxcar', async () => {
    await mkdir(lockFile);
    await writeFile(join(lockFile, 'pid'), '999999999');
    await expect(attempt()).rejects.toThrow(`${lockFile} (unreadable: not a boxcar lock?); gave up after 0.3 s`);
  });
});

describe('release', () => {
  it('removes only a lock holding its own token, and reports one that was taken', async () => {
    const release = await acquireLock(lockFile, { purpose: 'mine' });
    const intruder = { ...(await readLock()), purpose: 'intruder', token: 'intruder' };
    await writeLock(intruder);
    const error = await release().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as Error).message).toMatch(new RegExp(`^${lockFile} was taken from "mine" while it ran: .* for "intruder"$`));
    expect(await readLock()).toEqual(intruder);
    // Given back once: a second call changes nothing.
    await release();
    expect(await readLock()).toEqual(intruder);
  });

  it('reports a lock that was removed under its holder, over what the holder did', async () => {
    const run = withLock(lockFile, async () => {
      await rm(lockFile);
      throw new Error('the work failed too');
    }, { purpose: 'mine' });
    await expect(run).rejects.toThrow(`${lockFile} was taken from "mine" while it ran: ${lockFile} was removed`);
  });

  it('leaves no file behind', async () => {
    await withLock(lockFile, async () => undefined);
    await expect(readFile(lockFile)).rejects.toThrow(/ENOENT/);
    expect(await readdir(dir)).toEqual([]);
  });
});
