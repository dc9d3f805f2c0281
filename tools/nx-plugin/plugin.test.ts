import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '@boxcar/model';

type Target = { dependsOn?: string[]; cache?: boolean; inputs?: unknown[]; options?: { command?: string } };
const NX_ENV = { NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };
const CLI = 'node --import tsx apps/cli/src/main.ts';

describe('the local Nx plugin', () => {
  it('infers one bake target per layer, each depending on its parent layer', async () => {
    const { stdout } = await execa('npx', ['nx', 'show', 'project', 'images', '--json'], { cwd: REPO_ROOT, env: NX_ENV });
    const targets = JSON.parse(stdout).targets as Record<string, Target>;
    expect(targets['bake-lab-base']!.dependsOn).toEqual([]);
    expect(targets['bake-lab-node']!.dependsOn).toEqual(['bake-lab-base']);
    expect(targets['bake-lab-kube']!.dependsOn).toEqual(['bake-lab-node']);
    expect(targets['bake-lab-worker']!.dependsOn).toEqual(['bake-lab-kube']);
    expect(targets['bake-lab-worker']!.options!.command).toContain('images bake --profile lab --only worker');
    expect(targets['bake-xenial-2016-worker']!.dependsOn).toEqual(['bake-xenial-2016-felix']);
    expect(targets['bake-xenial-2016-felix']!.dependsOn).toEqual(['bake-xenial-2016-vpp']);
    expect(targets.bake!.options!.command).toContain('images bake');
  });

  it('maps the user verbs to CLI commands, and gives every project cached typecheck and test targets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxcar-nx-graph-'));
    try {
      const file = join(dir, 'graph.json');
      await execa('npx', ['nx', 'graph', `--file=${file}`], { cwd: REPO_ROOT, env: NX_ENV });
      const nodes = JSON.parse(readFileSync(file, 'utf8')).graph.nodes as Record<string, { data: { targets: Record<string, Target> } }>;
      const targets = (project: string) => nodes[project]!.data.targets;
      expect(targets('cluster').status!.options!.command).toBe(`${CLI} cluster status`);
      for (const verb of ['snapshot', 'stop', 'start']) expect(targets('cluster')[verb]!.options!.command).toBe(`${CLI} cluster ${verb}`);
      expect(targets('images')['refresh-lock']!.options!.command).toBe(`${CLI} artifacts refresh`);
      for (const project of ['model', 'bake', 'cli', 'cluster']) {
        expect(targets(project).test!.options!.command).toContain(`--project fast`);
        expect(targets(project).test!.cache).toBe(true);
        expect(targets(project).typecheck!.inputs).toContain('^production');
        expect(targets(project).typecheck!.cache).toBe(true);
      }
      expect(targets('model').test!.options!.command).toContain('libs/model/');
      // e2e keeps its own test target: the VM suite, never taken from the cache.
      expect(targets('e2e').test!.options!.command).toContain('--project slow');
      expect(targets('e2e').test!.cache).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
