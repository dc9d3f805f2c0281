import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomSuffix } from './atomic-write.ts';
import { processAlive, processIdentity, processStartTicks, type ProcessIdentity } from './process.ts';

// A lock is one file, created exclusively, holding JSON that names its holder and a token of its own.
// It may sit on a drive several machines share (the box store), so a waiter takes a lock over only when
// it can prove the holder gone: same host, same boot, same pid namespace, and that process no longer runs.

/** The holder of a lock: which process of which boot of which machine, since when, and why. */
export interface LockHolder extends ProcessIdentity {
  createdAt: string;
  purpose: string;
}

export interface LockOptions {
  /** What the holder does, shown to whoever waits for it. */
  purpose?: string;
  /** Give up after this long (default 2 minutes). */
  timeoutMs?: number;
  /** How often a waiter looks at the lock again (default 100 ms). */
  pollMs?: number;
  /** Called when this caller starts waiting and whenever the holder changes; undefined when the lock file is unreadable. */
  onWait?: (holder: LockHolder | undefined) => void;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly lockFile: string,
    readonly holder: LockHolder | undefined,
    readonly timeoutMs: number,
  ) {
    super(`${describeLock(lockFile, holder)}; gave up after ${timeoutMs / 1000} s`);
    this.name = 'LockTimeoutError';
  }
}

/** Release found the lock no longer this holder's: what it guarded may have had two users at once. */
export class LockLostError extends Error {
  constructor(
    readonly lockFile: string,
    readonly purpose: string,
    /** Undefined when the lock file is unreadable or was removed. */
    readonly holder: LockHolder | undefined,
    readonly removed: boolean,
  ) {
    super(`${lockFile} was taken from "${purpose}" while it ran: ${removed ? `${lockFile} was removed` : describeLock(lockFile, holder)}`);
    this.name = 'LockLostError';
  }
}

function describeLock(lockFile: string, holder: LockHolder | undefined): string {
  if (!holder) return `${lockFile} (unreadable: not a boxcar lock?)`;
  return `${lockFile}, held by pid ${holder.pid} on ${holder.host} since ${holder.createdAt} for "${holder.purpose}"`;
}

type Identity = Omit<LockHolder, 'createdAt' | 'purpose'>;

let identity: Promise<Identity> | undefined;

/** This process as a lock names it; none of it changes while the process runs. */
function thisProcess(): Promise<Identity> {
  identity ??= processIdentity(process.pid);
  return identity;
}

interface LockRecord {
  holder: LockHolder;
  token: string | undefined;
}

const optional = (value: unknown, type: 'string' | 'number'): boolean =>
  value === undefined || (type === 'number' ? Number.isSafeInteger(value) : typeof value === 'string');

function parseLock(text: string): LockRecord | undefined {
  let value: Partial<LockHolder> & { token?: unknown };
  try {
    value = JSON.parse(text) as typeof value;
  } catch {
    return undefined;
  }
  const { pid, host, bootId, machineId, pidNamespace, startTicks, createdAt, purpose, token } = value ?? {};
  const valid =
    Number.isSafeInteger(pid) && (pid as number) > 0 && typeof host === 'string' && typeof createdAt === 'string' && typeof purpose === 'string' &&
    optional(bootId, 'string') && optional(machineId, 'string') && optional(pidNamespace, 'string') && optional(startTicks, 'number') && optional(token, 'string');
  if (!valid) return undefined;
  const holder: LockHolder = {
    pid: pid as number,
    host: host as string,
    ...(bootId !== undefined && { bootId }),
    ...(machineId !== undefined && { machineId }),
    ...(pidNamespace !== undefined && { pidNamespace }),
    ...(startTicks !== undefined && { startTicks }),
    createdAt: createdAt as string,
    purpose: purpose as string,
  };
  return { holder, token: token as string | undefined };
}

/** Whether the holder is known to be gone; a holder this host cannot check counts as alive. */
async function abandoned(holder: LockHolder, self: Identity): Promise<boolean> {
  if (holder.host !== self.host) return false;
  // Written without a boot id (an older boxcar, or another machine of the same name): its pid cannot be
  // judged here, so it is waited for, and the wait says who holds it.
  if (holder.bootId === undefined) return false;
  if (holder.bootId !== self.bootId) {
    // Taken before this machine rebooted (every process of that boot is gone), or on another machine of the same name.
    return self.bootId !== undefined && holder.machineId !== undefined && holder.machineId === self.machineId;
  }
  if (holder.pidNamespace !== self.pidNamespace) return false;
  if (!processAlive(holder.pid)) return true;
  const startTicks = await processStartTicks(holder.pid);
  return holder.startTicks !== undefined && startTicks !== undefined && startTicks !== holder.startTicks;
}

async function readLockText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // The lock directory of an older boxcar: reads as a lock of unknown holder, never taken over.
    if (code === 'EISDIR') return '';
    throw error;
  }
}

/**
 * Creates `target` exclusively with `text` already in it: the content goes to a private file first and
 * link(2) publishes it, which fails with EEXIST like O_EXCL but never shows a half-written lock, and is
 * exclusive on NFS as well.
 */
async function createExclusive(target: string, text: string, scratch: string): Promise<boolean> {
  const handle = await open(scratch, 'wx');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(scratch, target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(scratch);
  }
}

/**
 * Removes `path` when its text passes `expected`, and says whether it did. The file is first moved aside
 * by rename (atomic: one caller wins), so that nothing can replace it between the check and the removal.
 */
async function removeIf(path: string, expected: (text: string) => boolean, aside: string): Promise<boolean> {
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const removed = expected(await readFile(aside, 'utf8'));
  // Otherwise it was a file some other caller had just created: give it back.
  if (!removed) await link(aside, path).catch(() => undefined);
  await unlink(aside);
  return removed;
}

/**
 * Removes the abandoned lock whose text is `staleText`; false while another waiter is doing so. Waiters
 * serialize on a second lock file so that exactly one of them checks and removes it: without that, a
 * waiter that judged the old lock abandoned could remove the fresh lock another waiter has just taken.
 */
async function takeOver(lockFile: string, staleText: string, mine: string, self: Identity, token: string): Promise<boolean> {
  const takeoverFile = `${lockFile}.takeover`;
  if (!(await createExclusive(takeoverFile, mine, `${lockFile}-${token}.takeover.tmp`))) {
    const other = await readLockText(takeoverFile);
    if (other === undefined) return true;
    const otherHolder = parseLock(other)?.holder;
    // A waiter that died while taking over leaves its takeover file behind.
    if (otherHolder === undefined || !(await abandoned(otherHolder, self))) return false;
    await removeIf(takeoverFile, (text) => text === other, `${lockFile}-${token}.aside`);
    return true;
  }
  try {
    // Moving a lock aside leaves a moment without one: never do it to a lock that is not the abandoned one.
    if ((await readLockText(lockFile)) === staleText) await removeIf(lockFile, (text) => text === staleText, `${lockFile}-${token}.stale`);
    return true;
  } finally {
    await removeIf(takeoverFile, (text) => text === mine, `${lockFile}-${token}.aside`);
  }
}

/**
 * Takes the lock at `lockFile` (its directory must exist): waits, polling, while another process holds
 * it, takes over a lock whose holder is provably gone, and fails with LockTimeoutError naming the holder.
 * The returned function gives the lock back (a second call does nothing); it fails with LockLostError,
 * leaving the file alone, when the lock is no longer this holder's.
 */
export async function acquireLock(lockFile: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const { purpose = '', timeoutMs = 120_000, pollMs = 100, onWait } = options;
  const self = await thisProcess();
  // The token makes this holder's lock text unique, so that release can tell it from any later lock.
  const token = randomSuffix();
  const deadline = Date.now() + timeoutMs;
  let lastSeen: string | undefined;
  for (;;) {
    const mine = JSON.stringify({ ...self, createdAt: new Date().toISOString(), purpose, token });
    if (await createExclusive(lockFile, mine, `${lockFile}-${token}.tmp`)) break;
    const text = await readLockText(lockFile);
    if (text === undefined) continue;
    const holder = parseLock(text)?.holder;
    if (holder !== undefined && (await abandoned(holder, self))) {
      if (await takeOver(lockFile, text, mine, self, token)) continue;
    } else if (text !== lastSeen) {
      lastSeen = text;
      onWait?.(holder);
    }
    if (Date.now() >= deadline) throw new LockTimeoutError(lockFile, holder, timeoutMs);
    await sleep(pollMs);
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    const isMine = (text: string | undefined) => text !== undefined && parseLock(text)?.token === token;
    let current = await readLockText(lockFile);
    if (isMine(current)) {
      if (await removeIf(lockFile, isMine, `${lockFile}-${token}.release`)) return;
      current = await readLockText(lockFile);
    }
    throw new LockLostError(lockFile, purpose, current === undefined ? undefined : parseLock(current)?.holder, current === undefined);
  };
}

/** Runs `fn` while holding the lock; a lost lock is reported over fn's own outcome. */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquireLock(lockFile, options);
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await fn() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  await release();
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
