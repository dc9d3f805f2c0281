import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { acquireLock, atomicWriteFile, unlessMissing } from '@boxcar/kit';
import { findNode, type Cluster } from '@boxcar/model';
import { isVagrantProvider, type VagrantProviderName } from './vagrantfile.ts';

// Runs Vagrant for one cluster: the generated Vagrantfile lives in the state dir
// (.cluster/<name>/vagrant), so do Vagrant's machine records (.vagrant/) and a full log per command.

export interface VagrantRunOptions {
  /** Where the Vagrantfile, Vagrant's .vagrant/ and logs/ live: .cluster/<name>/vagrant. */
  stateDir: string;
  /** Written to <stateDir>/Vagrantfile (only when it changed) before the command runs. */
  vagrantfileText?: string;
  /** On top of this process's environment: VAGRANT_HOME (the box directory) and the like. */
  env?: Record<string, string>;
  /** Run vagrant inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Every output line, as it comes. */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface VagrantUpOptions extends VagrantRunOptions {
  vagrantfileText: string;
}

export interface VagrantRunResult {
  seconds: number;
  logFile: string;
}

export interface VagrantMachineStatus {
  /** Vagrant's state id: running, not_created, shutoff, poweroff, saved, ... */
  state: string;
  provider: string;
}

export interface VagrantSshConfig {
  host: string;
  port: number;
  user: string;
  keyFile: string;
}

export class VagrantError extends Error {
  constructor(
    message: string,
    readonly logFile: string,
    readonly exitCode?: number,
  ) {
    super(message);
    this.name = 'VagrantError';
  }
}

/** What every run sets: no phoning home, no update checks, no colour codes in the logs. */
export const VAGRANT_BASE_ENV: Readonly<Record<string, string>> = {
  VAGRANT_CHECKPOINT_DISABLE: '1',
  VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1',
  VAGRANT_NO_COLOR: '1',
};

/** `vagrant up <node> --provider <p>`; the box is added from its catalog the first time. */
export async function vagrantNodeUp(cluster: Cluster, nodeName: string, options: VagrantUpOptions): Promise<VagrantRunResult> {
  const provider = vagrantProvider(cluster);
  findNode(cluster, nodeName);
  if (!options.vagrantfileText) throw new Error('vagrantNodeUp: vagrantfileText is required (the generated Vagrantfile)');
  return runLogged(options, 'up', nodeName, ['--no-tty', 'up', nodeName, '--provider', provider], BOOTING);
}

/** The line after which a `vagrant up` no longer touches what the machines share (pool, networks, boxes). */
const BOOTING = /^==> [\w.-]+: (Starting domain|Booting VM)/;

/**
 * `vagrant destroy -f <node>`: the machine, its disk and the networks it created go. A node that was
 * never created is left alone (vagrant-libvirt would still insist on reaching libvirtd); `destroyed`
 * tells the two apart.
 */
export async function vagrantNodeDown(cluster: Cluster, nodeName: string, options: VagrantRunOptions): Promise<VagrantRunResult & { destroyed: boolean }> {
  // No model check: a node that left the configuration still goes down (the Vagrantfile on disk has it).
  vagrantProvider(cluster);
  // This machine's state only: terraform takes the nodes down in parallel, and a status of every
  // machine would trip over the machine lock of another node's `vagrant destroy`.
  const status = await vagrantStatus(cluster, options, nodeName);
  if (status[nodeName]?.state === 'not_created') return { seconds: 0, logFile: join(options.stateDir, 'logs', 'status.log'), destroyed: false };
  return { ...(await runLogged(options, 'destroy', nodeName, ['--no-tty', 'destroy', '-f', nodeName], undefined)), destroyed: true };
}

/**
 * `vagrant <args>` about one existing machine (snapshot, resume), logged like up and destroy. Not under
 * the project lock: these touch only their machine, which Vagrant locks itself, so the nodes of a
 * cluster snapshot run at once.
 */
export async function vagrantMachineCommand(cluster: Cluster, nodeName: string, action: string, args: readonly string[], options: VagrantRunOptions): Promise<VagrantRunResult> {
  vagrantProvider(cluster);
  return runLogged(options, action, nodeName, ['--no-tty', ...args], undefined, false);
}

/** `vagrant <args> --machine-readable` about one machine, parsed by the caller (snapshot list). */
export async function vagrantMachineQuery(cluster: Cluster, nodeName: string, action: string, args: readonly string[], options: VagrantRunOptions): Promise<string> {
  vagrantProvider(cluster);
  return (await runCaptured(options, `${action}-${nodeName}`, [...args, '--machine-readable'])).stdout;
}

/** Every node's state (or one node's), from `vagrant status --machine-readable`. */
export async function vagrantStatus(cluster: Cluster, options: VagrantRunOptions, nodeName?: string): Promise<Record<string, VagrantMachineStatus>> {
  vagrantProvider(cluster);
  const { stdout } = await runCaptured(options, 'status', ['status', ...(nodeName ? [nodeName] : []), '--machine-readable']);
  return parseVagrantStatus(stdout);
}

/** How to reach a running node over SSH, from `vagrant ssh-config <node>`. */
export async function vagrantSshConfig(cluster: Cluster, nodeName: string, options: VagrantRunOptions): Promise<VagrantSshConfig> {
  vagrantProvider(cluster);
  findNode(cluster, nodeName);
  const { stdout } = await runCaptured(options, `ssh-config-${nodeName}`, ['--no-tty', 'ssh-config', nodeName]);
  return parseSshConfig(stdout, nodeName);
}

export interface VagrantValidateOptions {
  provider: VagrantProviderName;
  /**
   * `vagrant validate --ignore-provider`: checks everything but the provider block, and works where
   * the provider itself is not installed (VirtualBox on a libvirt host).
   */
  ignoreProvider?: boolean;
  /** Extra environment; VAGRANT_HOME defaults to a temporary directory. */
  env?: Record<string, string>;
}

/** Runs the real `vagrant validate` on a Vagrantfile text in a scratch directory. */
export async function vagrantValidate(vagrantfileText: string, options: VagrantValidateOptions): Promise<{ valid: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'boxcar-vagrant-validate-'));
  try {
    await writeFile(join(dir, 'Vagrantfile'), vagrantfileText);
    const args = ['validate', ...(options.ignoreProvider ? ['--ignore-provider'] : [])];
    const result = await execa('vagrant', args, {
      cwd: dir,
      env: { ...VAGRANT_BASE_ENV, VAGRANT_HOME: join(dir, 'home'), VAGRANT_DEFAULT_PROVIDER: options.provider, ...options.env },
      all: true,
      reject: false,
      stdin: 'ignore',
    });
    return { valid: result.exitCode === 0, output: String(result.all ?? '').trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The command line that runs `vagrant args` (inside `netns` when given). Pure. */
export function vagrantCommand(args: readonly string[], netns?: string): [string, string[]] {
  if (netns === undefined) return ['vagrant', [...args]];
  if (!/^[\w.-]{1,64}$/.test(netns)) throw new Error(`netns: must be 1-64 characters of letters, digits and _.-, got ${JSON.stringify(netns)}`);
  return ['ip', ['netns', 'exec', netns, 'vagrant', ...args]];
}

/** Lines of `--machine-readable` output: timestamp,target,type,data... with Vagrant's escapes undone. Pure. */
export function parseMachineReadable(text: string): { timestamp: number; target: string; type: string; data: string[] }[] {
  const rows = [];
  for (const line of text.split('\n')) {
    if (!/^\d+,/.test(line)) continue;
    const [timestamp, target = '', type = '', ...data] = line.split(',');
    rows.push({
      timestamp: Number(timestamp),
      target,
      type,
      data: data.map((field) => field.replaceAll('%!(VAGRANT_COMMA)', ',').replaceAll('\\n', '\n').replaceAll('\\r', '\r')),
    });
  }
  return rows;
}

/** `vagrant status --machine-readable` → state and provider by machine name. Pure. */
export function parseVagrantStatus(text: string): Record<string, VagrantMachineStatus> {
  const machines: Record<string, VagrantMachineStatus> = {};
  for (const row of parseMachineReadable(text)) {
    if (!row.target || (row.type !== 'state' && row.type !== 'provider-name')) continue;
    const machine = (machines[row.target] ??= { state: '', provider: '' });
    if (row.type === 'state') machine.state = row.data[0] ?? '';
    else machine.provider = row.data[0] ?? '';
  }
  for (const [name, machine] of Object.entries(machines)) {
    if (!machine.state) throw new Error(`vagrant status: no state line for machine ${name}`);
  }
  return machines;
}

/** `vagrant ssh-config <node>` → host, port, user and the first identity file. Pure. */
export function parseSshConfig(text: string, nodeName: string): VagrantSshConfig {
  const fields = new Map<string, string>();
  let inHost = false;
  for (const raw of text.split('\n')) {
    const match = /^\s*(\S+)\s+(.*?)\s*$/.exec(raw);
    if (!match) continue;
    const key = match[1]!.toLowerCase();
    const value = match[2]!.replace(/^"(.*)"$/, '$1');
    if (key === 'host') {
      inHost = value === nodeName;
      continue;
    }
    if (inHost && !fields.has(key)) fields.set(key, value);
  }
  const missing = ['hostname', 'port', 'user', 'identityfile'].filter((key) => !fields.get(key));
  if (missing.length > 0) throw new Error(`vagrant ssh-config ${nodeName}: no ${missing.join(', ')} in:\n${text.trim()}`);
  const port = Number(fields.get('port'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`vagrant ssh-config ${nodeName}: Port ${fields.get('port')} is not a TCP port`);
  return { host: fields.get('hostname')!, port, user: fields.get('user')!, keyFile: fields.get('identityfile')! };
}

function vagrantProvider(cluster: Cluster): VagrantProviderName {
  if (!isVagrantProvider(cluster.provider)) {
    throw new Error(`cluster ${cluster.name}: provider "${cluster.provider}" is not run through Vagrant; Vagrant providers: virtualbox, libvirt`);
  }
  return cluster.provider;
}

async function prepare(options: VagrantRunOptions): Promise<void> {
  await mkdir(join(options.stateDir, 'logs'), { recursive: true });
  const path = join(options.stateDir, 'Vagrantfile');
  if (options.vagrantfileText === undefined) {
    await readFile(path, 'utf8').catch(() => {
      throw new Error(`${path} does not exist: pass vagrantfileText (bring a node up first)`);
    });
    return;
  }
  if ((await unlessMissing(path, readFile(path, 'utf8'), undefined)) === options.vagrantfileText) return;
  await atomicWriteFile(path, options.vagrantfileText);
}

function spawn(options: VagrantRunOptions, args: readonly string[]) {
  const [command, argv] = vagrantCommand(args, options.netns);
  return {
    commandLine: [command, ...argv].join(' '),
    child: execa(command, argv, {
      cwd: options.stateDir,
      env: { ...VAGRANT_BASE_ENV, ...options.env },
      all: true,
      reject: false,
      stdin: 'ignore',
      ...(options.signal ? { cancelSignal: options.signal } : {}),
    }),
  };
}

/**
 * Vagrant is not safe to run twice at once in one project: two `vagrant up` of different machines race
 * to create vagrant-libvirt's storage pool and networks, to add the same box to VAGRANT_HOME and to
 * upload it into the pool (seen here: "pool 'default' already exists" failed two of three parallel
 * ups). Terraform starts the nodes' provisioners in parallel, so every mutating command takes this lock;
 * an `up` gives it back once its machine starts booting, so that the boots still overlap.
 */
export const PROJECT_LOCK = '.vagrant-project.lock';
/** A first `up` adds and uploads a box of several hundred MB under the lock. */
const PROJECT_LOCK_TIMEOUT_MS = 60 * 60_000;

/**
 * Runs a command whose output is for people: streamed to onLine and appended to its log, under the
 * project lock (unless `projectLock` is false) until `releaseAfter` matches a line (or to the end).
 */
async function runLogged(
  options: VagrantRunOptions,
  action: string,
  nodeName: string,
  args: readonly string[],
  releaseAfter: RegExp | undefined,
  projectLock = true,
): Promise<VagrantRunResult> {
  await prepare(options);
  const logFile = join(options.stateDir, 'logs', `${action}-${nodeName}.log`);
  const release = projectLock
    ? await acquireLock(join(options.stateDir, PROJECT_LOCK), {
        timeoutMs: PROJECT_LOCK_TIMEOUT_MS,
        purpose: `vagrant ${action} ${nodeName}`,
        onWait: (holder) => options.onLine?.(`waiting for the Vagrant project (${holder ? `held by pid ${holder.pid}: ${holder.purpose}` : 'its lock file is unreadable'})`),
      })
    : async () => undefined;
  const log = createWriteStream(logFile, { flags: 'a' });
  const started = Date.now();
  const { commandLine, child } = spawn(options, args);
  log.write(`\n=== ${new Date().toISOString()} ${commandLine}\n`);
  const tail: string[] = [];
  try {
    for await (const line of child.iterable({ from: 'all' })) {
      // In --no-tty mode vagrant-libvirt's upload progress still "clears the line" with an empty one.
      if (line.trim() === '') continue;
      log.write(`${line}\n`);
      tail.push(line);
      if (tail.length > 25) tail.shift();
      options.onLine?.(line);
      if (releaseAfter?.test(line)) await release();
    }
  } finally {
    await release();
  }
  const result = await child;
  const seconds = (Date.now() - started) / 1000;
  log.write(`=== exit ${result.exitCode ?? result.signal} after ${seconds.toFixed(1)} s\n`);
  await new Promise<void>((done, fail) => log.end((error?: Error | null) => (error ? fail(error) : done())));
  if (result.isCanceled) throw new VagrantError(`vagrant ${action} ${nodeName}: cancelled; log: ${logFile}`, logFile);
  if (result.exitCode !== 0) {
    throw new VagrantError(`vagrant ${action} ${nodeName} failed (exit ${result.exitCode ?? result.signal}); log: ${logFile}\n${tail.join('\n')}`, logFile, result.exitCode);
  }
  return { seconds, logFile };
}

/** How often a read is tried while another vagrant process holds a machine (3 s apart). */
const MACHINE_LOCKED_ATTEMPTS = 40;

/** Runs a command whose stdout is parsed; stdout and stderr also go to its log. */
async function runCaptured(options: VagrantRunOptions, action: string, args: readonly string[]): Promise<{ stdout: string }> {
  await prepare(options);
  const logFile = join(options.stateDir, 'logs', `${action}.log`);
  let result;
  // A machine another vagrant process works on is locked for the moment; a read waits its turn.
  for (let attempt = 1; ; attempt += 1) {
    const { commandLine, child } = spawn(options, args);
    result = await child;
    const text = `\n=== ${new Date().toISOString()} ${commandLine}\n${String(result.all ?? '')}\n=== exit ${result.exitCode ?? result.signal}\n`;
    await writeFile(logFile, text, { flag: 'a' });
    if (result.exitCode === 0 || attempt >= MACHINE_LOCKED_ATTEMPTS || !String(result.all ?? '').includes('Vagrant::Errors::MachineLocked')) break;
    await new Promise((resume) => setTimeout(resume, 3_000));
  }
  if (result.isCanceled) throw new VagrantError(`vagrant ${args.join(' ')}: cancelled; log: ${logFile}`, logFile);
  if (result.exitCode !== 0) {
    throw new VagrantError(`vagrant ${args.join(' ')} failed (exit ${result.exitCode ?? result.signal}); log: ${logFile}\n${String(result.stderr).trim()}`, logFile, result.exitCode);
  }
  return { stdout: String(result.stdout) };
}
