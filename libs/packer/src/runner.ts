import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa, ExecaError } from 'execa';
import { eventText, parseMachineReadableLine, stepOf, type PackerEvent } from './machine-readable.ts';
import { packerPhases, type PhaseSeconds, type TimedStep } from './phases.ts';

export interface PackerRunOptions {
  /** Directory holding the layer's .pkr.json files. */
  templateDir: string;
  varFile: string;
  /** Full log of the run: every machine-readable line, plus stderr. */
  logFile: string;
  /** Passed through: --debug, --on-error=ask, ... (headless/gui is a template variable). */
  extraArgs?: string[];
  env?: Record<string, string>;
  signal?: AbortSignal;
  onStep?: (step: string) => void;
  onLine?: (text: string) => void;
  /** Called with packer's pid once it runs (the bake records it beside the layer lock). */
  onSpawn?: (pid: number) => Promise<void> | void;
  binary?: string;
}

export interface PackerRunResult {
  artifacts: { builder: string; id: string; files: string[] }[];
  seconds: number;
  /** Seconds per phase of the run (phases.ts). */
  phases: PhaseSeconds;
}

export class PackerBuildError extends Error {
  constructor(
    message: string,
    readonly step: string,
    readonly lastLines: string[],
    readonly logFile: string,
    readonly interrupted: boolean,
  ) {
    super(message);
    this.name = 'PackerBuildError';
  }
}

const TAIL = 15;

let setprivChecked: Promise<boolean> | undefined;

/**
 * The command line that runs packer so that it dies with this process. Where util-linux's `setpriv`
 * (2.33+) exists, packer runs under `setpriv --pdeathsig SIGTERM`: setpriv sets the parent-death
 * signal (prctl PR_SET_PDEATHSIG) and execs packer in its place (same pid), so a CLI killed with
 * SIGKILL still makes packer cancel and clean up (its wrapper forwards SIGTERM to the build process,
 * which stops its plugins and the VM; it may come once per thread of the dying process). Without setpriv, packer is spawned directly, and a bake that
 * takes over the layer lock ends an orphan recorded there.
 */
export async function packerCommand(binary: string, args: string[]): Promise<[string, string[]]> {
  setprivChecked ??= execa('setpriv', ['--pdeathsig', 'SIGTERM', 'true'], { reject: false, timeout: 10_000 }).then((result) => result.exitCode === 0);
  return (await setprivChecked) ? ['setpriv', ['--pdeathsig', 'SIGTERM', binary, ...args]] : [binary, args];
}

/** Runs `packer build -machine-readable` on one layer's template directory. */
export async function runPackerBuild(options: PackerRunOptions): Promise<PackerRunResult> {
  await mkdir(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const started = Date.now();
  let step = 'starting packer';
  const steps: TimedStep[] = [];
  const lastLines: string[] = [];
  const artifacts = new Map<string, { builder: string; id: string; files: string[] }>();
  const remember = (text: string) => {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      lastLines.push(line);
      if (lastLines.length > TAIL) lastLines.shift();
    }
  };

  const interactive = (options.extraArgs ?? []).some((arg) => arg === '-debug' || arg === '--debug' || /on-error=ask/.test(arg));
  const args = ['build', '-machine-readable', ...(options.extraArgs ?? []), `-var-file=${options.varFile}`, '.'];
  log.write(`# packer ${args.join(' ')}\n# in ${options.templateDir}\n`);
  const [file, argv] = await packerCommand(options.binary ?? process.env.PACKER_BINARY ?? 'packer', args);
  const subprocess = execa(file, argv, {
    cwd: options.templateDir,
    env: { PACKER_NO_COLOR: '1', CHECKPOINT_DISABLE: '1', ...options.env },
    extendEnv: true,
    // Packer cleans up (stops the VM, removes its output directory) on SIGTERM; its wrapper process
    // ignores a SIGINT that does not come from the terminal.
    cancelSignal: options.signal,
    killSignal: 'SIGTERM',
    forceKillAfterDelay: 120_000,
    stdin: interactive ? 'inherit' : 'ignore',
    reject: false,
    buffer: false,
  });
  try {
    if (subprocess.pid !== undefined) await options.onSpawn?.(subprocess.pid);
  } catch (error) {
    log.write(`# could not record packer's pid ${subprocess.pid}: ${(error as Error).message}\n`);
  }
  subprocess.stderr?.on('data', (chunk: Buffer) => {
    log.write(chunk);
    remember(chunk.toString());
  });

  let failedStep: string | undefined;
  for await (const line of subprocess.iterable({ from: 'stdout' })) {
    log.write(`${line}\n`);
    const event: PackerEvent | undefined = parseMachineReadableLine(String(line));
    if (!event) continue;
    if (event.type === 'artifact') recordArtifact(artifacts, event);
    const text = eventText(event);
    if (!text) continue;
    remember(text);
    options.onLine?.(text.split('\n').filter(Boolean).at(-1) ?? text);
    // The step that failed is the one running when the first error came; Packer's cleanup steps
    // after it ("Deleting output directory...") are not what went wrong.
    if (event.type === 'error' || (event.type === 'ui' && event.data[0] === 'error')) failedStep ??= step;
    const newStep = event.type === 'ui' && event.data[0] === 'say' ? stepOf(text) : undefined;
    if (newStep) {
      step = newStep;
      steps.push({ step, at: (Date.now() - started) / 1000 });
      options.onStep?.(step);
    }
  }
  const result = await subprocess;
  const seconds = (Date.now() - started) / 1000;
  log.write(`# exit ${result.exitCode ?? result.signal} after ${seconds.toFixed(1)} s\n`);
  await new Promise((resolve) => log.end(resolve));
  const interrupted = options.signal?.aborted === true || result.isCanceled === true;
  if (result.failed || result.exitCode !== 0) {
    const cause = interrupted ? 'interrupted' : result instanceof ExecaError ? result.shortMessage : `exit code ${result.exitCode}`;
    const where = failedStep ?? step;
    throw new PackerBuildError(`packer build failed at step "${where}" (${cause})`, where, lastLines, options.logFile, interrupted);
  }
  return { artifacts: [...artifacts.values()], seconds, phases: packerPhases(steps, seconds) };
}

function recordArtifact(artifacts: Map<string, { builder: string; id: string; files: string[] }>, event: PackerEvent): void {
  const [index, kind, ...rest] = event.data;
  const key = `${event.target}#${index}`;
  const artifact = artifacts.get(key) ?? { builder: '', id: '', files: [] };
  if (kind === 'builder-id') artifact.builder = rest.join(',');
  if (kind === 'id') artifact.id = rest.join(',');
  if (kind === 'file') artifact.files.push(rest.slice(1).join(','));
  artifacts.set(key, artifact);
}

/** `packer init` (Packer 1.7+): installs the plugins the template's required_plugins block names. */
export async function initPlugins(templateDir: string, logFile: string, binary = process.env.PACKER_BINARY ?? 'packer'): Promise<void> {
  const [file, argv] = await packerCommand(binary, ['init', '.']);
  const result = await execa(file, argv, { cwd: templateDir, env: { CHECKPOINT_DISABLE: '1' }, reject: false, all: true });
  await mkdir(dirname(logFile), { recursive: true });
  createWriteStream(logFile, { flags: 'a' }).end(`# packer init .\n${result.all ?? ''}\n`);
  if (result.exitCode !== 0) throw new Error(`packer init failed in ${templateDir}: ${String(result.all).trim().split('\n').slice(-3).join(' ')}; log: ${logFile}`);
}

/** `packer validate` of one template directory; returns Packer's complaint on failure. */
export async function validateTemplate(templateDir: string, varFile: string, binary = process.env.PACKER_BINARY ?? 'packer'): Promise<{ ok: boolean; output: string }> {
  const result = await execa(binary, ['validate', `-var-file=${varFile}`, '.'], {
    cwd: templateDir,
    env: { CHECKPOINT_DISABLE: '1' },
    reject: false,
    all: true,
  });
  return { ok: result.exitCode === 0, output: result.all ?? '' };
}
