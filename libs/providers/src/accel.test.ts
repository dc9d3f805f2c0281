import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { TCG_ARGS, detectAccelerator, explainProbe, parseQemuVersion, qemuVersion, runAcceleratorProbe } from './accel.ts';

/**
 * What this machine really is, read independently of the probe: KVM can only run guests when the CPU
 * offers hardware virtualization (vmx or svm) and /dev/kvm is usable. The machine these tests were
 * written on has /dev/kvm (a paravirtual "kvm-pvm" module inside a Firecracker VM) but no vmx/svm:
 * `-accel kvm` hangs or aborts there, so detectAccelerator must answer tcg. On a host with vmx/svm the
 * same test expects kvm.
 */
async function machineHasUsableKvm(): Promise<boolean> {
  const flags = await readFile('/proc/cpuinfo', 'utf8');
  if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(flags)) return false;
  return access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
}

describe('detectAccelerator on this machine', () => {
  it('answers what the machine really is (tcg here: /dev/kvm without vmx/svm)', async () => {
    const expected = (await machineHasUsableKvm()) ? 'kvm' : 'tcg';
    const choice = await detectAccelerator();
    expect(choice.accel, choice.reason).toBe(expected);
    if (expected === 'tcg') {
      expect(choice.qemuArgs).toEqual(['-accel', 'tcg,tb-size=128']);
      expect(choice.reason).toMatch(/\/dev\/kvm (does not exist|is not usable|exists but KVM cannot run a guest)/);
    } else {
      expect(choice.qemuArgs).toEqual(['-accel', 'kvm', '-cpu', 'host']);
    }
  });

  it('caches the answer per process', async () => {
    const first = detectAccelerator();
    expect(detectAccelerator()).toBe(first);
    const started = Date.now();
    await detectAccelerator();
    expect(Date.now() - started).toBeLessThan(50);
  });

  it('answers tcg without a probe when the KVM device is missing', async () => {
    const choice = await detectAccelerator({ kvmDevice: '/nonexistent/kvm' });
    expect(choice).toEqual({ accel: 'tcg', reason: '/nonexistent/kvm does not exist', qemuArgs: ['-accel', 'tcg,tb-size=128'] });
  });

  it('names the package when QEMU is missing, and does not cache that', async () => {
    await expect(detectAccelerator({ qemuBinary: 'qemu-system-nonexistent' })).rejects.toThrow(
      /qemu-system-nonexistent not found: install the Debian package qemu-system-x86/,
    );
    await expect(detectAccelerator({ qemuBinary: 'qemu-system-nonexistent' })).rejects.toThrow(/not found/);
  });

  it('refuses a silly timeout', async () => {
    await expect(detectAccelerator({ timeoutMs: 5 })).rejects.toThrow(/timeoutMs must be a whole number of milliseconds >= 100, got 5/);
  });
});

describe('the probe guest', () => {
  // Without this, a broken probe would make every machine look like "tcg" and the test above pass.
  it('runs to completion under TCG: firmware, protected mode, long mode, the loop, the exit port', async () => {
    const run = await runAcceleratorProbe(TCG_ARGS, { timeoutMs: 20_000 });
    expect(run.debugcon).toContain('SeaBIOS');
    expect(run.debugcon.endsWith('PLOK')).toBe(true);
    expect(run.exitCode).toBe(33);
    expect(explainProbe(run, 20_000)).toBeUndefined();
  });
});

describe('explainProbe', () => {
  const bios = 'SeaBIOS (version 1.16.2)\nBooting from ROM...\n';
  it.each([
    ['', undefined, undefined, true, /the firmware \(SeaBIOS\) did not start within 3000 ms/],
    [bios, undefined, undefined, true, /SeaBIOS ran but did not start the probe kernel within 3000 ms/],
    [`${bios}P`, undefined, undefined, true, /did not reach long mode within 3000 ms/],
    [`${bios}PL`, undefined, undefined, true, /did not finish a 20-million-iteration loop within 3000 ms: guest code runs far slower than under TCG/],
    ['', undefined, 'SIGABRT', false, /did not start \(QEMU was killed by SIGABRT\)/],
    [`${bios}PLOK`, 1, undefined, false, /\(QEMU exited with status 1\)/],
  ] as const)('explains how far the guest got: %j', (debugcon, exitCode, signal, timedOut, message) => {
    expect(explainProbe({ debugcon, exitCode, signal, timedOut }, 3000)).toMatch(message);
  });

  it('accepts a complete run', () => {
    expect(explainProbe({ debugcon: `${bios}PLOK`, exitCode: 33, signal: undefined, timedOut: false }, 3000)).toBeUndefined();
  });
});

describe('qemuVersion', () => {
  it('reads the installed QEMU', async () => {
    const version = await qemuVersion();
    expect(version.major).toBeGreaterThanOrEqual(5);
    expect(version.text).toMatch(/^QEMU emulator version /);
  });

  it('parses Debian and upstream version lines', () => {
    expect(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright')).toMatchObject({ version: '7.2.22', major: 7, minor: 2 });
    expect(parseQemuVersion('QEMU emulator version 9.1\n')).toMatchObject({ version: '9.1', major: 9, minor: 1 });
    expect(() => parseQemuVersion('bash: qemu: command not found')).toThrow(/cannot read a QEMU version/);
  });
});
