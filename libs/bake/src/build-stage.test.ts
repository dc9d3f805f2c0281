import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKeyInputs, layerKeys, loadLayerGraph } from '@boxcar/layers';
import type { BuildStage } from '@boxcar/model';
import { executeBake, type BakeContext, type BakeReporter } from './bake.ts';
import { buildOutputDir, buildReasons, readBuildRecord, type BuildRecord } from './build-stage.ts';
import type { BakePlan } from './plan.ts';

// The bake's view of a build stage on this machine: built under its key or not, and why it builds.
// (The real compile runs in the lab end-to-end test.)

const lab = await loadLayerGraph('lab');
const kubernetes = lab.builds.find((stage) => stage.name === 'kubernetes')!;

function recordIn(cache: string, stage: BuildStage, inputs: Record<string, unknown>, finishedAt: string): void {
  const dir = buildOutputDir(cache, stage);
  mkdirSync(dir, { recursive: true });
  const record: BuildRecord = { name: stage.name, key: stage.key, inputs, outputs: {}, seconds: 1, steps: {}, finishedAt };
  writeFileSync(join(dir, 'build.json'), JSON.stringify(record));
}

describe('build stages in the bake', () => {
  it('the lab compiles Kubernetes from the pinned source with its patches, and two layers install the outputs', () => {
    expect(kubernetes.artifacts.map((a) => a.id)).toEqual(expect.arrayContaining(['src-kubernetes', 'deb-golang-1.19-go', 'deb-golang-github-modern-go-reflect2-dev']));
    expect(kubernetes.patches.entries.map((p) => p.path)).toEqual(['patches/kubernetes/01-reflect2-1.0.2.sh', 'patches/kubernetes/02-version-mark.patch']);
    expect(kubernetes.env).toEqual({ BOXCAR_VERSION: 'v1.20.2' });
    expect(lab.layers.filter((layer) => layer.builds.length).map((layer) => layer.name)).toEqual(['kube', 'master']);
  });

  it('a stage never built on this machine says so', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'builds-'));
    expect(await readBuildRecord(cache, kubernetes)).toBeUndefined();
    expect(await buildReasons(cache, kubernetes)).toEqual(['never built']);
  });

  it('a stage built under an older key names what changed since: a patch added', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'builds-'));
    const older: BuildStage = { ...kubernetes, key: 'f'.repeat(64), patches: { ...kubernetes.patches, entries: kubernetes.patches.entries.slice(0, 1) } };
    recordIn(cache, older, buildKeyInputs(older), '2026-12-01T00:00:00.000Z');
    expect(await buildReasons(cache, kubernetes)).toEqual(['patch patches/kubernetes/02-version-mark.patch added']);
  });

  it('compares with the newest build of the stage, and names a changed environment', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'builds-'));
    const oldest: BuildStage = { ...kubernetes, key: '1'.repeat(64), root: { ...kubernetes.root, include: ['gcc'] } };
    const newer: BuildStage = { ...kubernetes, key: '2'.repeat(64), env: { BOXCAR_VERSION: 'v1.20.1' } };
    recordIn(cache, oldest, buildKeyInputs(oldest), '2026-12-01T00:00:00.000Z');
    recordIn(cache, newer, buildKeyInputs(newer), '2026-12-02T00:00:00.000Z');
    expect(await buildReasons(cache, kubernetes)).toEqual(['env changed']);
  });

  it('names the host-side runner when only it changed', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'builds-'));
    const older: BuildStage = { ...kubernetes, key: '3'.repeat(64), runner: 'r'.repeat(64) };
    recordIn(cache, older, buildKeyInputs(older), '2026-12-01T00:00:00.000Z');
    expect(kubernetes.runner).toMatch(/^[0-9a-f]{64}$/);
    expect(await buildReasons(cache, kubernetes)).toEqual(['runner changed']);
  });

  it('a stage whose key is built reads back its record', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'builds-'));
    recordIn(cache, kubernetes, {}, '2026-12-03T00:00:00.000Z');
    expect((await readBuildRecord(cache, kubernetes))?.key).toBe(kubernetes.key);
  });
});

describe('a bake with a build stage to run', () => {
  it("fetches every artifact first: a stage's missing download fails the bake naming the stage, before any compile or layer", async () => {
    // An upstream on 127.0.0.1 that has nothing (HTTP 404).
    const server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    const root = mkdtempSync(join(tmpdir(), 'bake-stage-'));
    try {
      const dir = join(root, 'demo');
      mkdirSync(join(dir, 'scripts'), { recursive: true });
      writeFileSync(join(dir, 'profile.json'), '{}');
      writeFileSync(join(dir, 'scripts', 'build.sh'), 'exit 0\n');
      writeFileSync(join(dir, 'scripts', 'tools.sh'), 'exit 0\n');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/src.tar.gz`;
      writeFileSync(join(dir, 'artifacts.lock.json'), JSON.stringify({ lockVersion: 1, artifacts: [{ id: 'src', kind: 'file', url, sha256: 'a'.repeat(64), size: 10, upstreamGone: false }] }));
      writeFileSync(
        join(dir, 'layers.json'),
        JSON.stringify({
          builds: [{ name: 'tool', script: 'scripts/build.sh', root: { suite: 'bookworm', mirror: 'http://deb.debian.org/debian' }, artifacts: ['src'], outputs: ['bin/tool'] }],
          layers: [
            { name: 'base', source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian' } },
            { name: 'tools', parent: 'base', scripts: ['scripts/tools.sh'], builds: [{ build: 'tool', files: ['bin/tool'] }] },
          ],
        }),
      );
      const graph = await loadLayerGraph('demo', root);
      const keys = layerKeys(graph, 'qemu', null);
      const stage = graph.builds[0]!;
      const plan: BakePlan = {
        profile: 'demo',
        builder: 'qemu',
        builds: [{ build: 'tool', key: stage.key, status: 'build', reasons: ['never built'], neededBy: ['tools'] }],
        layers: [{ layer: 'tools', parent: 'base', key: keys[1]!.key, inputs: keys[1]!.inputs, status: 'build', reasons: ['never built'] }],
      };
      const failures: string[] = [];
      const started: string[] = [];
      const reporter: BakeReporter = {
        layerStart: (layer) => started.push(layer),
        step: () => undefined,
        line: () => undefined,
        layerDone: () => undefined,
        layerFailed: (layer, error) => failures.push(`${layer}: ${error.message}`),
        message: () => undefined,
      };
      const buildCache = join(root, 'builds');
      // Nothing past the downloads may be reached: the store, packer and the root image are not there.
      const context = { graph, buildCache, artifactCache: join(root, 'artifacts'), reporter, jobs: 1, builder: 'qemu' } as unknown as BakeContext;
      const result = await executeBake(plan, context);
      expect(result.failed?.layer).toBe('build tool');
      expect(failures).toEqual([expect.stringMatching(/^build tool: .*HTTP 404/)]);
      expect(result.skipped).toEqual(['tools']);
      expect(started).toEqual([]);
      expect(existsSync(buildCache)).toBe(false);
    } finally {
      server.close();
    }
  });
});
