import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '@boxcar/box-store';
import { bakeJson, boxcar, doubleEvents, makeWorld, prepublishBase, PROFILE, removeWorld, tempEntries, verifyStore, workDirs, type BakeJson, type CliResult, type World } from './helpers.ts';

// Scenario "Packer fails during a layer's bake". Packer is the TEST DOUBLE fixtures/packer-double
// (selected with PACKER_BINARY): it prints Packer 1.6.6's machine-readable lines and fails the
// "master" layer at the step that runs scripts/role.sh, exactly as Packer reports a provisioner
// script that exits 1. "worker" bakes beside it (two jobs) and is slower, so it is still running
// when master fails. Everything else is the product: the CLI, the bake, the store.

describe('scenario 1: packer fails during a layer bake', () => {
  let world: World;
  let keys: Record<string, string>;
  let failed: CliResult;
  let json: BakeJson;

  beforeAll(async () => {
    world = makeWorld();
    ({ keys } = await prepublishBase(world));
    failed = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json', '--jobs', '2'], {
      PACKER_DOUBLE: JSON.stringify({ master: { fail: 'scripts/role.sh' }, worker: { stepDelayMs: 80 } }),
    });
    json = bakeJson(failed);
  });
  afterAll(() => removeWorld(world));

  const logOf = (layer: string) => join(world.buildDir, 'logs', PROFILE, `${layer}-${keys[layer]!.slice(0, 12)}.log`);

  it('exits 1 and names the failed layer, the last lines of Packer and the full log', () => {
    expect(failed.exitCode).toBe(1);
    expect(json.result?.failed?.layer).toBe('master');
    expect(failed.stderr).toContain('bake failed: layer master: packer build failed at step');
    const lastLines = failed.stderr.split('last lines:\n')[1]?.split('full log:')[0] ?? '';
    expect(lastLines).toContain('Script exited with non-zero exit status: 1.Allowed exit codes are: [0]');
    expect(lastLines).toContain(`scripts/role.sh`);
    expect(failed.stderr).toContain(`full log: ${logOf('master')}`);
    const log = readFileSync(logOf('master'), 'utf8');
    expect(log).toContain(',ui,error,==> master.qemu.master: Script exited with non-zero exit status: 1.Allowed exit codes are: [0]');
    expect(log).toMatch(/# exit 1 after/);
  });

  it('names the step that failed, not the cleanup Packer prints after the failure', () => {
    // Packer 1.6.6 prints "==> …: Deleting output directory..." after a failed step (seen in a real
    // run here); the step in the error must be the one that failed.
    expect(failed.stderr).toContain(`at step "Provisioning with shell script: ${join(world.profiles, PROFILE, 'scripts', 'role.sh')}"`);
  });

  it('shows the last lines as Packer text, not raw machine-readable records', () => {
    // Packer writes one record per line; a pipe may hand several of them over in one chunk.
    const lastLines = failed.stderr.split('last lines:\n')[1]?.split('full log:')[0] ?? '';
    expect(lastLines.split('\n').filter((line) => /^\s*\|\s*\d+,[^,]*,(ui|error|artifact)/.test(line))).toEqual([]);
  });

  it('keeps the layer baked before the failure and the one that was baking beside it', async () => {
    expect(json.result?.built.map((built) => built.layer).sort()).toEqual(['node', 'worker']);
    expect(json.result?.skipped).toEqual([]);
    const checked = await verifyStore(world.storeUrl);
    expect(checked.layers.sort()).toEqual([`base/${keys.base}`, `node/${keys.node}`, `worker/${keys.worker}`].sort());
    expect(checked.boxes).toEqual({ 'boxcar/faults-worker': [json.result!.built.find((b) => b.layer === 'worker')!.box!.version] });
  });

  it('leaves nothing of the failed layer: no layer dir, no box, no catalog entry, no temp file, no work dir', async () => {
    expect(existsSync(join(world.storeDir, 'layers', PROFILE, 'master'))).toBe(false);
    expect(existsSync(join(world.storeDir, 'boxes', 'boxcar', 'faults-master'))).toBe(false);
    const store = await openStore(world.storeUrl);
    expect(await store.findBoxVersionByKey('boxcar/faults-master', keys.master!)).toBeUndefined();
    expect(tempEntries(world.storeDir)).toEqual([]);
    expect(workDirs(world)).toEqual([]);
    expect(readdirSync(world.storeDir).sort()).toEqual(['boxes', 'index.json', 'layers']);
  });

  it('the next bake builds only the layer that failed', async () => {
    const again = await boxcar(world, ['images', 'bake', '--profile', PROFILE, '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    const result = bakeJson(again);
    expect(result.plan.layers.map((layer) => [layer.layer, layer.status])).toEqual([
      ['base', 'cached'],
      ['node', 'cached'],
      ['master', 'build'],
      ['worker', 'cached'],
    ]);
    expect(result.result?.built.map((built) => built.layer)).toEqual(['master']);
    const packerStarts = doubleEvents(world).filter((event) => event.role === 'build' && event.event === 'start').map((event) => event.layer);
    expect(packerStarts.sort()).toEqual(['master', 'master', 'node', 'worker']);
    const checked = await verifyStore(world.storeUrl);
    expect(Object.values(checked.boxes).map((versions) => versions.length)).toEqual([1, 1]);
  });
});
