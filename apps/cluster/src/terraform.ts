import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TerraformPlanJson } from './plan-summary.ts';

// The one runner of terraform (or tofu) for a synthesized stack: init, plan to a file, read that
// plan back as JSON, apply it, destroy, list the state. Output goes to the caller's stream and to a
// log file per command; nothing here decides what the stack should be.

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
  /** Where terraform's own output goes as it comes (progress for the user). */
  output?: NodeJS.WritableStream;
  env?: Record<string, string>;
}

/** The plan file `plan` writes and `apply` applies, so that what was shown is what is applied. */
export const PLAN_FILE = 'boxcar.tfplan';

export function terraformRunner(options: TerraformRunnerOptions) {
  const env = { TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_INPUT: '0', ...options.env };

  async function run(command: string, args: string[], capture = false): Promise<string> {
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
    if (!capture) child.stdout?.on('data', (chunk: Buffer) => { options.output?.write(chunk); log.write(chunk); });
    child.stderr?.on('data', (chunk: Buffer) => { options.output?.write(chunk); log.write(chunk); });
    const result = await child;
    signals.forEach((signal) => process.off(signal, forward));
    log.write(`=== exit ${result.exitCode ?? result.signal}\n`);
    await new Promise((resolve) => log.end(resolve));
    if (result.exitCode !== 0) {
      throw new TerraformError(`${options.binary} ${command} failed (exit ${result.exitCode ?? result.signal}) in ${options.stackDir}; full log: ${logFile}`, result.exitCode ?? 1, logFile);
    }
    return capture ? String(result.stdout) : '';
  }

  return {
    binary: options.binary,
    init: () => run('init', ['init', '-input=false', '-no-color']).then(() => undefined),
    /** Writes the plan to PLAN_FILE and returns it as terraform's JSON. */
    async plan(extra: string[] = []): Promise<TerraformPlanJson> {
      await run('plan', ['plan', '-input=false', '-no-color', `-out=${PLAN_FILE}`, ...extra]);
      return JSON.parse(await run('show', ['show', '-json', '-no-color', PLAN_FILE], true)) as TerraformPlanJson;
    },
    /** Applies exactly the plan `plan` wrote. */
    apply: () => run('apply', ['apply', '-input=false', '-no-color', '-auto-approve', PLAN_FILE]).then(() => undefined),
    destroy: () => run('destroy', ['destroy', '-input=false', '-no-color', '-auto-approve']).then(() => undefined),
    /** Addresses in the state, as `terraform state list` prints them. */
    async stateList(): Promise<string[]> {
      return (await run('state', ['state', 'list'], true)).split('\n').map((line) => line.trim()).filter(Boolean);
    },
  };
}

export type TerraformRunner = ReturnType<typeof terraformRunner>;
