import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKeyInputs, loadLayerGraph } from '@boxcar/layers';
import type { BuildStage } from '@boxcar/model';
import { buildOutputDir, buildReasons, readBuildRecord, type BuildRecord } from './build-stage.ts';

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
