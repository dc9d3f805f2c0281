import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { fetchAll, type LockEntry } from '@boxcar/artifacts';
import { sha256File } from '@boxcar/kit';
import { buildKeyInputs } from '@boxcar/layers';
import { NATIVE_BUILD_SCRIPT, type BuildStage } from '@boxcar/model';

// A build stage of the bake (a compile, at native speed, never under an emulated CPU), as osbuild runs its
// stages: keyed by the hash of its inputs, its outputs kept under that key and reused by every later
// bake on this machine. The stage runs in images/build/native-build.sh (a chroot of pinned Debian
// packages, no network); this module prepares its inputs, runs it and records what it made.

/** What a finished build leaves beside its outputs (build.json). */
export interface BuildRecord {
  name: string;
  key: string;
  /** The key's inputs, for "why does this build run" next time. */
  inputs: Record<string, unknown>;
  /** sha256 of every output, by its path under the output folder. */
  outputs: Record<string, { sha256: string; size: number }>;
  seconds: number;
  /** Seconds per step the script reported ("built kubelet in 512s"). */
  steps: Record<string, number>;
  finishedAt: string;
}

export function buildOutputDir(cache: string, stage: Pick<BuildStage, 'name' | 'key'>): string {
  return join(cache, `${stage.name}-${stage.key}`);
}

/** The record of the stage's build under its key, when this machine has it. */
export async function readBuildRecord(cache: string, stage: Pick<BuildStage, 'name' | 'key'>): Promise<BuildRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(buildOutputDir(cache, stage), 'build.json'), 'utf8')) as BuildRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`build ${stage.name}: cannot read ${join(buildOutputDir(cache, stage), 'build.json')}: ${(error as Error).message}`, { cause: error });
  }
}

/** Why a stage builds: what changed since the newest build of the same name on this machine. */
export async function buildReasons(cache: string, stage: BuildStage): Promise<string[]> {
  const previous = await newestRecord(cache, stage.name);
  if (!previous) return ['never built'];
  const current = buildKeyInputs(stage);
  const reasons: string[] = [];
  const before = previous.inputs as Record<string, unknown>;
  for (const field of Object.keys({ ...before, ...current }).sort()) {
    const a = before[field];
    const b = current[field];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (isRecord(a) && isRecord(b) && ['helpers', 'patches', 'artifacts'].includes(field)) {
      for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        if (a[name] !== b[name]) reasons.push(`${SINGULAR[field]} ${name} ${a[name] === undefined ? 'added' : b[name] === undefined ? 'removed' : 'changed'}`);
      }
    } else reasons.push(`${field} changed`);
  }
  return reasons;
}

async function newestRecord(cache: string, name: string): Promise<BuildRecord | undefined> {
  let entries: string[];
  try {
    entries = await readdir(cache);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const records: BuildRecord[] = [];
  for (const entry of entries.filter((candidate) => candidate.startsWith(`${name}-`) && !candidate.startsWith('.'))) {
    const record = await readBuildRecord(cache, { name, key: entry.slice(name.length + 1) });
    if (record) records.push(record);
  }
  return records.sort((a, b) => a.finishedAt.localeCompare(b.finishedAt)).at(-1);
}

export interface RunBuildOptions {
  cache: string;
  artifactCache: string;
  lock: LockEntry[];
  /** images/profiles/<profile>: where the stage's script, helpers and patches are. */
  profileDir: string;
  logFile: string;
  mirror?: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}

/**
 * Builds the stage into the cache (nothing is written under its key unless the build succeeded and left
 * every declared output) and returns its record. A stage already built under its key is not rebuilt.
 */
export async function runBuildStage(stage: BuildStage, options: RunBuildOptions): Promise<BuildRecord & { cached: boolean }> {
  const existing = await readBuildRecord(options.cache, stage);
  if (existing) return { ...existing, cached: true };
  const entries = options.lock.filter((entry) => stage.artifacts.some((artifact) => artifact.id === entry.id));
  const fetched = await fetchAll(entries, { cacheDir: options.artifactCache, mirror: options.mirror, signal: options.signal });

  const final = buildOutputDir(options.cache, stage);
  const work = join(options.cache, `.work-${stage.name}-${stage.key.slice(0, 16)}`);
  await rm(work, { recursive: true, force: true });
  const inputs = join(work, 'artifacts');
  const helpers = join(work, 'helpers');
  const output = join(work, 'output');
  await mkdir(inputs, { recursive: true });
  await mkdir(helpers, { recursive: true });
  // Symlinks into the artifact cache: the runner copies what they point at into the build root.
  for (const entry of entries) await symlink(fetched.get(entry.id)!, join(inputs, stage.artifacts.find((a) => a.id === entry.id)!.filename));
  for (const helper of stage.helpers) await symlink(helper.absolute, join(helpers, helper.path.split('/').at(-1)!));
  const patches = stage.patches.dir ? join(options.profileDir, stage.patches.dir) : join(work, 'no-patches');
  await mkdir(patches, { recursive: true });

  const args = [
    NATIVE_BUILD_SCRIPT,
    '--script', stage.script.absolute,
    '--artifacts', inputs,
    '--patches', patches,
    '--helpers', helpers,
    '--output', output,
    '--suite', stage.root.suite,
    '--mirror', stage.root.mirror,
    '--include', stage.root.include.join(','),
    ...Object.entries(stage.env).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
    // The compiler's own cache, per stage and build root: it only makes a rebuild after a small patch fast.
    '--cache', join(options.cache, '.compiler-cache', `${stage.name}-${stage.root.suite}`),
  ];
  const asRoot = process.getuid?.() === 0;
  const [command, commandArgs] = asRoot ? ['bash', args] : ['sudo', ['-n', 'bash', ...args]];
  await mkdir(dirname(options.logFile), { recursive: true });
  const log = createWriteStream(options.logFile);
  const started = Date.now();
  const steps: Record<string, number> = {};
  const tail: string[] = [];
  const child = execa(command, commandArgs, { all: true, reject: false, stdin: 'ignore', ...(options.signal ? { cancelSignal: options.signal } : {}) });
  for await (const line of child.iterable({ from: 'all' })) {
    log.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 20) tail.shift();
    const built = /built (\S+) in (\d+)s/.exec(line);
    if (built) steps[built[1]!] = Number(built[2]);
    options.onLine?.(line);
  }
  const result = await child;
  await new Promise<void>((done, fail) => log.end((error?: Error | null) => (error ? fail(error) : done())));
  try {
    if (result.isCanceled) throw new Error(`build ${stage.name}: interrupted; log: ${options.logFile}`);
    if (result.exitCode !== 0) throw new Error(`build ${stage.name}: the build script exited with status ${result.exitCode}; log: ${options.logFile}\n${tail.join('\n')}`);
    const outputs: BuildRecord['outputs'] = {};
    const missing: string[] = [];
    for (const name of stage.outputs) {
      const path = join(output, name);
      if (!existsSync(path) || !(await stat(path)).isFile()) missing.push(name);
      else outputs[name] = await sha256File(path);
    }
    if (missing.length) throw new Error(`build ${stage.name}: the script did not leave ${missing.join(', ')} (outputs declared in layers.json); log: ${options.logFile}`);
    const record: BuildRecord = {
      name: stage.name,
      key: stage.key,
      inputs: buildKeyInputs(stage),
      outputs,
      seconds: (Date.now() - started) / 1000,
      steps,
      finishedAt: new Date().toISOString(),
    };
    await writeFile(join(output, 'build.json'), `${JSON.stringify(record, null, 2)}\n`);
    await rm(final, { recursive: true, force: true });
    await rename(output, final);
    return { ...record, cached: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const SINGULAR: Record<string, string> = { helpers: 'helper', patches: 'patch', artifacts: 'artifact' };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
