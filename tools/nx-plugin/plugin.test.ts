import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@boxcar/model';

describe('the local Nx plugin', () => {
  it('infers one bake target per layer, each depending on its parent layer', async () => {
    const { stdout } = await execa('npx', ['nx', 'show', 'project', 'images', '--json'], { cwd: REPO_ROOT, env: { NX_DAEMON: 'false', NX_NO_CLOUD: 'true' } });
    const targets = JSON.parse(stdout).targets as Record<string, { dependsOn?: string[]; options?: { command?: string } }>;
    expect(targets['bake-lab-base']!.dependsOn).toEqual([]);
    expect(targets['bake-lab-node']!.dependsOn).toEqual(['bake-lab-base']);
    expect(targets['bake-lab-worker']!.dependsOn).toEqual(['bake-lab-node']);
    expect(targets['bake-lab-worker']!.options!.command).toContain('images bake --profile lab --only worker');
    expect(targets['bake-xenial-2016-worker']!.dependsOn).toEqual(['bake-xenial-2016-felix']);
    expect(targets['bake-xenial-2016-felix']!.dependsOn).toEqual(['bake-xenial-2016-vpp']);
    expect(targets.bake!.options!.command).toContain('images bake');
  });
});
