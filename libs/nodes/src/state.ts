import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ActionableError, atomicWriteFile, unlessMissing } from '@boxcar/kit';
import { checkNodeName, REPO_ROOT, type Cluster, type ProviderName } from '@boxcar/model';

// Host-side state of one cluster, all under .cluster/<cluster-name>/ (gitignored): terraform state,
// the synthesized stack, the cluster's own SSH key and PKI (secrets, mode 600), the provider's
// processes and disks, and what each node was booted from.

/** Where cluster state lives unless the CLI is told otherwise (--state-dir, $BOXCAR_STATE_DIR). */
export const DEFAULT_STATE_ROOT = join(REPO_ROOT, '.cluster');

export interface ClusterPaths {
  dir: string;
  stackOut: string;
  sshKey: string;
  /** The nodes' pinned SSH host keys, one line per node under its alias (see hostKeyAlias). */
  knownHosts: string;
  /** Control sockets of the multiplexed SSH connections to the nodes. */
  sshControl: string;
  pki: string;
  /** The host's kubeconfig for the cluster's Kubernetes API (mode 600; written by cluster up where the profile runs Kubernetes as the lab does). */
  kubeconfig: string;
  provider: string;
  nodes: string;
  logs: string;
}

/** The cluster's state under `root` (the state directory: <root>/<cluster name>/...). */
export function clusterPaths(cluster: Cluster, root: string): ClusterPaths {
  const dir = join(root, cluster.name);
  return {
    dir,
    stackOut: join(dir, 'cdktf.out'),
    sshKey: join(dir, 'ssh', 'cluster_ed25519'),
    knownHosts: join(dir, 'ssh', 'known_hosts'),
    sshControl: join(dir, 'ssh', 'control'),
    pki: join(dir, 'pki'),
    kubeconfig: join(dir, 'kubeconfig'),
    provider: join(dir, cluster.provider),
    nodes: join(dir, 'nodes'),
    logs: join(dir, 'logs'),
  };
}

/**
 * The state directory (and the cluster's, where they exist) must be this user's and not writable by
 * everyone: its control sockets, serial logs, keys and disks are trusted as this user's own. Every
 * problem at once, each with what to do.
 */
export async function checkStateOwnership(paths: ClusterPaths): Promise<void> {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const problems: string[] = [];
  for (const dir of [dirname(paths.dir), paths.dir]) {
    const info = await lstat(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new Error(`state directory ${dir} cannot be read: ${error.message}`);
    });
    if (!info) continue;
    if (!info.isDirectory()) problems.push(`${dir} is not a directory (${info.isSymbolicLink() ? 'a symbolic link' : 'a file'}): remove it, or set BOXCAR_STATE_DIR (--state-dir) to a directory of your own`);
    else if (info.uid !== uid) problems.push(`${dir} belongs to uid ${info.uid}, not to you (uid ${uid}): its sockets and logs would be another user's; use a state directory of your own (BOXCAR_STATE_DIR or --state-dir)`);
    else if ((info.mode & 0o002) !== 0) problems.push(`${dir} is writable by every user (mode ${(info.mode & 0o7777).toString(8)}): anyone could put sockets or keys in it; chmod o-w ${dir}, or use a state directory of your own`);
  }
  if (problems.length) throw new ActionableError(`the cluster's state directory is not safe to use:\n  ${problems.join('\n  ')}`);
}

/** Where a provider keeps this cluster's machines: .cluster/<name>/<provider>. */
export function providerDir(paths: ClusterPaths, provider: ProviderName): string {
  return join(paths.dir, provider);
}

/** What a node was booted from and how to reach it: written by `node up`, read by configure and status. */
export interface NodeRecord {
  name: string;
  provider: string;
  box: { name: string; version: string; contentKey: string };
  ssh: { host: string; port: number; user: string };
  /** Where the node's Kubernetes API answers on the host (127.0.0.1 and the port its provider forwards): the master of a Kubernetes cluster only. */
  api?: { host: string; port: number };
  configHash?: string;
  /** The host key pinned for the node: learned on its serial console at boot, or at the first contact where the provider has no console file. */
  hostKey?: string;
  /** The cluster snapshot the node was last restored from (its configuration is then that snapshot's). */
  snapshot?: { name: string; restoredAt: string };
  /**
   * A restore that failed on this node: its memory (and disk) may be half loaded, so it is left paused,
   * never resumed; cluster up makes it again from its box.
   */
  restoreFailed?: { snapshot: string; at: string; error: string };
}

/** Where a node's record lives; a name that is no node name never becomes a path. */
function recordFile(paths: ClusterPaths, node: string): string {
  return join(paths.nodes, `${checkNodeName(node)}.json`);
}

export async function readNodeRecord(paths: ClusterPaths, node: string): Promise<NodeRecord | undefined> {
  try {
    return JSON.parse(await readFile(recordFile(paths, node), 'utf8')) as NodeRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Every node record of the cluster: the nodes that are up, whether or not the configuration still has them. */
export async function listNodeRecords(paths: ClusterPaths): Promise<NodeRecord[]> {
  const files = (await unlessMissing(paths.nodes, readdir(paths.nodes), [] as string[])).filter((file) => file.endsWith('.json')).sort();
  const records = await Promise.all(files.map((file) => readNodeRecord(paths, file.slice(0, -'.json'.length))));
  return records.filter((record): record is NodeRecord => record !== undefined);
}

export async function writeNodeRecord(paths: ClusterPaths, record: NodeRecord): Promise<void> {
  await mkdir(paths.nodes, { recursive: true });
  const file = recordFile(paths, record.name);
  await atomicWriteFile(file, `${JSON.stringify(record, null, 2)}\n`);
}

export async function removeNodeRecord(paths: ClusterPaths, node: string): Promise<void> {
  await rm(recordFile(paths, node), { force: true });
}
