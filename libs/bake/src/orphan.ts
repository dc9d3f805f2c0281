import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile, descendants, processIdentity, runsHere, stopProcess, unlessMissing, type ProcessIdentity } from '@boxcar/kit';

// A bake that is killed (SIGKILL, OOM) cannot stop the packer it started. Where setpriv exists, packer
// gets SIGTERM when the bake dies (libs/packer's runner); elsewhere, or when packer outlives it, packer
// runs on as an orphan in the layer's work dir. So the layer lock records the packer its holder
// started, in a file beside the lock (the kit lock stays generic), and whoever holds the lock next
// ends that packer (SIGTERM, then SIGKILL) before it bakes the layer.

/** As long as the runner gives packer to clean up after SIGTERM (its VM, its output directory). */
const GRACE_MS = 120_000;

export function packerRecordFile(lockDir: string): string {
  return join(lockDir, 'packer.json');
}

/** Records the packer this lock holder started: pid, start time, host, boot and pid namespace. */
export async function recordPacker(file: string, pid: number): Promise<void> {
  await atomicWriteFile(file, `${JSON.stringify(await processIdentity(pid))}\n`);
}

export async function forgetPacker(file: string): Promise<void> {
  await rm(file, { force: true });
}

function parseRecord(text: string): ProcessIdentity | undefined {
  try {
    const value = JSON.parse(text) as Partial<ProcessIdentity>;
    return Number.isSafeInteger(value.pid) && (value.pid as number) > 1 && typeof value.host === 'string' ? (value as ProcessIdentity) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Called by the new holder of a layer lock: when the previous holder's packer (recorded in `file`)
 * still runs, ends it and whatever it started, and says so. Then forgets the record.
 */
export async function endOrphanPacker(file: string, say: (text: string) => void, graceMs = GRACE_MS): Promise<void> {
  const text = await unlessMissing(file, readFile(file, 'utf8'), undefined);
  if (text === undefined) return;
  const recorded = parseRecord(text);
  if (recorded && (await runsHere(recorded))) {
    say(`packer pid ${recorded.pid}, started by a bake that was killed, still runs: ending it first (SIGTERM, SIGKILL after ${graceMs / 1000} s)`);
    // Found before the wrapper goes: its build process and plugins would then belong to init.
    const started = await descendants(recorded.pid);
    await stopProcess(recorded.pid, graceMs);
    for (const child of started) {
      if (await runsHere({ ...recorded, ...child })) await stopProcess(child.pid, 5_000);
    }
    say(`packer pid ${recorded.pid} has ended`);
  }
  await forgetPacker(file);
}
