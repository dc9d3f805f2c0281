import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// A lock directory on local disk, holding `pid` ("<pid> <purpose>"). The providers' steps for one
// cluster may run at once (terraform brings nodes up in parallel): qemu's switches, ports and launches,
// and Vagrant's project, must not interleave. A lock whose holder died is taken over.

export interface LockOptions {
  /** Give up after this long. */
  timeoutMs?: number;
  /** Shown to whoever waits for this holder. */
  purpose?: string;
  /** Called once per holder this caller waits for. */
  onWait?: (holder: { pid: number; purpose: string }) => void;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock; the returned function gives it back (a second call does nothing). */
export async function acquireLock(lockDir: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const { timeoutMs = 120_000, purpose = '', onWait } = options;
  const owner = join(lockDir, 'pid');
  const deadline = Date.now() + timeoutMs;
  let announced = '';
  while (true) {
    try {
      await mkdir(lockDir);
      await writeFile(owner, `${process.pid} ${purpose}\n`);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const text = await readFile(owner, 'utf8').catch(() => '');
      const holder = Number.parseInt(text, 10);
      // No pid yet means the holder is between mkdir and writeFile: wait, unless that lasts.
      const orphaned = Number.isInteger(holder) ? !processAlive(holder) : Date.now() - ((await stat(lockDir).catch(() => undefined))?.mtimeMs ?? Date.now()) > 10_000;
      if (orphaned) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Number.isInteger(holder) && text !== announced) {
        announced = text;
        onWait?.({ pid: holder, purpose: text.slice(text.indexOf(' ') + 1).trim() });
      }
      if (Date.now() > deadline) throw new Error(`${lockDir} is held by process ${Number.isInteger(holder) ? holder : '(unknown)'} for more than ${timeoutMs} ms`);
      await sleep(100);
    }
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await rm(lockDir, { recursive: true, force: true });
  };
}

/** Runs `action` while holding the lock. */
export async function withLock<T>(lockDir: string, action: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquireLock(lockDir, options);
  try {
    return await action();
  } finally {
    await release();
  }
}
