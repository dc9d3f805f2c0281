import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TerraformPlanJson } from './plan-summary.ts';

// The one runner of terraform (or tofu) for a synthesized stack: init, plan to a file, read that
// plan back as JSON, apply it, destroy, list the state. Every command's whole output goes to a log
// file per command; apply's and destroy's (the provisioners' progress) also to the caller's stream.
// A failure names the log and shows its last lines. Nothing here decides what the stack should be.

/** terraform or tofu, as TERRAFORM_BINARY_NAME (cdktf's variable) chooses, else whichever is installed. */
export async function terraformBinary(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const candidates = env.TERRAFORM_BINARY_NAME ? [env.TERRAFORM_BINARY_NAME] : ['terraform', 'tofu'];
  for (const binary of candidates) {
    const probe = await execa(binary, ['version'], { reject: false, env: { CHECKPOINT_DISABLE: '1' } });
    if (probe.exitCode === 0) return binary;
  }
  return undefined;
}

export class TerraformError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly logFile: string,
  ) {
    super(message);
    this.name = 'TerraformError';
  }
}

export interface TerraformRunnerOptions {
  binary: string;
  /** The synthesized stack: cdktf.out/stacks/<name>. */
  stackDir: string;
  /** Full output of each command: <logDir>/terraform-<command>.log. */
  logDir: string;
  /** Where apply's and destroy's output goes as it comes (the provisioners' progress, for the user). */
  output?: NodeJS.WritableStream;
  env?: Record<string, string>;
}

/** The plan file `plan` writes and `apply` applies, so that what was shown is what is applied. */
export const PLAN_FILE = 'boxcar.tfplan';

export function terraformRunner(options: TerraformRunnerOptions) {
  const env = { TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_INPUT: '0', ...options.env };

  /** `live`: the output also goes to options.output as it comes; `capture`: stdout is returned, not logged. */
  async function run(command: string, args: string[], mode: { live?: boolean; capture?: boolean } = {}): Promise<string> {
    const capture = mode.capture ?? false;
    const tail: string[] = [];
    await mkdir(options.logDir, { recursive: true });
    const logFile = join(options.logDir, `terraform-${command}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    log.write(`\n=== ${new Date().toISOString()} ${options.binary} ${args.join(' ')}\n`);
    const child = execa(options.binary, args, { cwd: options.stackDir, env, reject: false, stdin: 'ignore', buffer: { stdout: capture, stderr: false }, stdout: 'pipe', stderr: 'pipe' });
    // While terraform runs, a Ctrl-C reaches it directly (same process group) and it shuts down
    // gracefully; a signal sent to this process alone is passed on. Either way this process waits.
    const forward = (signal: NodeJS.Signals) => child.kill(signal === 'SIGTERM' ? 'SIGINT' : signal);
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    signals.forEach((signal) => process.on(signal, forward));
    const keep = (chunk: Buffer) => {
      if (mode.live) options.output?.write(chunk);
      log.write(chunk);
      tail.push(...chunk.toString().split('\n').filter((line) => line.trim()));
      tail.splice(0, Math.max(0, tail.length - 15));
    };
    if (!capture) child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const result = await child;
    signals.forEach((signal) => process.off(signal, forward));
    log.write(`=== exit ${result.exitCode ?? result.signal}\n`);
    await new Promise((resolve) => log.end(resolve));
    if (result.exitCode !== 0) {
      const last = mode.live ? '' : `\n${tail.map((line) => `  ${line}`).join('\n')}`;
      throw new TerraformError(`${options.binary} ${command} failed (exit ${result.exitCode ?? result.signal}) in ${options.stackDir}; full log: ${logFile}${last}`, result.exitCode ?? 1, logFile);
    }
    return capture ? String(result.stdout) : '';
  }

  return {
    binary: options.binary,
    init: () => run('init', ['init', '-input=false', '-no-color']).then(() => undefined),
    /** Writes the plan to PLAN_FILE and returns it as terraform's JSON. */
    async plan(extra: string[] = []): Promise<TerraformPlanJson> {
      await run('plan', ['plan', '-input=false', '-no-color', `-out=${PLAN_FILE}`, ...extra]);
      return JSON.parse(await run('show', ['show', '-json', '-no-color', PLAN_FILE], { capture: true })) as TerraformPlanJson;
    },
    /** Applies exactly the plan `plan` wrote. */
    apply: () => run('apply', ['apply', '-input=false', '-no-color', '-auto-approve', PLAN_FILE], { live: true }).then(() => undefined),
    destroy: () => run('destroy', ['destroy', '-input=false', '-no-color', '-auto-approve'], { live: true }).then(() => undefined),
    /**
     * Addresses in the state, as `terraform state list` prints them; none before the first apply (read
     * with `show -json`, which answers an empty state where `state list` fails).
     */
    async stateList(): Promise<string[]> {
      const shown = JSON.parse(await run('show-state', ['show', '-json', '-no-color'], { capture: true })) as { values?: { root_module?: { resources?: { address: string }[] } } };
      return (shown.values?.root_module?.resources ?? []).map((resource) => resource.address).sort();
    },
  };
}

export type TerraformRunner = ReturnType<typeof terraformRunner>;
