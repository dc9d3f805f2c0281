import { existsSync, mkdirSync } from 'node:fs';
import { readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { atomicWriteFile, unlessMissing, withLock } from '@boxcar/kit';
import type { Cluster } from '@boxcar/model';
import { closeSshMaster, HOST_KEY_LINE, type SshTarget } from '@boxcar/providers';
import type { ClusterPaths, NodeRecord } from './state.ts';

// How boxcar reaches a node over SSH: the node's host key pinned in the cluster's own known_hosts
// (learned on the node's serial console at boot, a channel the host trusts), one multiplexed
// connection per node and key, and nothing of the user's ssh configuration.

/** The name a node's host key is recorded under: its port on 127.0.0.1 changes from boot to boot. */
export function hostKeyAlias(cluster: Cluster, node: string): string {
  return `boxcar-${cluster.name}-${node}`;
}

export type KeyName = 'cluster' | 'bootstrap';

/** Where the multiplexed connection of a node and key lives, if the path fits a unix socket. */
function controlPath(paths: ClusterPaths, node: string, key: KeyName): string | undefined {
  const path = join(paths.sshControl, `${node}.${key}`);
  // A unix socket path has at most 107 bytes (ssh adds a suffix while it sets the socket up).
  if (Buffer.byteLength(path) > 80) return undefined;
  // ssh does not make the socket's directory: without it every connection fails.
  mkdirSync(paths.sshControl, { recursive: true, mode: 0o700 });
  return path;
}

/**
 * The SSH target of a node: pinned host key (refused when it changes), a shared connection unless
 * `multiplex` is false (a one-off probe, or a check that must open a new session with its own key).
 */
export function nodeTarget(cluster: Cluster, paths: ClusterPaths, record: NodeRecord, key: KeyName, keyFile: string, multiplex = true): SshTarget {
  const control = multiplex ? controlPath(paths, record.name, key) : undefined;
  return {
    host: record.ssh.host,
    port: record.ssh.port,
    user: record.ssh.user,
    keyFile,
    hostKey: { knownHosts: paths.knownHosts, alias: hostKeyAlias(cluster, record.name), firstContact: record.hostKey ? 'refuse' : 'record' },
    ...(control ? { controlPath: control } : {}),
  };
}

/** Waits for the node's host key on its serial console (printed before sshd starts) and returns it. */
export async function hostKeyFromConsole(serialLog: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const text = await readFile(serialLog, 'latin1').catch(() => '');
    // The last one: the serial log is the current boot's, but a line may repeat.
    const key = [...text.matchAll(HOST_KEY_LINE)].at(-1)?.[1];
    if (key) return key;
    if (Date.now() > deadline) {
      throw new Error(`the node did not print its SSH host key ("boxcar-host-key: ...") on its serial console within ${timeoutMs / 1000} s (${serialLog}); was its box baked with the first-boot unit?`);
    }
    await sleep(1_000, undefined, signal ? { signal } : {});
  }
}

async function knownHostsLines(paths: ClusterPaths): Promise<string[]> {
  return (await unlessMissing(paths.knownHosts, readFile(paths.knownHosts, 'utf8'), '')).split('\n').filter((line) => line.trim());
}

/** Records `key` as the node's only host key (a recreated node has a new one). */
export async function pinHostKey(cluster: Cluster, paths: ClusterPaths, node: string, key: string): Promise<void> {
  const alias = hostKeyAlias(cluster, node);
  await mkdir(join(paths.knownHosts, '..'), { recursive: true });
  await rewriteKnownHosts(paths, `pin the host key of ${node}`, (lines) => [...lines.filter((line) => line.split(' ')[0] !== alias), `${alias} ${key}`]);
}

/**
 * known_hosts is read, changed and written back under a lock: the nodes of a cluster come up in
 * parallel, and two unlocked rewrites lost one node's key (its next SSH was refused as a mismatch).
 */
async function rewriteKnownHosts(paths: ClusterPaths, purpose: string, change: (lines: string[]) => string[]): Promise<void> {
  await withLock(
    `${paths.knownHosts}.lock`,
    async () => {
      const lines = await knownHostsLines(paths);
      const changed = change(lines);
      if (changed.join('\n') !== lines.join('\n')) await atomicWriteFile(paths.knownHosts, changed.map((line) => `${line}\n`).join(''), { mode: 0o600 });
    },
    { purpose },
  );
}

/** The node's host key as known_hosts has it (recorded at the first contact, where there was no console). */
export async function pinnedHostKey(cluster: Cluster, paths: ClusterPaths, node: string): Promise<string | undefined> {
  const alias = hostKeyAlias(cluster, node);
  const line = (await knownHostsLines(paths)).find((candidate) => candidate.split(' ')[0] === alias);
  return line?.split(' ').slice(1, 3).join(' ');
}

/** A node going down: its connections closed, its host key forgotten (the next one has a new key). */
export async function forgetNode(cluster: Cluster, paths: ClusterPaths, node: string): Promise<void> {
  for (const key of ['cluster', 'bootstrap'] as const) {
    const control = controlPath(paths, node, key);
    if (control) await closeSshMaster(control);
  }
  const alias = hostKeyAlias(cluster, node);
  if (!existsSync(paths.knownHosts)) return;
  await rewriteKnownHosts(paths, `forget the host key of ${node}`, (lines) => lines.filter((line) => line.split(' ')[0] !== alias));
}

/** Every multiplexed connection of the cluster closed (cluster down). */
export async function closeAllConnections(paths: ClusterPaths): Promise<void> {
  for (const socket of await unlessMissing(paths.sshControl, readdir(paths.sshControl), [] as string[])) await closeSshMaster(join(paths.sshControl, socket));
  await rm(paths.sshControl, { recursive: true, force: true });
}
