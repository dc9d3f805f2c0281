// References: which cluster's nodes run on which layer, one file each under <root>/refs/<host>/<cluster>/<node>.json.
// A qemu node's disk is an overlay whose backing file is the layer's disk in the store (or in an http
// store's local cache): removing that layer would pull the base from under a running node, so gc keeps
// what is referenced. Callers hold the lock of `root` (the store's, or the cache's).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile, TEMP_PREFIX } from '@boxcar/kit';
import { BoxStoreError, errorCode } from './errors.ts';
import { REFS_DIR } from './layout.ts';
import { checkBoxName, checkSegment, isSegment } from './names.ts';
import type { LayerRef, NewLayerRef, RefFilter } from './types.ts';

/**
 * This machine as references name it: its host name and, where the machine has one, a hash of its
 * machine id (/etc/machine-id), since two machines sharing a store may share a host name too.
 */
export function thisHost(): string {
  // Host names may hold characters a path segment may not (rare, but a shared store must stay readable).
  const name = hostname().replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]/, 'h');
  const machine = machineIdHash();
  return machine ? `${name}-${machine}` : name;
}

/** Read on first use, not when the module loads (every CLI command imports this library). */
let machineIdHashOnce: { value: string | undefined } | undefined;
function machineIdHash(): string | undefined {
  if (!machineIdHashOnce) {
    let id = '';
    try {
      id = readFileSync('/etc/machine-id', 'utf8').trim();
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
    machineIdHashOnce = { value: id ? createHash('sha256').update(id).digest('hex').slice(0, 8) : undefined };
  }
  return machineIdHashOnce.value;
}

const refPath = (root: string, ref: Pick<LayerRef, 'host' | 'cluster' | 'node'>): string =>
  join(root, REFS_DIR, ref.host, ref.cluster, `${ref.node}.json`);

function checkNewRef(ref: NewLayerRef): NewLayerRef {
  for (const field of ['cluster', 'node', 'profile', 'layer', 'key'] as const) checkSegment(field, ref[field]);
  checkBoxName('box.name', ref.box?.name);
  checkSegment('box.version', ref.box.version);
  return ref;
}

/** Writes (or replaces: a node runs on one layer at a time) the reference of `ref.node`. */
export async function writeRef(root: string, ref: NewLayerRef): Promise<LayerRef> {
  const { cluster, node, profile, layer, key, box, owner } = checkNewRef(ref);
  const full: LayerRef = { cluster, node, profile, layer, key, box: { name: box.name, version: box.version }, host: thisHost(), ...(owner ? { owner: { user: owner.user, stateDir: owner.stateDir } } : {}), createdAt: new Date().toISOString() };
  const path = refPath(root, full);
  await mkdir(join(path, '..'), { recursive: true });
  await atomicWriteFile(path, `${JSON.stringify(full, null, 2)}\n`);
  return full;
}

function parseRef(text: string, source: string): LayerRef {
  const fail = (problem: string): never => {
    throw new BoxStoreError('corrupt', `invalid reference ${source}: ${problem}; remove it with \`boxcar images refs --drop <cluster>\` or by hand`, source);
  };
  let value: Partial<LayerRef>;
  try {
    value = JSON.parse(text) as Partial<LayerRef>;
  } catch (error) {
    return fail((error as Error).message);
  }
  for (const field of ['cluster', 'node', 'profile', 'layer', 'key', 'host'] as const) {
    if (!isSegment(value?.[field])) fail(`${field} must be a name of letters, digits, ".", "_" or "-"`);
  }
  if (typeof value.box?.name !== 'string' || typeof value.box.version !== 'string') fail('box must be {name, version}');
  if (typeof value.createdAt !== 'string') fail('createdAt must be an ISO date');
  return value as LayerRef;
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => !name.startsWith(TEMP_PREFIX)).sort();
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return [];
    throw error;
  }
}

/** Every reference under `root`; an unreadable one stops the caller (gc must not delete on a guess). */
export async function readRefs(root: string): Promise<LayerRef[]> {
  const refs: LayerRef[] = [];
  const base = join(root, REFS_DIR);
  for (const host of await names(base)) {
    for (const cluster of await names(join(base, host))) {
      for (const file of (await names(join(base, host, cluster))).filter((name) => name.endsWith('.json'))) {
        const path = join(base, host, cluster, file);
        refs.push(parseRef(await readFile(path, 'utf8'), path));
      }
    }
  }
  return refs;
}

/** Removes the references matching `filter` (host: default this one) and returns them. */
export async function removeRefs(root: string, filter: RefFilter): Promise<LayerRef[]> {
  const dir = join(root, REFS_DIR, checkSegment('host', filter.host ?? thisHost()), checkSegment('cluster', filter.cluster));
  const only = filter.node === undefined ? undefined : `${checkSegment('node', filter.node)}.json`;
  const removed: LayerRef[] = [];
  for (const file of (await names(dir)).filter((name) => name.endsWith('.json') && (only === undefined || name === only))) {
    const path = join(dir, file);
    // A damaged reference goes too: dropping is how one gets rid of it.
    try {
      removed.push(parseRef(await readFile(path, 'utf8'), path));
    } catch {
      // Unreadable or damaged: it goes all the same.
    }
    await rm(path, { force: true });
  }
  if ((await names(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  return removed;
}

export const layerId = (ref: { profile: string; layer: string; key: string }): string => `${ref.profile}/${ref.layer}/${ref.key}`;

/** "cluster lab (cni-worker1, cni-worker2)", one part per cluster; the host only when it is another one. */
export function describeUsers(refs: readonly LayerRef[]): string {
  const clusters = new Map<string, { cluster: string; host: string; nodes: string[] }>();
  for (const ref of refs) {
    const id = `${ref.host}/${ref.cluster}`;
    const entry = clusters.get(id) ?? { cluster: ref.cluster, host: ref.host, nodes: [] };
    entry.nodes.push(ref.node);
    clusters.set(id, entry);
  }
  const self = thisHost();
  const parts = [...clusters.values()].map((c) => `cluster ${c.cluster}${c.host === self ? '' : ` on ${c.host}`} (${c.nodes.sort().join(', ')})`);
  return `used by ${parts.join(', ')}`;
}
