import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const QEMU_BINARY = 'qemu-system-x86_64';

export type Accelerator = 'kvm' | 'tcg';

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why: what the probe saw. Shown to users, e.g. by `boxcar doctor`. */
  reason: string;
  /** Arguments that select the accelerator (and the CPU model that goes with it). */
  qemuArgs: string[];
}

export interface DetectOptions {
  /** How long the KVM probe may take before KVM counts as unusable. */
  timeoutMs?: number;
  qemuBinary?: string;
  kvmDevice?: string;
}

// tb-size caps TCG's translation cache (default 1 GiB per VM); 128 MiB keeps a VM near 0.5 GB RSS.
export const TCG_ARGS: readonly string[] = ['-accel', 'tcg,tb-size=128'];
export const KVM_ARGS: readonly string[] = ['-accel', 'kvm', '-cpu', 'host'];

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * The probe: a multiboot kernel (flat binary, "a.out kludge" header) of 206 bytes. It writes 'P' to the
 * debug console (port 0x402) once in protected mode, switches to long mode as a Linux kernel does and
 * writes 'L', spins 20 million times and writes 'OK', then leaves through isa-debug-exit (port 0xf4),
 * which makes QEMU exit with status (0x10 << 1) | 1 = 33.
 *
 * Why the loop: on hosts whose /dev/kvm has no hardware virtualization behind it (e.g. a nested
 * "pagetable" KVM), SeaBIOS and even the switch to long mode work, but guest code runs about a thousand
 * times slower than under TCG and a Linux kernel never gets past its decompressor. 20 million
 * iterations take a few milliseconds under real KVM, about 0.1 s under TCG and minutes there.
 * Assembled from the listing below (GNU as, `.code32`, linked at 0x100000).
 */
const PROBE_KERNEL = Buffer.from(
  [
    // multiboot header: magic, flags (bit 16: the address fields below are valid), checksum
    [0x02, 0xb0, 0xad, 0x1b], [0x00, 0x00, 0x01, 0x00], [0xfe, 0x4f, 0x51, 0xe4],
    // header_addr 0x100000, load_addr 0x100000, load_end_addr 0 (whole file), bss_end_addr 0, entry 0x100020
    [0x00, 0x00, 0x10, 0x00], [0x00, 0x00, 0x10, 0x00], [0, 0, 0, 0], [0, 0, 0, 0], [0x20, 0x00, 0x10, 0x00],
    [0x66, 0xba, 0x02, 0x04], // mov $0x402,%dx
    [0xb0, 0x50], [0xee], // mov $'P',%al; out %al,(%dx)
    [0xbf, 0x00, 0x00, 0x20, 0x00], [0x31, 0xc0], [0xb9, 0x00, 0x0c, 0x00, 0x00], [0xf3, 0xab], // zero 12 KiB of page tables at 0x200000
    [0xc7, 0x05, 0x00, 0x00, 0x20, 0x00, 0x03, 0x10, 0x20, 0x00], // movl $0x201003,0x200000 (PML4[0] -> PDPT)
    [0xc7, 0x05, 0x00, 0x10, 0x20, 0x00, 0x03, 0x20, 0x20, 0x00], // movl $0x202003,0x201000 (PDPT[0] -> PD)
    [0xc7, 0x05, 0x00, 0x20, 0x20, 0x00, 0x83, 0x00, 0x00, 0x00], // movl $0x83,0x202000 (PD[0]: 2 MiB page at 0)
    [0xc7, 0x05, 0x08, 0x20, 0x20, 0x00, 0x83, 0x00, 0x20, 0x00], // movl $0x200083,0x202008 (PD[1]: 2 MiB page at 2 MiB)
    [0x0f, 0x20, 0xe0], [0x83, 0xc8, 0x20], [0x0f, 0x22, 0xe0], // cr4 |= PAE
    [0xb8, 0x00, 0x00, 0x20, 0x00], [0x0f, 0x22, 0xd8], // cr3 = 0x200000
    [0xb9, 0x80, 0x00, 0x00, 0xc0], [0x0f, 0x32], [0x0d, 0x00, 0x01, 0x00, 0x00], [0x0f, 0x30], // EFER |= LME
    [0x0f, 0x20, 0xc0], [0x0d, 0x00, 0x00, 0x00, 0x80], [0x0f, 0x22, 0xc0], // cr0 |= PG: long mode
    [0x0f, 0x01, 0x15, 0xc8, 0x00, 0x10, 0x00], // lgdtl 0x1000c8
    [0xea, 0x95, 0x00, 0x10, 0x00, 0x08, 0x00], // ljmp $0x8,$0x100095 (64-bit code segment)
    [0x66, 0xba, 0x02, 0x04], // mov $0x402,%dx (rdmsr/wrmsr clobbered it)
    [0xb0, 0x4c], [0xee], // mov $'L',%al; out %al,(%dx)
    [0xb9, 0x00, 0x2d, 0x31, 0x01], // mov $20000000,%ecx
    [0xff, 0xc9], [0x75, 0xfc], // 1: dec %ecx; jnz 1b
    [0xb0, 0x4f], [0xee], [0xb0, 0x4b], [0xee], // out 'O', out 'K'
    [0x66, 0xba, 0xf4, 0x00], [0xb0, 0x10], [0xee], // out 0x10 to isa-debug-exit: QEMU exits with 33
    [0xf4], [0xeb, 0xfd], // 2: hlt; jmp 2b
    [0, 0, 0], // pad to 8-byte alignment (0x1000b8)
    [0, 0, 0, 0, 0, 0, 0, 0], [0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x20, 0x00], // GDT: null, 64-bit code
    [0x0f, 0x00, 0xb8, 0x00, 0x10, 0x00], // GDTR at 0x1000c8: limit 15, base 0x1000b8
  ].flat(),
);
const PROBE_EXIT_STATUS = 33;

/** The probe's QEMU command line (pure). */
export function probeArgs(accelArgs: readonly string[], kernelPath: string, debugconPath: string): string[] {
  return [
    ...accelArgs,
    '-display', 'none', '-nodefaults', '-no-reboot', '-m', '64',
    '-kernel', kernelPath,
    '-chardev', `file,id=dbg,path=${debugconPath}`,
    '-device', 'isa-debugcon,iobase=0x402,chardev=dbg',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=1',
  ];
}

/** What the debug console shows about how far the guest got, in words; undefined when it got to the end. */
export function explainProbe(run: Pick<ProbeRun, 'debugcon' | 'exitCode' | 'signal' | 'timedOut'>, timeoutMs: number): string | undefined {
  const { debugcon, exitCode, timedOut } = run;
  const probe = debugcon.slice(debugcon.lastIndexOf('\n') + 1);
  if (!timedOut && exitCode === PROBE_EXIT_STATUS && probe.endsWith('PLOK')) return undefined;
  const within = timedOut ? `within ${timeoutMs} ms` : run.signal ? `(QEMU was killed by ${run.signal})` : `(QEMU exited with status ${exitCode})`;
  if (!debugcon.includes('SeaBIOS')) return `the firmware (SeaBIOS) did not start ${within}`;
  if (!probe.includes('P')) return `SeaBIOS ran but did not start the probe kernel ${within}`;
  if (!probe.includes('L')) return `the probe kernel did not reach long mode ${within}`;
  return `the probe reached long mode but did not finish a 20-million-iteration loop ${within}: guest code runs far slower than under TCG (KVM without hardware virtualization behind it)`;
}

const cache = new Map<string, Promise<AcceleratorChoice>>();

/**
 * KVM if it can really run a guest, else TCG. Decided by booting a probe under `-accel kvm`, not by
 * looking at /dev/kvm: here the device exists but a guest kernel hangs. Cached per process.
 */
export function detectAccelerator(options: DetectOptions = {}): Promise<AcceleratorChoice> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const qemuBinary = options.qemuBinary ?? QEMU_BINARY;
  const kvmDevice = options.kvmDevice ?? '/dev/kvm';
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100) {
    return Promise.reject(new Error(`detectAccelerator: timeoutMs must be a whole number of milliseconds >= 100, got ${timeoutMs}`));
  }
  const key = JSON.stringify([timeoutMs, qemuBinary, kvmDevice]);
  let choice = cache.get(key);
  if (!choice) {
    choice = probe(timeoutMs, qemuBinary, kvmDevice);
    // A failure (no QEMU at all) is not cached: installing QEMU and retrying must work.
    choice.catch(() => cache.delete(key));
    cache.set(key, choice);
  }
  return choice;
}

function tcg(reason: string): AcceleratorChoice {
  return { accel: 'tcg', reason, qemuArgs: [...TCG_ARGS] };
}

async function probe(timeoutMs: number, qemuBinary: string, kvmDevice: string): Promise<AcceleratorChoice> {
  await qemuVersion(qemuBinary);
  try {
    await access(kvmDevice, constants.R_OK | constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return tcg(code === 'ENOENT' ? `${kvmDevice} does not exist` : `${kvmDevice} is not usable by this user (${code})`);
  }
  const run = await runAcceleratorProbe(KVM_ARGS, { timeoutMs, qemuBinary });
  const failure = explainProbe(run, timeoutMs);
  if (failure === undefined) return { accel: 'kvm', reason: `a probe guest ran to completion under KVM in ${run.seconds.toFixed(1)} s`, qemuArgs: [...KVM_ARGS] };
  const stderr = firstLine(run.stderr);
  return tcg(`${kvmDevice} exists but KVM cannot run a guest: ${failure}${stderr && !run.timedOut ? `; QEMU said: ${stderr}` : ''}`);
}

export interface ProbeRun {
  exitCode: number | undefined;
  /** Set when QEMU died of a signal (an abort in KVM setup shows as SIGABRT). */
  signal: string | undefined;
  timedOut: boolean;
  /** What the guest wrote to the debug console (SeaBIOS, then the probe's markers). */
  debugcon: string;
  stderr: string;
  seconds: number;
}

/** Boots the probe kernel once with the given accelerator arguments. */
export async function runAcceleratorProbe(accelArgs: readonly string[], options: { timeoutMs: number; qemuBinary?: string }): Promise<ProbeRun> {
  const dir = await mkdtemp(join(tmpdir(), 'boxcar-accel-probe-'));
  try {
    const kernel = join(dir, 'probe.bin');
    const debugcon = join(dir, 'debugcon.log');
    await writeFile(kernel, PROBE_KERNEL);
    const started = Date.now();
    const result = await execa(options.qemuBinary ?? QEMU_BINARY, probeArgs(accelArgs, kernel, debugcon), {
      reject: false,
      timeout: options.timeoutMs,
      forceKillAfterDelay: 1_000,
      stdin: 'ignore',
    });
    return {
      exitCode: result.exitCode,
      signal: result.timedOut ? undefined : result.signal,
      timedOut: result.timedOut,
      debugcon: await readFile(debugcon, 'latin1').catch(() => ''),
      stderr: String(result.stderr ?? ''),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function firstLine(text: unknown): string {
  return typeof text === 'string' ? (text.split('\n').find((line) => line.trim() && !line.includes('warning:')) ?? '').trim() : '';
}

export interface QemuVersion {
  version: string;
  major: number;
  minor: number;
  /** The whole first line, e.g. "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)". */
  text: string;
}

export function parseQemuVersion(output: string): QemuVersion {
  const text = output.split('\n')[0]?.trim() ?? '';
  const match = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) throw new Error(`cannot read a QEMU version from ${JSON.stringify(text)}`);
  return { version: match[3] === undefined ? `${match[1]}.${match[2]}` : `${match[1]}.${match[2]}.${match[3]}`, major: Number(match[1]), minor: Number(match[2]), text };
}

export async function qemuVersion(qemuBinary = QEMU_BINARY): Promise<QemuVersion> {
  try {
    const { stdout } = await execa(qemuBinary, ['--version'], { stdin: 'ignore' });
    return parseQemuVersion(stdout);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${qemuBinary} not found: install the Debian package qemu-system-x86`);
    }
    throw error;
  }
}
