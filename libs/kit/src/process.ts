import { readFile } from 'node:fs/promises';

/** Whether a process with this pid exists here (one owned by another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process started, in clock ticks after boot (/proc/<pid>/stat field 22): with the pid it
 * names one process of one boot, so a pid that was recycled since can be told apart. Undefined when the
 * process does not exist or there is no /proc.
 */
export async function processStartTicks(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // Field 2 is the command name in parentheses and may itself hold spaces and parentheses.
  const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields?.[22 - 3]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}
