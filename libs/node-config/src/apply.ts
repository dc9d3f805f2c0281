import { sha256Hex, shellQuote } from '@boxcar/kit';
import { GUEST } from './guest-layout.ts';
import type { ApplyResult, Exec, NodePlan, PlanFile, Step, StepEvent } from './types.ts';

export interface ApplyOptions {
  onStep?: (event: StepEvent) => void;
}

/**
 * Brings a node to its plan. A file is written only when its content, mode or owner differ on the node
 * (temp file + rename, so that a reader never sees half a file); a step's onlyIfChanged commands run only
 * when one of its files changed. Applying the same plan twice changes nothing the second time.
 *
 * If a step's files changed but its commands did not finish (a failed restart), a marker on the node makes
 * the next run run them again even though the files are now current.
 */
export async function applyPlan(plan: NodePlan, exec: Exec, options: ApplyOptions = {}): Promise<ApplyResult> {
  checkPlan(plan);
  const result: ApplyResult = { changedFiles: [], ranCommands: [] };
  for (const step of plan.steps) {
    options.onStep?.({ phase: 'start', step });
    const run: Run = (what, command, input) =>
      exec(command, input).catch((error: unknown) => {
        throw new Error(`node ${plan.node}, step "${step.id}": ${what} failed: ${(error as Error).message}`, { cause: error });
      });
    const done = await applyStep(step, run);
    result.changedFiles.push(...done.changedFiles);
    result.ranCommands.push(...done.ranCommands);
    options.onStep?.({ phase: 'done', step, ...done });
  }
  return result;
}

type Run = (what: string, command: string, input?: string | Uint8Array) => Promise<{ stdout: string }>;

async function applyStep(step: Step, run: Run): Promise<ApplyResult> {
  const marker = `${GUEST.pendingDir}/${step.id}`;
  const tracked = step.onlyIfChanged === true && step.commands.length > 0;
  const state = step.files.length > 0 || tracked ? await remoteState(step, tracked ? marker : undefined, run) : { files: [], pending: false };
  const stale = step.files.filter((file, index) => !isCurrent(file, state.files[index]));

  if (tracked && stale.length > 0) await run('marking the step pending', `mkdir -p ${shellQuote(GUEST.pendingDir)} && touch ${shellQuote(marker)}`);
  for (const file of stale) await run(`writing ${file.path}`, writeCommand(file), file.content);

  const ranCommands: string[] = [];
  if (!step.onlyIfChanged || stale.length > 0 || state.pending) {
    for (const command of step.commands) {
      await run(`command ${JSON.stringify(command)}`, `set -euo pipefail\n${command}`);
      ranCommands.push(command);
    }
    if (tracked) await run('clearing the pending mark', `rm -f ${shellQuote(marker)}`);
  }
  return { changedFiles: stale.map((file) => file.path), ranCommands };
}

interface RemoteFile {
  sha256: string;
  mode: number;
  owner: string;
}

/** One round trip per step: hash, mode and owner of each file, and whether the step is pending. */
async function remoteState(step: Step, marker: string | undefined, run: Run): Promise<{ files: (RemoteFile | undefined)[]; pending: boolean }> {
  const script = [
    `state() { if [ -f "$1" ] && [ ! -L "$1" ]; then h=$(sha256sum < "$1"); echo "\${h%% *} $(stat -c '%a %U:%G' "$1")"; else echo missing; fi; }`,
    ...step.files.map((file) => `state ${shellQuote(file.path)}`),
    marker ? `if [ -e ${shellQuote(marker)} ]; then echo pending; else echo clean; fi` : 'echo clean',
  ].join('\n');
  const lines = (await run('checking the files', script)).stdout.trim().split('\n');
  if (lines.length !== step.files.length + 1) throw new Error(`unexpected answer to the file check:\n${lines.join('\n')}`);
  return {
    files: lines.slice(0, -1).map((line) => {
      const [sha256, mode, owner] = line.split(' ');
      return line === 'missing' || !sha256 || !mode || !owner ? undefined : { sha256, mode: parseInt(mode, 8), owner };
    }),
    pending: lines.at(-1) === 'pending',
  };
}

function isCurrent(file: PlanFile, remote: RemoteFile | undefined): boolean {
  return (
    remote !== undefined &&
    remote.sha256 === sha256Hex(file.content) &&
    remote.mode === parseInt(file.mode, 8) &&
    remote.owner === ownerOf(file)
  );
}

const ownerOf = (file: PlanFile): string => file.owner ?? 'root:root';

/** Content arrives on stdin into a temp file beside the target (mode 600 from mktemp), then replaces it. */
function writeCommand(file: PlanFile): string {
  return [
    'set -euo pipefail',
    `target=${shellQuote(file.path)}`,
    'dir=$(dirname "$target")',
    'mkdir -p "$dir"',
    'tmp=$(mktemp "$dir/.boxcar.XXXXXX")',
    `trap 'rm -f "$tmp"' EXIT`,
    'cat > "$tmp"',
    `chown ${shellQuote(ownerOf(file))} "$tmp"`,
    `chmod ${file.mode} "$tmp"`,
    'mv -f "$tmp" "$target"',
    'trap - EXIT',
  ].join('\n');
}

function checkPlan(plan: NodePlan): void {
  const ids = new Set<string>();
  plan.steps.forEach((step, s) => {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(step.id)) throw new Error(`plan.steps[${s}].id: ${JSON.stringify(step.id)} must be lowercase letters, digits and '-'`);
    if (ids.has(step.id)) throw new Error(`plan.steps[${s}].id: "${step.id}" appears twice`);
    ids.add(step.id);
    step.files.forEach((file, f) => {
      const at = `plan.steps[${s}] (${step.id}).files[${f}]`;
      if (!/^\/[^\0\n]*[^/]$/.test(file.path)) throw new Error(`${at}.path: ${JSON.stringify(file.path)} must be an absolute file path`);
      if (!/^0?[0-7]{3}$/.test(file.mode)) throw new Error(`${at}.mode: ${JSON.stringify(file.mode)} must be octal permission bits such as "0644"`);
      if (file.owner !== undefined && !/^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$/.test(file.owner)) {
        throw new Error(`${at}.owner: ${JSON.stringify(file.owner)} must be "user:group"`);
      }
    });
  });
}
