import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from '@boxcar/model';
import { ensureClusterPki } from '@boxcar/node-config';
import { clusterSshKey, clusterPaths } from '@boxcar/nodes';
import { bakerBootstrapKey } from '@boxcar/providers';
import { filesContaining } from '../harness/image-scan.ts';
import { boxcar, makeWorld, prepublishBase, PROFILE, removeWorld, type World } from './helpers.ts';

// Scenario "secrets on the host": every private key boxcar generates is readable by its owner only,
// and no bake log carries key material. Packer, in the bake, is the TEST DOUBLE fixtures/packer-double.

const mode = (path: string) => statSync(path).mode & 0o777;

describe('scenario 9c: generated secrets on the host are mode 600', () => {
  let root: string;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'boxcar-faults-secrets-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the cluster SSH key (libs/nodes clusterSshKey)', async () => {
    const cluster = resolveClusterOrThrow({ profile: 'lab' });
    const key = await clusterSshKey(clusterPaths(cluster, join(root, 'state')), cluster);
    expect(mode(key.privateKey)).toBe(0o600);
    expect(mode(join(key.privateKey, '..'))).toBe(0o700);
  });

  it("the baker's bootstrap key (@boxcar/providers bakerBootstrapKey), with the baker and not in any store", async () => {
    const key = await bakerBootstrapKey({ BOXCAR_BOOTSTRAP_KEY: join(root, 'baker', 'bootstrap_ed25519') });
    expect(mode(key.privateKey)).toBe(0o600);
    expect(mode(join(key.privateKey, '..'))).toBe(0o700);
  });

  it('the cluster PKI (@boxcar/node-config ensureClusterPki), for the Kubernetes profile', async () => {
    const cluster = resolveClusterOrThrow({ profile: 'xenial-2016' });
    const pki = await ensureClusterPki(join(root, 'pki'), cluster);
    const keys = readdirSync(pki.dir).filter((name) => name.endsWith('-key.pem'));
    expect(keys.sort()).toEqual(['admin-key.pem', 'apiserver-key.pem', 'ca-key.pem', ...cluster.workers.map((node) => `${node.name}-key.pem`)].sort());
    expect(Object.fromEntries(keys.map((name) => [name, mode(join(pki.dir, name))]))).toEqual(Object.fromEntries(keys.map((name) => [name, 0o600])));
    expect(mode(pki.dir)).toBe(0o700);
  });
});

describe('scenario 9d: no bake log holds a private key', () => {
  let world: World;

  beforeAll(async () => {
    world = makeWorld();
    await prepublishBase(world);
  });
  afterAll(() => removeWorld(world));

  it('after a bake, nothing under the build dir contains "PRIVATE KEY"', async () => {
    const bake = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json']);
    expect(bake.exitCode, bake.stderr).toBe(0);
    expect(readdirSync(join(world.buildDir, 'logs', PROFILE)).length).toBe(3);
    expect(await filesContaining(world.buildDir, 'PRIVATE KEY')).toEqual([]);
    // Nor does the store the bake published into: the bootstrap key stayed with the baker.
    expect(await filesContaining(world.storeDir, 'PRIVATE KEY')).toEqual([]);
    expect(statSync(world.env.BOXCAR_BOOTSTRAP_KEY!).isFile()).toBe(true);
  });

  it('the check sees a leak: a provisioner that prints the bootstrap key ends up in the log', async () => {
    const leaky = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json', '--force', 'master'], {
      PACKER_DOUBLE: JSON.stringify({ master: { printFile: world.env.BOXCAR_BOOTSTRAP_KEY } }),
    });
    expect(leaky.exitCode, leaky.stderr).toBe(0);
    expect(await filesContaining(world.buildDir, 'PRIVATE KEY')).toEqual([expect.stringMatching(/^logs\/faults\/master-[0-9a-f]{12}\.log$/)]);
  });
});
