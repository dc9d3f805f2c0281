import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLayerGraph, LayerGraphError } from './graph.ts';
import { changedInputs, layerKeys } from './keys.ts';

// Build stages (layers.json "builds"): their content keys, and what a change of one does to the layers.

const SHA_A = 'a'.repeat(64);

/** base -> tools (installs the build's bin/tool) -> box; base -> plain. */
function writeProfile(): string {
  const root = mkdtempSync(join(tmpdir(), 'builds-'));
  const dir = join(root, 'demo');
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'builds'), { recursive: true });
  mkdirSync(join(dir, 'patches', 'tool'), { recursive: true });
  writeFileSync(join(dir, 'profile.json'), JSON.stringify({ kubernetes: { version: 'v1.2.3' } }));
  for (const script of ['base', 'tools', 'box', 'plain']) writeFileSync(join(dir, 'scripts', `${script}.sh`), `echo ${script}\n`);
  writeFileSync(join(dir, 'builds', 'tool.sh'), 'echo build\n');
  writeFileSync(join(dir, 'builds', 'helper.sh'), 'echo helper\n');
  writeFileSync(join(dir, 'patches', 'tool', '01-fix.patch'), '--- a/x\n+++ b/x\n');
  writeFileSync(
    join(dir, 'artifacts.lock.json'),
    JSON.stringify({ lockVersion: 1, artifacts: [{ id: 'src-tool', kind: 'file', url: 'https://example.org/tool.tar.gz', sha256: SHA_A, size: 10, upstreamGone: false }] }),
  );
  writeLayers(dir, {});
  return root;
}

function writeLayers(dir: string, change: { build?: Record<string, unknown>; use?: Record<string, unknown> }): void {
  writeFileSync(
    join(dir, 'layers.json'),
    JSON.stringify({
      builds: [
        {
          name: 'tool',
          script: 'builds/tool.sh',
          helpers: ['builds/helper.sh'],
          patches: 'patches/tool',
          root: { suite: 'bookworm', mirror: 'http://deb.debian.org/debian', include: ['gcc'] },
          artifacts: ['src-tool'],
          env: { TOOL_VERSION: '${kubernetes.version}' },
          outputs: ['bin/tool', 'bin/other'],
          ...change.build,
        },
      ],
      layers: [
        { name: 'base', source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian' }, scripts: ['scripts/base.sh'] },
        { name: 'tools', parent: 'base', scripts: ['scripts/tools.sh'], builds: [{ build: 'tool', files: ['bin/tool'], ...change.use }] },
        { name: 'box', parent: 'tools', scripts: ['scripts/box.sh'], box: { role: 'master' } },
        { name: 'plain', parent: 'base', scripts: ['scripts/plain.sh'] },
      ],
    }),
  );
}

const keysOf = async (root: string) => {
  const graph = await loadLayerGraph('demo', root);
  return { graph, keys: Object.fromEntries(layerKeys(graph, 'qemu', null).map((k) => [k.layer, k])) };
};

describe('build stages', () => {
  it('are loaded with every input hashed, profile values substituted, and a key', async () => {
    const root = writeProfile();
    const { graph } = await keysOf(root);
    const [stage] = graph.builds;
    expect(stage!.script.path).toBe('builds/tool.sh');
    expect(stage!.helpers.map((h) => h.path)).toEqual(['builds/helper.sh']);
    expect(stage!.patches.entries.map((p) => p.path)).toEqual(['patches/tool/01-fix.patch']);
    expect(stage!.env).toEqual({ TOOL_VERSION: 'v1.2.3' });
    expect(stage!.key).toMatch(/^[0-9a-f]{64}$/);
    expect(graph.layers.find((l) => l.name === 'tools')!.builds).toEqual([{ build: 'tool', key: stage!.key, files: ['bin/tool'] }]);
  });

  it('a patch added to the stage changes its key and the keys of the layers that install it and their children, nothing else', async () => {
    const root = writeProfile();
    const before = await keysOf(root);
    writeFileSync(join(root, 'demo', 'patches', 'tool', '02-mark.patch'), '--- a/y\n+++ b/y\n');
    const after = await keysOf(root);
    expect(after.graph.builds[0]!.key).not.toBe(before.graph.builds[0]!.key);
    const changed = Object.keys(before.keys).filter((layer) => before.keys[layer]!.key !== after.keys[layer]!.key);
    expect(changed).toEqual(['tools', 'box']);
    expect(changedInputs(before.keys.tools!.inputs, after.keys.tools!.inputs)).toEqual(['template', 'build tool changed']);
  });

  it.each([
    ['the build script', (dir: string) => writeFileSync(join(dir, 'builds', 'tool.sh'), 'echo changed\n')],
    ['a helper', (dir: string) => writeFileSync(join(dir, 'builds', 'helper.sh'), 'echo changed\n')],
    ['the build root packages', (dir: string) => writeLayers(dir, { build: { root: { suite: 'bookworm', mirror: 'http://deb.debian.org/debian', include: ['gcc', 'make'] } } })],
    ['the environment', (dir: string) => writeLayers(dir, { build: { env: { TOOL_VERSION: 'v9' } } })],
    ['a patch removed', (dir: string) => rmSync(join(dir, 'patches', 'tool', '01-fix.patch'))],
  ])('%s is part of the key', async (_what, change) => {
    const root = writeProfile();
    const before = (await keysOf(root)).graph.builds[0]!.key;
    change(join(root, 'demo'));
    expect((await keysOf(root)).graph.builds[0]!.key).not.toBe(before);
  });

  it('the key is the same in another checkout (no absolute path in it)', async () => {
    const a = (await keysOf(writeProfile())).graph.builds[0]!.key;
    const b = (await keysOf(writeProfile())).graph.builds[0]!.key;
    expect(b).toBe(a);
  });

  it('reports every problem with its field path: unknown build, file that is not an output, missing script and patches folder', async () => {
    const root = writeProfile();
    const dir = join(root, 'demo');
    const document = JSON.parse(readFileSync(join(dir, 'layers.json'), 'utf8'));
    document.builds[0].script = 'builds/missing.sh';
    document.builds[0].patches = 'patches/none';
    document.layers[1].builds = [{ build: 'tool', files: ['bin/nope'] }, { build: 'compiler', files: ['x'] }];
    writeFileSync(join(dir, 'layers.json'), JSON.stringify(document));
    const error = await loadLayerGraph('demo', root).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LayerGraphError);
    const problems = (error as LayerGraphError).problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^builds\[0\]\.script: no such file builds\/missing\.sh/),
        expect.stringMatching(/^builds\[0\]\.patches: no such folder patches\/none/),
        expect.stringMatching(/^layers\[1\]\.builds\[1\]\.build: unknown build "compiler"/),
      ]),
    );
  });

  it('a file the layer takes must be an output of the build', async () => {
    const root = writeProfile();
    writeLayers(join(root, 'demo'), { use: { files: ['bin/nope'] } });
    const error = (await loadLayerGraph('demo', root).catch((caught: unknown) => caught)) as LayerGraphError;
    expect(error.problems.map((p) => `${p.path}: ${p.message}`)).toEqual(['layers[1].builds[0].files[0]: "bin/nope" is not an output of build "tool"; outputs: bin/tool, bin/other']);
  });
});
