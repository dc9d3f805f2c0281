// The store lock: <root>/.lock, created exclusively, holding who took it and why.
import { hostname } from 'node:os';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BoxStoreError, errorCode } from './errors.ts';
import { randomSuffix } from './fs-atomic.ts';
import { LOCK_FILE } from './layout.ts';

export interface LockInfo {
  pid: number;
  host: string;
  createdAt: string;
  purpose: string;
}

export interface StoreLockOptions {
  /** Give up after this long (default 15 minutes: a publish to a network drive copies gigabytes). */
  timeoutMs?: number;
  /** How often a waiter looks at the lock again (default 500 ms). */
  pollMs?: number;
  /** Called when this caller starts waiting and whenever the holder changes; undefined when the lock file is unreadable. */
  onWait?: (holder: LockInfo | undefined) => void;
}

const TAKEOVER_FILE = '.lock.takeover';

function describe(holder: LockInfo | undefined, lockFile: string): string {
  if (!holder) return `${lockFile} (unreadable: not a boxcar lock?)`;
  return `${lockFile}, held by pid ${holder.pid} on ${holder.host} since ${holder.createdAt} for "${holder.purpose}"`;
}

function parseLock(text: string | undefined): LockInfo | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<LockInfo>;
    const valid =
      Number.isSafeInteger(value.pid) && (value.pid as number) > 0 && typeof value.host === 'string' &&
      typeof value.createdAt === 'string' && typeof value.purpose === 'string';
    return valid ? (value as LockInfo) : undefined;
  } catch {
    return undefined;
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/** Only a lock taken on this host by a process that no longer exists is known to be abandoned. */
function isStale(holder: LockInfo | undefined): boolean {
  return holder !== undefined && holder.host === hostname() && !pidAlive(holder.pid);
}

async function writeNew(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `target` exclusively with `text` already in it: the content goes to a private file first and
 * link(2) publishes it, which fails with EEXIST like O_EXCL but never shows a half-written lock, and is
 * exclusive on NFS as well.
 */
async function createExclusive(target: string, text: string, scratch: string): Promise<boolean> {
  await writeNew(scratch, text);
  try {
    await link(scratch, target);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(scratch);
  }
}

/** Moves `path` aside by rename (atomic: one caller wins) and deletes it when it still holds `expected`. */
async function removeIfUnchanged(path: string, expected: string, aside: string): Promise<void> {
  try {
    await rename(path, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  if ((await readFile(aside, 'utf8')) === expected) {
    await unlink(aside);
    return;
  }
  // Moved a file some other caller had just created: give it back.
  await link(aside, path).catch(() => undefined);
  await unlink(aside);
}

/**
 * Removes the stale lock whose content is `staleText`; false while another waiter is doing so. Waiters
 * serialize on a second lock file so that exactly one of them checks and removes it: without that, a
 * waiter that judged the old lock stale could remove the fresh lock another waiter has just taken.
 */
async function takeOver(root: string, staleText: string, self: string): Promise<boolean> {
  const lockFile = join(root, LOCK_FILE);
  const takeoverFile = join(root, TAKEOVER_FILE);
  const token = randomSuffix();
  if (!(await createExclusive(takeoverFile, self, join(root, `.lock-${token}.takeover.tmp`)))) {
    const other = await readIfExists(takeoverFile);
    const stale = other === undefined || isStale(parseLock(other));
    if (other !== undefined && stale) await removeIfUnchanged(takeoverFile, other, join(root, `.lock-${token}.aside`));
    return stale;
  }
  try {
    if ((await readIfExists(lockFile)) === staleText) await removeIfUnchanged(lockFile, staleText, join(root, `.lock-${token}.stale`));
    return true;
  } finally {
    await unlink(takeoverFile);
  }
}

/**
 * Runs `fn` while holding the lock of the store at directory `root`. Waits (polling) while another
 * process holds it, takes over a lock left by a dead process on this host, and fails after the timeout
 * with an error naming the holder.
 */
export async function withStoreLock<T>(root: string, purpose: string, fn: () => Promise<T>, opts: StoreLockOptions = {}): Promise<T> {
  const { timeoutMs = 15 * 60_000, pollMs = 500, onWait } = opts;
  const lockFile = join(root, LOCK_FILE);
  const token = randomSuffix();
  const deadline = Date.now() + timeoutMs;
  let lastSeen: string | undefined;
  let mine: string;
  for (;;) {
    // The token makes this holder's lock text unique, so release can tell it from any later lock.
    mine = JSON.stringify({ pid: process.pid, host: hostname(), createdAt: new Date().toISOString(), purpose, token });
    if (await createExclusive(lockFile, mine, join(root, `.lock-${token}.tmp`))) break;
    const text = await readIfExists(lockFile);
    if (text === undefined) continue;
    const holder = parseLock(text);
    if (isStale(holder)) {
      if (await takeOver(root, text, mine)) continue;
    } else if (text !== lastSeen) {
      lastSeen = text;
      onWait?.(holder);
    }
    if (Date.now() >= deadline) {
      throw new BoxStoreError(
        'lock-timeout',
        `store lock ${describe(holder, lockFile)}; gave up after ${timeoutMs / 1000} s. ` +
          'If that process is gone (another host cannot tell), remove the lock file.',
        lockFile,
      );
    }
    await sleep(pollMs);
  }
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await fn() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const current = await readIfExists(lockFile);
  if (current !== mine) {
    // Reported over fn's own outcome: the store may have had two writers at once.
    const now = describe(parseLock(current), lockFile);
    throw new BoxStoreError('conflict', `store lock ${lockFile} was taken from "${purpose}" while it ran: ${now}`, lockFile);
  }
  await unlink(lockFile);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
