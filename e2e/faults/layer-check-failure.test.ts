import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { bakeJson, boxcar, makeWorld, prepublishBase, PROFILE, removeWorld, tempEntries, verifyStore, workDirs, type BakeJson, type CliResult, type World } from './helpers.ts';

// Scenario "a layer's check fails": the master layer declares checks (layers.json "checks"), which
// the template runs as its last provisioner. Packer is the TEST DOUBLE fixtures/packer-double: at that
// provisioner it prints what the check script would print in a guest where the machine-id was left
// behind (`checkOutput`) and fails as Packer does for a script that exits 1. The worker declares no
// check and bakes. Everything else is the product: the template, the CLI, the bake, the store.

const CHECKS = { absent: ['/etc/ssh/ssh_host_*'], empty: ['/etc/machine-id'] };
const GUEST_SAYS = [
  'boxcar-check: ok absent:/etc/ssh/ssh_host_*',
  'boxcar-check: FAILED empty:/etc/machine-id: 33 bytes',
  'boxcar-check: 1 of 2 failed: empty:/etc/machine-id',
];

describe('scenario: a layer check fails', () => {
  let world: World;
  let keys: Record<string, string>;
  let failed: CliResult;
  let json: BakeJson;

  beforeAll(async () => {
    world = makeWorld({ checks: { master: CHECKS } });
    ({ keys } = await prepublishBase(world));
    failed = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json'], { PACKER_DOUBLE: JSON.stringify({ master: { checkOutput: GUEST_SAYS } }) });
    json = bakeJson(failed);
  });
  afterAll(() => removeWorld(world));

  const logOf = (layer: string) => readFileSync(join(world.buildDir, 'logs', PROFILE, `${layer}-${keys[layer]!.slice(0, 12)}.log`), 'utf8');

  it('runs the checks after cleanup.sh, in the layer that declares them only', () => {
    const log = logOf('master');
    const cleanup = log.indexOf('Provisioning with shell script: ' + join(world.profiles, PROFILE, 'scripts', 'cleanup.sh'));
    expect(cleanup).toBeGreaterThan(0);
    expect(log.indexOf('boxcar-check: FAILED empty:/etc/machine-id: 33 bytes')).toBeGreaterThan(cleanup);
    expect(logOf('worker')).not.toContain('boxcar-check');
  });

  it('fails the layer and names the failed check and why', () => {
    expect(failed.exitCode).toBe(1);
    expect(json.result?.failed?.layer).toBe('master');
    expect(failed.stderr).toContain('bake failed: layer master: packer build failed at step "Provisioning with shell script: /tmp/packer-shell');
    expect(failed.stderr).toContain('layer check failed: empty:/etc/machine-id (33 bytes)');
    expect(failed.stderr).not.toContain('absent:/etc/ssh/ssh_host_* (');
  });

  it('publishes nothing of the failed layer and keeps the others', async () => {
    expect(json.result?.built.map((built) => built.layer).sort()).toEqual(['node', 'worker']);
    const checked = await verifyStore(world.storeUrl);
    expect(checked.layers.sort()).toEqual([`base/${keys.base}`, `node/${keys.node}`, `worker/${keys.worker}`].sort());
    expect(existsSync(join(world.storeDir, 'layers', PROFILE, 'master'))).toBe(false);
    expect(existsSync(join(world.storeDir, 'boxes', 'boxcar', 'faults-master'))).toBe(false);
    const store = await openStore(world.storeUrl);
    expect(await store.findBoxVersionByKey('boxcar/faults-master', keys.master!)).toBeUndefined();
    expect(tempEntries(world.storeDir)).toEqual([]);
    expect(workDirs(world)).toEqual([]);
  });
});
