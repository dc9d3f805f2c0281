import { ActionableError } from '@boxcar/kit';

// A guest's clock set from the host's. A guest just resumed from a saved state under TCG may take
// seconds to run a command (seen: a master 8 s behind after `sudo date -s @<host time>`, the time
// having aged on the way), so the time is not sent: the guest's offset is measured (its clock read
// between two host readings), and the guest shifts its own clock by that offset, which does not age.

/** How far a guest's clock may be from the host's once set, beyond half the round trip of its reading (what a measure cannot tell apart). */
export const CLOCK_TOLERANCE_MS = 1_000;
const ROUNDS = 4;

export class ClockNotSetError extends ActionableError {
  constructor(readonly node: string, readonly offsetMs: number, readonly roundTripMs: number) {
    super(`${node}: its clock is still ${(offsetMs / 1000).toFixed(1)} s off the host's after ${ROUNDS} corrections (a read takes ${(roundTripMs / 1000).toFixed(1)} s); set it by hand: sudo date -u -s @$(date +%s) on the node`);
  }
}

/** The guest's offset from the host's clock, in nanoseconds, with the round trip it was measured in (ms). */
async function measure(run: (command: string) => Promise<string>, now: () => number): Promise<{ offsetNs: bigint; roundTripMs: number }> {
  const before = now();
  const answer = (await run('date -u +%s%N')).trim();
  const after = now();
  if (!/^\d{10,}$/.test(answer)) throw new Error(`the guest's clock could not be read: "date -u +%s%N" printed "${answer}"`);
  const hostNs = BigInt(Math.round(((before + after) / 2) * 1e6));
  return { offsetNs: BigInt(answer) - hostNs, roundTripMs: after - before };
}

/**
 * A command that moves the guest's clock by -offsetNs relative to its own reading (POSIX sh, 64-bit
 * arithmetic: nanoseconds since 1970 fit). Runs as root through sudo.
 */
export function shiftClockCommand(offsetNs: bigint): string {
  return `sudo -n sh -c 't=$(( $(date -u +%s%N) - (${offsetNs}) )); date -u -s "@$(( t / 1000000000 )).$(printf %09d $(( t % 1000000000 )))" >/dev/null'`;
}

/**
 * Sets the guest's clock to the host's within CLOCK_TOLERANCE_MS (plus half a reading's round trip): measure, shift, measure again. `run`
 * runs a command on the guest and returns its standard output. Returns the last measured offset (ms).
 */
export async function setGuestClock(node: string, run: (command: string) => Promise<string>, now: () => number = Date.now): Promise<number> {
  const close = (m: { offsetNs: bigint; roundTripMs: number }) => Math.abs(Number(m.offsetNs) / 1e6) <= CLOCK_TOLERANCE_MS + m.roundTripMs / 2;
  let measured = await measure(run, now);
  for (let round = 0; round < ROUNDS && !close(measured); round++) {
    await run(shiftClockCommand(measured.offsetNs));
    measured = await measure(run, now);
  }
  if (!close(measured)) throw new ClockNotSetError(node, Number(measured.offsetNs) / 1e6, measured.roundTripMs);
  return Number(measured.offsetNs) / 1e6;
}
