import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { ClockNotSetError, setGuestClock, shiftClockCommand } from './guest-clock.ts';

/**
 * A guest stand-in (a test double for a VM over SSH): its clock is the host's plus `offsetMs`, and each
 * command takes effect `latencyMs` after it was sent and answers `latencyMs` later, on a simulated
 * host clock. The shift is applied as the guest would: relative to its own clock when it runs.
 */
function simulatedGuest(offsetMs: number, latencyMs: number, options: { drops?: boolean } = {}) {
  let host = 1_796_641_000_000;
  const guest = { offsetMs };
  const run = async (command: string): Promise<string> => {
    host += latencyMs;
    let out = '';
    if (command === 'date -u +%s%N') out = `${BigInt(Math.round((host + guest.offsetMs) * 1e6))}\n`;
    else {
      const shift = /- \((-?\d+)\) \)\)/.exec(command);
      if (!shift) throw new Error(`unexpected command ${command}`);
      if (!options.drops) guest.offsetMs -= Number(BigInt(shift[1]!)) / 1e6;
    }
    host += latencyMs;
    return out;
  };
  return { run, now: () => host, guest };
}

describe('setGuestClock', () => {
  it('sets a guest 8 s behind whose commands take 3 s to arrive, where sending the host time would leave it 3 s behind', async () => {
    const sim = simulatedGuest(-8_000, 3_000);
    const offset = await setGuestClock('cni-master1', sim.run, sim.now);
    expect(Math.abs(sim.guest.offsetMs)).toBeLessThan(1);
    expect(Math.abs(offset)).toBeLessThan(1);
  });

  it('leaves a guest already within a second alone (no shift sent)', async () => {
    const sim = simulatedGuest(300, 50);
    const sent: string[] = [];
    await setGuestClock('cni-worker1', async (command) => (sent.push(command), sim.run(command)), sim.now);
    expect(sent).toEqual(['date -u +%s%N']);
    expect(sim.guest.offsetMs).toBe(300);
  });

  it('sets a guest far ahead (a day) back', async () => {
    const sim = simulatedGuest(86_400_000, 200);
    await setGuestClock('cni-worker2', sim.run, sim.now);
    expect(Math.abs(sim.guest.offsetMs)).toBeLessThan(1);
  });

  it('says which node and how far off when the clock does not move', async () => {
    const sim = simulatedGuest(-60_000, 100, { drops: true });
    const error = await setGuestClock('cni-worker2', sim.run, sim.now).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClockNotSetError);
    expect((error as Error).message).toMatch(/^cni-worker2: its clock is still -60\.0 s off the host's after 4 corrections/);
  });

  it("refuses a reading that is not a time, naming the command and what it printed", async () => {
    await expect(setGuestClock('cni-master1', async () => 'sudo: a password is required\n')).rejects.toThrow(/"date -u \+%s%N" printed "sudo: a password is required"/);
  });
});

describe('shiftClockCommand, run by a real sh with date and sudo replaced by recorders', () => {
  const bin = mkdtempSync(join(tmpdir(), 'boxcar-clock-'));
  afterAll(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(join(bin, 'sudo'), '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n');
  // The guest reads 1796641086.334545600 s; a set is recorded to a file.
  writeFileSync(join(bin, 'date'), `#!/bin/sh\nif [ "$2" = -s ]; then echo "$3" >"${bin}/set"; else echo 1796641086334545600; fi\n`);
  chmodSync(join(bin, 'sudo'), 0o755);
  chmodSync(join(bin, 'date'), 0o755);
  const shifted = async (offsetNs: bigint) => {
    await execa('sh', ['-c', shiftClockCommand(offsetNs)], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    return (await execa('cat', [join(bin, 'set')])).stdout;
  };

  it('moves a clock that is behind forward by the offset, nanoseconds kept', async () => {
    expect(await shifted(-2_946_654_400n)).toBe('@1796641089.281200000');
  });

  it('moves a clock that is ahead back, across a second boundary', async () => {
    expect(await shifted(334_545_601n)).toBe('@1796641085.999999999');
  });
});
