import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { openStore, type BoxStore } from '@boxcar/box-store';
import { REPO_ROOT } from '@boxcar/model';

// Shared by the fault tests: a throwaway world (store, profiles, build dir, cache, cluster state,
// all under one temp dir), a small synthetic profile, the product CLI, and store checks.

/** The installed entry point (`boxcar` on PATH): a wrapper that runs src/main.ts through tsx. */
export const BOXCAR = join(REPO_ROOT, 'apps', 'cli', 'bin', 'boxcar.mjs');
/** The CLI itself, run as `npm run boxcar` does: one node process with the tsx loader. */
const CLI_SOURCE = [process.execPath, '--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, join(REPO_ROOT, 'apps', 'cli', 'src', 'main.ts')];
/** TEST DOUBLE for Packer 1.6.6 at the process boundary; see the header of the script. */
export const PACKER_DOUBLE = fileURLToPath(new URL('./fixtures/packer-double', import.meta.url));
export const PROFILE = 'faults';

export interface World {
  root: string;
  storeDir: string;
  storeUrl: string;
  profiles: string;
  buildDir: string;
  /** XDG_CACHE_HOME: work dirs, artifact cache, base images. */
  cache: string;
  stateDir: string;
  /** Where the packer double writes one JSON line per start, signal and exit. */
  record: string;
  env: Record<string, string>;
  /** Process groups started in it (startBoxcar): removeWorld ends what is left of them. */
  groups: number[];
}

export interface ProfileOptions {
  /** Lock entries for the artifacts of the "node" layer. */
  artifacts?: { id: string; url: string; sha256: string; size: number }[];
  /** layers.json "checks" by layer name. */
  checks?: Record<string, unknown>;
}

/** A temp world; `storeDir` may be given (a tmpfs mount). Every path the product writes to is inside it. */
export function makeWorld(options: ProfileOptions & { storeDir?: string } = {}): World {
  const root = mkdtempSync(join(tmpdir(), 'boxcar-faults-'));
  const storeDir = options.storeDir ?? join(root, 'store');
  const world: World = {
    root,
    storeDir,
    storeUrl: pathToFileURL(storeDir).href,
    profiles: join(root, 'profiles'),
    buildDir: join(root, 'build'),
    cache: join(root, 'cache'),
    stateDir: join(root, 'state'),
    record: join(root, 'packer-double.jsonl'),
    env: {},
    groups: [],
  };
  world.env = {
    BOXCAR_STORE: world.storeUrl,
    BOXCAR_PROFILES_DIR: world.profiles,
    BOXCAR_BUILD_DIR: world.buildDir,
    BOXCAR_STATE_DIR: world.stateDir,
    XDG_CACHE_HOME: world.cache,
    // The baker's bootstrap key: with the baker, never in the store (bakers sharing a store share it).
    BOXCAR_BOOTSTRAP_KEY: join(root, 'baker', 'bootstrap_ed25519'),
    BOXCAR_ARTIFACT_CACHE: '',
    BOXCAR_ARTIFACT_MIRROR: '',
    PACKER_BINARY: PACKER_DOUBLE,
    PACKER_DOUBLE_RECORD: world.record,
    PACKER_DOUBLE: '{}',
  };
  writeProfile(world.profiles, options);
  return world;
}

export function removeWorld(world: World): void {
  for (const pid of world.groups) killGroup(pid);
  rmSync(world.root, { recursive: true, force: true });
}

/**
 * The "faults" profile: lab's profile.json under another name, and four layers shaped like lab's
 * (base -> node -> master (box), node -> worker (box)) whose scripts are never run (the packer double
 * only names them), so only their content matters: it is part of the layer keys.
 */
function writeProfile(profilesDir: string, options: ProfileOptions = {}): void {
  const dir = join(profilesDir, PROFILE);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  const lab = JSON.parse(readFileSync(join(REPO_ROOT, 'images', 'profiles', 'lab', 'profile.json'), 'utf8'));
  const profile = { ...lab, name: PROFILE, description: 'Fault tests: lab with other layers', boxes: { master: 'boxcar/faults-master', worker: 'boxcar/faults-worker' } };
  writeFileSync(join(dir, 'profile.json'), `${JSON.stringify(profile, null, 2)}\n`);
  for (const script of ['base.sh', 'node.sh', 'role.sh', 'cleanup.sh']) {
    writeFileSync(join(dir, 'scripts', script), `#!/bin/bash\nset -euo pipefail\necho "${script} of the fault-test profile"\n`);
  }
  const artifacts = options.artifacts ?? [];
  const layers = {
    layers: [
      {
        name: 'base',
        description: 'debootstrap root (pre-published by the tests: no base image is built)',
        source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian', variant: 'minbase' },
        scripts: ['scripts/base.sh'],
      },
      { name: 'node', description: 'every node', parent: 'base', artifacts: artifacts.map((a) => a.id), scripts: ['scripts/node.sh'] },
      { name: 'master', description: 'master box', parent: 'node', env: { BOXCAR_ROLE: 'master' }, scripts: ['scripts/role.sh', 'scripts/cleanup.sh'], box: { role: 'master', description: 'fault-test master' } },
      { name: 'worker', description: 'worker box', parent: 'node', env: { BOXCAR_ROLE: 'worker' }, scripts: ['scripts/role.sh', 'scripts/cleanup.sh'], box: { role: 'worker', description: 'fault-test worker' } },
    ],
  };
  for (const layer of layers.layers) if (options.checks?.[layer.name]) Object.assign(layer, { checks: options.checks[layer.name] });
  writeFileSync(join(dir, 'layers.json'), `${JSON.stringify(layers, null, 2)}\n`);
  const lock = { lockVersion: 1, artifacts: artifacts.map((a) => ({ ...a, kind: 'deb', upstreamGone: false })) };
  writeFileSync(join(dir, 'artifacts.lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
}

export interface CliResult {
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** The product CLI, as a user runs it, in the world's environment. */
export async function boxcar(world: World, args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  const started = Date.now();
  const result = await execa(process.execPath, [BOXCAR, ...args], { env: { ...world.env, ...extraEnv }, cwd: world.root, reject: false, timeout: timeoutMs, stdin: 'ignore' });
  return { exitCode: result.exitCode, signal: result.signal, stdout: String(result.stdout), stderr: String(result.stderr), seconds: (Date.now() - started) / 1000 };
}

/**
 * The CLI in its own process group, as a shell runs a foreground job: Ctrl-C in a terminal sends
 * SIGINT to the whole group (the CLI, the packer wrapper and the build process). `entry` "source" is
 * `npm run boxcar` (one node process), "bin" the installed apps/cli/bin/boxcar.mjs.
 */
export function startBoxcar(world: World, args: string[], extraEnv: Record<string, string> = {}, entry: 'source' | 'bin' = 'source'): ResultPromise<{ reject: false; detached: true }> {
  const [file, ...prefix] = entry === 'source' ? CLI_SOURCE : [process.execPath, BOXCAR];
  const cli = execa(file!, [...prefix, ...args], { env: { ...world.env, ...extraEnv }, cwd: world.root, reject: false, detached: true, stdin: 'ignore' }) as ResultPromise<{ reject: false; detached: true }>;
  if (cli.pid !== undefined) world.groups.push(cli.pid);
  return cli;
}

/** Ends whatever is left of a process group this test started (never anything else). */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Every process whose command line mentions `path` (e.g. a test's temp dir): proves what runs. */
export async function processesMentioning(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (argv.includes(path)) found.push(`${entry}: ${argv.split('\0').join(' ').trim()}`);
  }
  return found;
}

export interface BakeJson {
  plan: { layers: { layer: string; key: string; status: string; reasons: string[]; inputs: unknown }[] };
  result?: {
    built: { layer: string; box?: { name: string; version: string } }[];
    cached: string[];
    skipped: string[];
    packerRuns: number;
    failed?: { layer: string; error: string };
  };
}

export function bakeJson(result: CliResult): BakeJson {
  try {
    return JSON.parse(result.stdout) as BakeJson;
  } catch {
    throw new Error(`boxcar images bake printed no JSON (exit ${result.exitCode ?? result.signal}):\n${result.stdout}\n${result.stderr}`);
  }
}

/**
 * Publishes the root layer "base" under the key the bake plans for it, so that bakes start at
 * "node": the store state after an earlier bake (or a pull from a team store). Its disk is a small
 * real qcow2; the packer double only copies it.
 */
export async function prepublishBase(world: World): Promise<{ keys: Record<string, string> }> {
  const dry = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--dry-run', '--json']);
  const plan = bakeJson(dry).plan;
  const base = plan.layers.find((layer) => layer.layer === 'base')!;
  await publishBase(world, base.key, base.inputs);
  return { keys: Object.fromEntries(plan.layers.map((layer) => [layer.layer, layer.key])) };
}

/** The root layer "base" in the store under `key`. */
export async function publishBase(world: World, key: string, inputs: unknown): Promise<void> {
  const disk = join(world.root, 'base-disk');
  mkdirSync(disk, { recursive: true });
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', join(disk, 'disk.qcow2'), '16M']);
  const store = await openStore(world.storeUrl);
  await store.publishLayer(PROFILE, 'base', key, disk, { inputs, builder: 'qemu', parent: null, note: 'pre-published by the fault tests' });
  rmSync(disk, { recursive: true, force: true });
}

export interface DoubleEvent {
  time: number;
  pid: number;
  role: 'wrapper' | 'build';
  event: 'start' | 'signal' | 'exit' | 'hang' | 'gate';
  layer?: string;
  signal?: string;
  code?: number;
  step?: string;
}

export function doubleEvents(world: World): DoubleEvent[] {
  if (!existsSync(world.record)) return [];
  return readFileSync(world.record, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as DoubleEvent);
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every file under `dir` with its sha256 (relative paths), to compare a store before and after. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else files[relative(dir, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

/** Paths of abandoned or in-progress writes (`.tmp-` names) under the store. */
export function tempEntries(storeDir: string): string[] {
  const found: string[] = [];
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.name.startsWith('.tmp-') || entry.name.includes('.tmp')) found.push(relative(storeDir, path));
      else if (entry.isDirectory()) walk(path);
    }
  };
  if (existsSync(storeDir)) walk(storeDir);
  return found;
}

/**
 * The store is whole: every catalog parses, every listed box verifies (size and sha256), every
 * published layer verifies against its layer.json, no key appears twice in a catalog, and nothing
 * half-written is left. Returns what it checked.
 */
export async function verifyStore(storeUrl: string, profile = PROFILE): Promise<{ boxes: Record<string, string[]>; layers: string[] }> {
  const store: BoxStore = await openStore(storeUrl);
  const boxes: Record<string, string[]> = {};
  for (const box of await store.listBoxes()) {
    const keys = box.versions.map((version) => version.key);
    if (new Set(keys).size !== keys.length) throw new Error(`${box.name}: a content key appears in more than one version: ${keys.join(', ')}`);
    for (const version of box.versions) {
      for (const provider of version.providers) await store.verifyBox(box.name, version.version, provider.name);
    }
    boxes[box.name] = box.versions.map((version) => version.version);
  }
  const layers: string[] = [];
  const layersRoot = join(fileURLToPath(storeUrl), 'layers', profile);
  for (const layer of existsSync(layersRoot) ? readdirSync(layersRoot) : []) {
    for (const key of readdirSync(join(layersRoot, layer))) {
      await store.layerFiles(profile, layer, key);
      layers.push(`${layer}/${key}`);
    }
  }
  const leftovers = tempEntries(fileURLToPath(storeUrl));
  if (leftovers.length) throw new Error(`store ${storeUrl} holds leftovers of interrupted writes: ${leftovers.join(', ')}`);
  return { boxes, layers };
}

/** What a whole store holds (verifyStore): the number of versions of each box, and the published layers by name. */
export async function storeContents(world: World): Promise<{ versionsPerBox: number[]; layers: string[] }> {
  const checked = await verifyStore(world.storeUrl);
  return { versionsPerBox: Object.values(checked.boxes).map((versions) => versions.length), layers: checked.layers.map((layer) => layer.split('/')[0]!).sort() };
}

/** Work dirs of bakes under the world's cache (each layer bakes in work/<profile>/<layer>-<key>). */
export function workDirs(world: World): string[] {
  const dir = join(world.cache, 'boxcar', 'work', PROFILE);
  return existsSync(dir) ? readdirSync(dir).filter((name) => !name.startsWith('.')) : [];
}
