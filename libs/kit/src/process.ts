import { readdir, readFile, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

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
  const ticks = Number((await statFields(pid))?.[22 - 3]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

/** The fields of /proc/<pid>/stat from field 3 on; undefined when the process does not exist. */
async function statFields(pid: number): Promise<string[] | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // Field 2 is the command name in parentheses and may itself hold spaces and parentheses.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * Names one process of one boot of one machine, so that another process can find it again later and
 * tell it from a later process given the same pid: locks and pid records hold it.
 */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id: the kernel it runs under. */
  bootId?: string;
  /** /etc/machine-id: the same machine after a reboot, or another one that shares the host name. */
  machineId?: string;
  /** The pid namespace its pid is numbered in: containers on one kernel number their processes each on their own. */
  pidNamespace?: string;
  /** processStartTicks of the process. */
  startTicks?: number;
}

let machine: Promise<Omit<ProcessIdentity, 'pid' | 'startTicks'>> | undefined;

/** Host, boot, machine and pid namespace of this process; none of it changes while it runs. */
function thisMachine(): Promise<Omit<ProcessIdentity, 'pid' | 'startTicks'>> {
  machine ??= (async () => {
    const readTrimmed = (path: string) => readFile(path, 'utf8').then((text) => text.trim() || undefined, () => undefined);
    const [bootId, machineId, pidNamespace] = await Promise.all([
      readTrimmed('/proc/sys/kernel/random/boot_id'),
      readTrimmed('/etc/machine-id').then((id) => id ?? readTrimmed('/var/lib/dbus/machine-id')),
      readlink('/proc/self/ns/pid').catch(() => undefined),
    ]);
    return { host: hostname(), bootId, machineId, pidNamespace };
  })();
  return machine;
}

/** This process, or one it started (same machine and pid namespace), as a record names it. */
export async function processIdentity(pid: number): Promise<ProcessIdentity> {
  const [where, startTicks] = await Promise.all([thisMachine(), processStartTicks(pid)]);
  return { pid, ...where, startTicks };
}

/**
 * Whether the recorded process provably still runs, here: same host, boot and pid namespace, and a
 * process with that pid and start time. False when it is gone or when this process cannot tell.
 */
export async function runsHere(recorded: ProcessIdentity): Promise<boolean> {
  const here = await thisMachine();
  if (recorded.host !== here.host || recorded.bootId === undefined || recorded.bootId !== here.bootId || recorded.pidNamespace !== here.pidNamespace) return false;
  if (recorded.startTicks === undefined || !processAlive(recorded.pid)) return false;
  return (await processStartTicks(recorded.pid)) === recorded.startTicks;
}

/** The running descendants of `pid` (children, their children, ...), each with its start time. */
export async function descendants(pid: number): Promise<{ pid: number; startTicks: number }[]> {
  const parents = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry));
    if (!fields) continue;
    // Fields 4 (ppid) and 22 (start time), counted from field 3 after the command name.
    const ppid = Number(fields[4 - 3]);
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    ticks.set(Number(entry), Number(fields[22 - 3]));
  }
  const found: { pid: number; startTicks: number }[] = [];
  const walk = (parent: number) => {
    for (const child of parents.get(parent) ?? []) {
      found.push({ pid: child, startTicks: ticks.get(child)! });
      walk(child);
    }
  };
  walk(pid);
  return found;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone (or a zombie). */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (processAlive(pid) && !(await isZombie(pid))) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      await sleep(200);
      if (Date.now() > deadline + 5_000) throw new Error(`process ${pid} did not end after SIGKILL`);
      continue;
    }
    await sleep(100);
  }
}

async function isZombie(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return /^State:\s+Z/m.test(status);
}
