import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { forgetNode, pinHostKey, pinnedHostKey } from './ssh-access.ts';
import { clusterPaths } from './state.ts';

const stateDir = mkdtempSync(join(tmpdir(), 'boxcar-known-hosts-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
const cluster = resolveClusterOrThrow({ profile: 'lab' });
const paths = clusterPaths(cluster, stateDir);
const keyOf = (index: number) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${String(index).padStart(43, 'A')}`;
const nodes = Array.from({ length: 12 }, (_, index) => `node${index}`);

describe('the cluster known_hosts', () => {
  it('keeps every key when nodes come up in parallel (each rewrite under a lock)', async () => {
    await Promise.all(nodes.map((node, index) => pinHostKey(cluster, paths, node, keyOf(index))));
    for (const [index, node] of nodes.entries()) expect(await pinnedHostKey(cluster, paths, node)).toBe(keyOf(index));
    expect(readFileSync(paths.knownHosts, 'utf8').trim().split('\n')).toHaveLength(nodes.length);
  });

  it('forgets nodes going down in parallel, and only them', async () => {
    await Promise.all(nodes.slice(0, 6).map((node) => forgetNode(cluster, paths, node)));
    for (const node of nodes.slice(0, 6)) expect(await pinnedHostKey(cluster, paths, node)).toBeUndefined();
    for (const [index, node] of nodes.entries()) if (index >= 6) expect(await pinnedHostKey(cluster, paths, node)).toBe(keyOf(index));
  });

  it("a node's new key replaces its old one", async () => {
    await pinHostKey(cluster, paths, 'node7', keyOf(99));
    expect(await pinnedHostKey(cluster, paths, 'node7')).toBe(keyOf(99));
    expect(readFileSync(paths.knownHosts, 'utf8').match(/node7 /g)).toHaveLength(1);
  });
});
