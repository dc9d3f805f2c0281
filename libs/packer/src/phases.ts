// Where a layer's bake time goes, from the steps Packer announced (`==> build.type.source: ...`) and
// when each began. Only the layer's provisioning is the layer's own work: the rest is what the bake
// pays around it, and what `nx run e2e:bench` prints per layer.

export const BAKE_PHASES = ['boot', 'provisioning', 'shutdown', 'disk conversion', 'box packaging', 'publishing'] as const;
export type BakePhase = (typeof BAKE_PHASES)[number];
export type PhaseSeconds = Partial<Record<BakePhase, number>>;

export interface TimedStep {
  step: string;
  /** Seconds since packer started. */
  at: number;
}

/** The phase a step starts, or undefined for a step that continues the current phase. */
function phaseOf(step: string): BakePhase | undefined {
  if (/^Connected to SSH/i.test(step) || /^Provisioning with/i.test(step)) return 'provisioning';
  if (/halting|shutdown|shutting down|Stopping virtual machine/i.test(step)) return 'shutdown';
  if (/^Converting hard drive|^Compacting|^Exporting virtual machine/i.test(step)) return 'disk conversion';
  if (/post-processor|Creating (a dummy )?Vagrant box|^Compressing/i.test(step)) return 'box packaging';
  return undefined;
}

/**
 * Seconds per phase of one packer run: everything before SSH answers is boot (copying the parent,
 * starting the VM, waiting for SSH); a phase runs until the next phase's first step or the end.
 */
export function packerPhases(steps: readonly TimedStep[], totalSeconds: number): PhaseSeconds {
  const phases: PhaseSeconds = {};
  let current: BakePhase = 'boot';
  let since = 0;
  for (const { step, at } of steps) {
    const next = phaseOf(step);
    if (next === undefined || next === current) continue;
    phases[current] = (phases[current] ?? 0) + (at - since);
    current = next;
    since = at;
  }
  phases[current] = (phases[current] ?? 0) + Math.max(0, totalSeconds - since);
  return phases;
}
