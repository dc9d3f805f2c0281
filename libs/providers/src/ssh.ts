import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { shellQuote } from '@boxcar/kit';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** Private key file. */
  keyFile: string;
  /**
   * Pin the node's host key: the cluster's known_hosts file and the name the node is recorded under
   * there (its port on 127.0.0.1 changes from boot to boot). `record` accepts and records a key on the
   * first contact only, for providers that offer no channel to learn it before; a key that then
   * changes is refused either way. Without hostKey nothing is remembered (bake VMs, benchmark VMs).
   */
  hostKey?: { knownHosts: string; alias: string; firstContact?: 'refuse' | 'record' };
  /** Share one connection between every command to this target (OpenSSH multiplexing), through this socket. */
  controlPath?: string;
}

export interface SshResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export class SshError extends Error {
  constructor(
    message: string,
    readonly target: SshTarget,
    readonly command: string,
    readonly result?: SshResult,
  ) {
    super(message);
    this.name = 'SshError';
  }
}

const CONNECT_TIMEOUT_S = 5;

/**
 * The system ssh's arguments: key only, never a prompt, and nothing from the user's or the system's
 * ssh_config (`-F /dev/null`: a ControlMaster, ProxyJump or IdentityFile there must not change what
 * boxcar does). The host key is pinned when the target says where (hostKey), else not remembered.
 */
export function sshArgs(target: SshTarget): string[] {
  checkTarget(target);
  const { hostKey, controlPath } = target;
  return [
    '-i', target.keyFile,
    '-p', String(target.port),
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    ...(hostKey
      ? [
          '-o', `StrictHostKeyChecking=${hostKey.firstContact === 'record' ? 'accept-new' : 'yes'}`,
          '-o', `UserKnownHostsFile=${hostKey.knownHosts}`,
          '-o', 'GlobalKnownHostsFile=/dev/null',
          '-o', `HostKeyAlias=${hostKey.alias}`,
        ]
      : ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null']),
    // A master connection lives on for a minute after its last command: a node's configuration is
    // many commands, and each new connection is a key exchange that costs seconds on an emulated CPU.
    ...(controlPath ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlPath}`, '-o', 'ControlPersist=60'] : ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']),
    '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=6',
    `${target.user}@${target.host}`,
  ];
}

function checkTarget(target: SshTarget): void {
  if (!target.host || /\s/.test(target.host)) throw new Error(`ssh target: host must be a host name or address, got ${JSON.stringify(target.host)}`);
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new Error(`ssh target: port must be a TCP port from 1 to 65535, got ${JSON.stringify(target.port)}`);
  }
  if (!/^[a-z_][a-z0-9_-]*$/.test(target.user)) throw new Error(`ssh target: user must be a login name, got ${JSON.stringify(target.user)}`);
  if (!target.keyFile) throw new Error('ssh target: keyFile must name a private key file');
  if (target.hostKey && !/^[\w.-]+$/.test(target.hostKey.alias)) throw new Error(`ssh target: hostKey.alias must be a plain name, got ${JSON.stringify(target.hostKey.alias)}`);
  // A unix socket path is at most 107 bytes.
  if (target.controlPath !== undefined && Buffer.byteLength(target.controlPath) > 100) throw new Error(`ssh target: controlPath must be at most 100 bytes, got ${target.controlPath}`);
}

/** Ends the master connection behind a control socket (a node going down); nothing if there is none. */
export async function closeSshMaster(controlPath: string): Promise<void> {
  // The destination only fills in %-tokens, and the control path has none.
  await execa('ssh', ['-F', '/dev/null', '-o', `ControlPath=${controlPath}`, '-O', 'exit', 'boxcar-master'], { reject: false, stdin: 'ignore', timeout: 10_000 });
}

export interface SshRunOptions {
  /** Sent to the remote command's standard input. */
  input?: string | Buffer;
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  signal?: AbortSignal;
}

/** Runs one shell command on the target. Throws an SshError naming target, command and stderr when it fails. */
export async function sshRun(target: SshTarget, command: string, options: SshRunOptions = {}): Promise<SshResult> {
  const result = await execa('ssh', [...sshArgs(target), command], {
    reject: false,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    ...(options.signal ? { cancelSignal: options.signal } : {}),
    stripFinalNewline: false,
  });
  const outcome: SshResult = { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), exitCode: result.exitCode ?? -1 };
  if (result.timedOut) {
    throw new SshError(`ssh ${where(target)}: "${command}" did not finish within ${options.timeoutMs} ms`, target, command, outcome);
  }
  if (result.isCanceled) throw new SshError(`ssh ${where(target)}: "${command}" was cancelled`, target, command, outcome);
  // Never a failure to shrug off, whatever the caller allows.
  if (outcome.exitCode === 255 && target.hostKey && HOST_KEY_REFUSED.test(outcome.stderr)) throw new HostKeyMismatchError(target, command, outcome);
  if (outcome.exitCode !== 0 && !options.allowFailure) {
    const detail = outcome.stderr.trim() || outcome.stdout.trim().split('\n').slice(-5).join('\n');
    // ssh itself exits with 255: the command never ran.
    const what = outcome.exitCode === 255 ? 'could not connect or log in' : `"${command}" exited with status ${outcome.exitCode}`;
    throw new SshError(`ssh ${where(target)}: ${what}${detail ? `: ${detail}` : ''}`, target, command, outcome);
  }
  return outcome;
}

const HOST_KEY_REFUSED = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No ED25519 host key is known/i;

/** The node answered with another host key than the one recorded for it. */
export class HostKeyMismatchError extends SshError {
  constructor(target: SshTarget, command: string, result: SshResult) {
    const { alias, knownHosts } = target.hostKey!;
    super(
      `ssh ${where(target)}: the node ${alias} presented an SSH host key other than the one boxcar recorded for it (${knownHosts}); ` +
        'boxcar refuses to talk to it. If you recreated the node outside boxcar, take the cluster down and bring it up again ' +
        `(npx nx run cluster:down, then cluster:up); otherwise find out what answers on ${target.host}:${target.port}.`,
      target,
      command,
      result,
    );
    this.name = 'HostKeyMismatchError';
  }
}

function where(target: SshTarget): string {
  return `${target.user}@${target.host}:${target.port}`;
}

export interface WaitForSshOptions extends SshTarget {
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/** Resolves once the target accepts the key and runs a command; throws with the last ssh error at the deadline. */
export async function waitForSsh(options: WaitForSshOptions): Promise<{ attempts: number; seconds: number }> {
  const { timeoutMs, intervalMs = 2_000, signal, ...target } = options;
  checkTarget(target);
  const started = Date.now();
  let attempts = 0;
  let last = '';
  while (true) {
    signal?.throwIfAborted();
    attempts += 1;
    const left = timeoutMs - (Date.now() - started);
    try {
      await sshRun(target, 'true', { timeoutMs: Math.max(1_000, Math.min(left, (CONNECT_TIMEOUT_S + 10) * 1_000)), ...(signal ? { signal } : {}) });
      return { attempts, seconds: (Date.now() - started) / 1000 };
    } catch (error) {
      signal?.throwIfAborted();
      if (error instanceof HostKeyMismatchError) throw error;
      last = (error as Error).message;
    }
    if (Date.now() - started + intervalMs > timeoutMs) break;
    await sleep(intervalMs, undefined, signal ? { signal } : {}).catch((error: unknown) => {
      signal?.throwIfAborted();
      throw error;
    });
  }
  throw new SshError(`ssh ${where(target)} did not answer within ${timeoutMs} ms (${attempts} attempts); last error: ${last}`, target, 'true');
}

export interface SshCopyOptions {
  /** Write as root (through passwordless sudo), for destinations the login user cannot write. */
  sudo?: boolean;
}

/**
 * Puts a file on the target: written to a temporary name beside the destination, given its mode,
 * then renamed, so that nothing half-written is ever in place.
 */
export async function sshCopy(target: SshTarget, source: string | Buffer, remotePath: string, mode: number, options: SshCopyOptions = {}): Promise<void> {
  if (!remotePath.startsWith('/') || remotePath.endsWith('/') || remotePath.includes('\0')) {
    throw new Error(`sshCopy: remotePath must be an absolute file path, got ${JSON.stringify(remotePath)}`);
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new Error(`sshCopy: mode must be a file mode such as 0o644, got ${mode}`);
  const content = typeof source === 'string' ? await readFile(source) : source;
  const path = shellQuote(remotePath);
  const script = `set -e; tmp=$(mktemp ${shellQuote(`${remotePath}.boxcar-XXXXXX`)}); trap 'rm -f "$tmp"' EXIT; cat >"$tmp"; chmod ${mode.toString(8).padStart(4, '0')} "$tmp"; mv -f "$tmp" ${path}; trap - EXIT`;
  await sshRun(target, `${options.sudo ? 'sudo -n ' : ''}sh -c ${shellQuote(script)}`, { input: content });
}
