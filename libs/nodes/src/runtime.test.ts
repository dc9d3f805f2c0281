import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type BoxStore } from '@boxcar/box-store';
import { DEFAULT_CNI_DIR, resolveClusterOrThrow, type Cluster } from '@boxcar/model';
import { nodeContext, nodeUp, refCluster } from './runtime.ts';
import { clusterPaths } from './state.ts';

// Which nodes need the bake's bootstrap key, and what a machine without it is told. Nothing boots:
// the Vagrant provider asks for the key before it writes a Vagrantfile or runs vagrant.

let dir: string;
let store: BoxStore;
const saved = { ...process.env };
const lab = resolveClusterOrThrow({ profile: 'lab' });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-nodes-keys-'));
  store = openStore(join(dir, 'store'));
  await mkdir(join(dir, 'layer'));
  await writeFile(join(dir, 'layer', 'disk.qcow2'), 'not a disk: nothing boots here');
  await writeFile(join(dir, 'master.box'), 'box');
  await store.publishLayer('lab', 'master', 'k1', join(dir, 'layer'), {});
  await store.publishBox({ boxName: lab.master.box, description: 'master', provider: 'libvirt', boxFile: join(dir, 'master.box'), key: 'k1', layer: 'master', profile: 'lab' });
  // This machine has no bootstrap key: not the baker.
  process.env.BOXCAR_BOOTSTRAP_KEY = join(dir, 'baker', 'bootstrap_ed25519');
});
afterAll(async () => {
  process.env = saved;
  await rm(dir, { recursive: true, force: true });
});

const up = (cluster: Cluster) => nodeUp(nodeContext(cluster, store, { stateRoot: join(dir, 'state'), cniDir: DEFAULT_CNI_DIR }), cluster.master.name);

describe('node up without the bootstrap key on this machine', () => {
  it('refuses a VirtualBox node (no OEM strings to hand the cluster key over), saying where the key belongs', async () => {
    await expect(up({ ...lab, provider: 'virtualbox' })).rejects.toThrow(
      `cluster lab: the virtualbox provider cannot hand a node the cluster key at first boot (no SMBIOS OEM strings), so its nodes are first reached with the bake's bootstrap key, ` +
        `and this machine has none at ${join(dir, 'baker', 'bootstrap_ed25519')}: copy the baker's key there (mode 600) or set BOXCAR_BOOTSTRAP_KEY to its path`,
    );
    // Refused before anything was touched: no reference in the store.
    expect(await store.listRefs()).toEqual([]);
  });

  it('refuses a libvirt node whose boxes do not read the first-boot channel (as the xenial boxes)', async () => {
    const withoutUnit = { ...lab, provider: 'libvirt' as const, profile: { ...lab.profile, features: { ...lab.profile.features, firstBoot: false } } };
    await expect(up(withoutUnit)).rejects.toThrow('cluster lab: the boxes of profile lab do not read the cluster key at first boot (no boxcar-first-boot unit), so its nodes are first reached');
  });
});

describe('refCluster', () => {
  it("names a cluster in the store's references by its name and who runs it: two checkouts' clusters of one name never share references", () => {
    const lab = resolveClusterOrThrow({ profile: 'lab' });
    const here = refCluster({ cluster: lab, paths: clusterPaths(lab, '/srv/a/.cluster') });
    const there = refCluster({ cluster: lab, paths: clusterPaths(lab, '/srv/b/.cluster') });
    expect(here).toMatch(/^lab\.[0-9a-f]{8}$/);
    expect(there).not.toBe(here);
    expect(refCluster({ cluster: lab, paths: clusterPaths(lab, '/srv/a/.cluster') })).toBe(here);
  });
});
