// The store lock: <root>/.lock, held while a store changes. Several bakers, on several machines, may
// share one store.
import { join } from 'node:path';
import { LockLostError, LockTimeoutError, withLock, type LockOptions } from '@boxcar/kit';
import { BoxStoreError } from './errors.ts';
import { LOCK_FILE } from './layout.ts';

export interface StoreLockOptions extends Omit<LockOptions, 'purpose'> {
  /** Give up after this long (default 15 minutes: a publish to a network drive copies gigabytes). */
  timeoutMs?: number;
  /** How often a waiter looks at the lock again (default 500 ms: the lock may sit on a network drive). */
  pollMs?: number;
}

/**
 * Runs `fn` while holding the lock of the store at directory `root`. Waits (polling) while another
 * process holds it, takes over a lock left by a process that is provably gone, and fails after the
 * timeout with an error naming the holder.
 */
export async function withStoreLock<T>(root: string, purpose: string, fn: () => Promise<T>, opts: StoreLockOptions = {}): Promise<T> {
  const lockFile = join(root, LOCK_FILE);
  try {
    return await withLock(lockFile, fn, { ...opts, purpose, timeoutMs: opts.timeoutMs ?? 15 * 60_000, pollMs: opts.pollMs ?? 500 });
  } catch (error) {
    if (error instanceof LockTimeoutError && error.lockFile === lockFile) {
      throw new BoxStoreError('lock-timeout', `store lock ${error.message}. If that process is gone (another host cannot tell), remove the lock file.`, lockFile, { cause: error });
    }
    // Reported over fn's own outcome: the store may have had two writers at once.
    if (error instanceof LockLostError && error.lockFile === lockFile) throw new BoxStoreError('conflict', `store lock ${error.message}`, lockFile, { cause: error });
    throw error;
  }
}
