import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROFILES_DIR } from '@boxcar/model';
import { loadLayerGraph, LayerGraphError } from './graph.ts';
import { changedInputs, layerKeys } from './keys.ts';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

/** A small profile on disk: base -> tools (uploads patches/) -> box-a; tools -> box-b. */
function writeProfile(root: string): string {
  const dir = join(root, 'demo');
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'patches', 'felix'), { recursive: true });
  writeFileSync(join(dir, 'profile.json'), '{}');
  for (const script of ['base', 'tools', 'box-a', 'box-b']) writeFileSync(join(dir, 'scripts', `${script}.sh`), `#!/usr/bin/env bash\nset -euo pipefail\necho ${script}\n`);
  writeFileSync(join(dir, 'patches', 'felix', '0001-fix.patch'), '--- a/x\n+++ b/x\n');
  writeFileSync(
    join(dir, 'artifacts.lock.json'),
    JSON.stringify({ lockVersion: 1, artifacts: [{ id: 'tool', kind: 'file', url: 'https://example.org/tool', sha256: SHA_A, size: 10, upstreamGone: false }] }),
  );
  writeFileSync(
    join(dir, 'layers.json'),
    JSON.stringify({
      layers: [
        { name: 'base', source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian' }, scripts: ['scripts/base.sh'] },
        { name: 'tools', parent: 'base', scripts: ['scripts/tools.sh'], artifacts: ['tool'], files: [{ src: 'patches/felix/', dest: '/var/cache/patches/felix' }], checks: { absent: ['/etc/ssh/ssh_host_*'] } },
        { name: 'box-a', parent: 'tools', scripts: ['scripts/box-a.sh'], env: { ROLE: 'a' }, box: { role: 'master' } },
        { name: 'box-b', parent: 'tools', scripts: ['scripts/box-b.sh'], box: { role: 'worker' } },
      ],
    }),
  );
  return root;
}

async function keysOf(root: string, builder: 'qemu' = 'qemu', extras: unknown = { key: 'pub' }) {
  const graph = await loadLayerGraph('demo', root);
  return Object.fromEntries(layerKeys(graph, builder, extras).map((k) => [k.layer, k.key]));
}

function edit(root: string, path: string, change: (text: string) => string): void {
  const file = join(root, 'demo', path);
  writeFileSync(file, change(readFileSync(file, 'utf8')));
}

function changedLayers(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys(before).filter((layer) => before[layer] !== after[layer]);
}

describe('layer content keys', () => {
  it('are identical across two runs and two checkout directories', async () => {
    const first = writeProfile(mkdtempSync(join(tmpdir(), 'keys-a-')));
    const second = mkdtempSync(join(tmpdir(), 'keys-b-'));
    cpSync(first, second, { recursive: true });
    const a1 = await keysOf(first);
    expect(await keysOf(first)).toEqual(a1);
    expect(await keysOf(second)).toEqual(a1);
    expect(new Set(Object.values(a1)).size).toBe(4);
  });

  it('the real lab profile keys the same from a copy of the profiles folder', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'keys-lab-'));
    cpSync(join(DEFAULT_PROFILES_DIR, 'lab'), join(copy, 'lab'), { recursive: true });
    const original = layerKeys(await loadLayerGraph('lab'), 'qemu', null).map((k) => k.key);
    const copied = layerKeys(await loadLayerGraph('lab', copy), 'qemu', null).map((k) => k.key);
    expect(copied).toEqual(original);
  });

  const cases: { title: string; change: (root: string) => void; expected: string[] }[] = [
    { title: 'one byte of a leaf script', change: (r) => edit(r, 'scripts/box-b.sh', (t) => t.replace('box-b', 'box-B')), expected: ['box-b'] },
    { title: 'one byte of the base script', change: (r) => edit(r, 'scripts/base.sh', (t) => `${t} `), expected: ['base', 'tools', 'box-a', 'box-b'] },
    { title: 'a patch', change: (r) => edit(r, 'patches/felix/0001-fix.patch', (t) => `${t}+change\n`), expected: ['tools', 'box-a', 'box-b'] },
    { title: 'a new patch dropped in', change: (r) => writeFileSync(join(r, 'demo', 'patches', 'felix', '0002-more.patch'), 'x'), expected: ['tools', 'box-a', 'box-b'] },
    { title: "an artifact's sha256", change: (r) => edit(r, 'artifacts.lock.json', (t) => t.replace(SHA_A, SHA_B)), expected: ['tools', 'box-a', 'box-b'] },
    { title: 'a template field (env of a layer)', change: (r) => edit(r, 'layers.json', (t) => t.replace('"ROLE":"a"', '"ROLE":"x"')), expected: ['box-a'] },
    { title: 'a check of a layer', change: (r) => edit(r, 'layers.json', (t) => t.replace('/etc/ssh/ssh_host_*', '/etc/ssh/ssh_host_*_key')), expected: ['tools', 'box-a', 'box-b'] },
    {
      title: 'a check added to a leaf layer',
      change: (r) => edit(r, 'layers.json', (t) => t.replace('"box":{"role":"worker"}', '"checks":{"empty":["/etc/machine-id"]},"box":{"role":"worker"}')),
      expected: ['box-b'],
    },
    { title: 'the base source', change: (r) => edit(r, 'layers.json', (t) => t.replace('bookworm', 'trixie')), expected: ['base', 'tools', 'box-a', 'box-b'] },
  ];
  it.each(cases)('$title changes exactly that layer and its descendants', async ({ change, expected }) => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'keys-')));
    const before = await keysOf(root);
    change(root);
    expect(changedLayers(before, await keysOf(root))).toEqual(expected);
  });

  it('the builder and the base extras (bootstrap key) are inputs', async () => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'keys-')));
    const graph = await loadLayerGraph('demo', root);
    const qemu = layerKeys(graph, 'qemu', { key: 'pub' });
    const virtualbox = layerKeys(graph, 'virtualbox-ovf', { key: 'pub' });
    const otherKey = layerKeys(graph, 'qemu', { key: 'other' });
    qemu.forEach((k, i) => {
      expect(virtualbox[i]!.key).not.toBe(k.key);
      expect(otherKey[i]!.key).not.toBe(k.key);
    });
  });

  it('say which input changed', async () => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'keys-')));
    const before = layerKeys(await loadLayerGraph('demo', root), 'qemu');
    edit(root, 'patches/felix/0001-fix.patch', (t) => `${t}x`);
    edit(root, 'scripts/box-b.sh', (t) => `${t}\n`);
    const after = layerKeys(await loadLayerGraph('demo', root), 'qemu');
    expect(changedInputs(before[1]!.inputs, after[1]!.inputs)).toEqual(['file /var/cache/patches/felix<-patches/felix/0001-fix.patch changed']);
    expect(changedInputs(before[3]!.inputs, after[3]!.inputs)).toEqual(['parent layer', 'script scripts/box-b.sh changed']);
    expect(changedInputs(undefined, after[0]!.inputs)).toEqual(['never built']);
  });
});

describe('layer graph validation', () => {
  it('lists every problem with its path', async () => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'graph-')));
    edit(root, 'layers.json', () =>
      JSON.stringify({
        layers: [
          { name: 'base', source: { type: 'iso', artifact: 'x' } },
          { name: 'Bad Name', parent: 'base' },
          { name: 'orphan', parent: 'ghost', scripts: ['scripts/missing.sh'], artifacts: ['nope'], box: { role: 'etcd' }, colour: 'red' },
        ],
      }),
    );
    const error = await loadLayerGraph('demo', root).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LayerGraphError);
    const paths = (error as LayerGraphError).problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'layers[0].source.type',
        'layers[1].name',
        'layers[2].parent',
        'layers[2].scripts[0]',
        'layers[2].artifacts[0]',
        'layers[2].box.role',
        'layers[2].colour',
      ]),
    );
  });

  it('takes the shape from the schema: a value of the wrong type says the expected type, once', async () => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'graph-')));
    edit(root, 'layers.json', () =>
      JSON.stringify({
        $schema: '../../../libs/model/schemas/layers.schema.json',
        layers: [
          { name: 'base', source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian' }, scripts: 'scripts/base.sh' },
          { name: 'tools', parent: 'base', artifacts: [7], env: { lower: 'x', N: 1 }, files: [{ src: 'patches/felix/', dest: 'relative' }] },
        ],
      }),
    );
    const error = await loadLayerGraph('demo', root).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LayerGraphError);
    expect((error as LayerGraphError).problems).toEqual([
      { path: 'layers[0].scripts', message: 'must be an array, got string "scripts/base.sh"' },
      { path: 'layers[1].files[0].dest', message: 'must be an absolute path in the guest, got "relative"' },
      { path: 'layers[1].artifacts[0]', message: 'must be a string, got number 7' },
      { path: 'layers[1].env.lower', message: 'field name must be an UPPER_CASE name, got "lower"' },
      { path: 'layers[1].env.N', message: 'must be a string, got number 1' },
    ]);
  });

  it('checks the checks: shape from the schema, then names that repeat and commands that run nothing', async () => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'graph-')));
    edit(root, 'layers.json', () =>
      JSON.stringify({
        layers: [
          { name: 'base', source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian' } },
          {
            name: 'box',
            parent: 'base',
            checks: {
              servicesEnabled: ['ssh.service', 'etcd'],
              servicesDisabled: ['ssh.service'],
              absent: ['relative/path', '/tmp/a', '/tmp/a'],
              empty: ['/etc/*-id'],
              commands: [{ name: 'Bad Name', run: 'true' }, { name: 'ok', run: ' ' }, { name: 'ok', run: 'true' }, { name: 'tpl', run: 'echo {{ .Path }}' }, { run: 'true' }],
              services: [],
            },
          },
        ],
      }),
    );
    const error = await loadLayerGraph('demo', root).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LayerGraphError);
    expect((error as LayerGraphError).problems).toEqual([
      { path: 'layers[1].checks.services', message: 'unknown field; allowed: servicesEnabled, servicesDisabled, absent, empty, commands' },
      { path: 'layers[1].checks.servicesEnabled[1]', message: 'must be a systemd unit name such as etcd.service, got "etcd"' },
      { path: 'layers[1].checks.absent[0]', message: 'must be an absolute path or glob in the guest, without spaces, got "relative/path"' },
      { path: 'layers[1].checks.empty[0]', message: 'must be an absolute path in the guest, without spaces or glob characters, got "/etc/*-id"' },
      { path: 'layers[1].checks.commands[0].name', message: "must be lowercase letters, digits, '.', '_' and '-', got \"Bad Name\"" },
      { path: 'layers[1].checks.commands[4].name', message: 'must be a string, got nothing (field missing)' },
      { path: 'layers[1].checks.absent[2]', message: '"/tmp/a" is listed twice' },
      { path: 'layers[1].checks.servicesDisabled[0]', message: '"ssh.service" is also in servicesEnabled' },
      { path: 'layers[1].checks.commands[1].run', message: 'must be a command, got ""' },
      { path: 'layers[1].checks.commands[3].run', message: 'must not contain "{{", got "echo {{ .Path }}"' },
    ]);
  });

  it('refuses a cycle', async () => {
    const root = writeProfile(mkdtempSync(join(tmpdir(), 'graph-')));
    edit(root, 'layers.json', () =>
      JSON.stringify({
        layers: [
          { name: 'base', source: { type: 'debootstrap', suite: 'bookworm', mirror: 'http://deb.debian.org/debian' } },
          { name: 'a', parent: 'b' },
          { name: 'b', parent: 'a' },
        ],
      }),
    );
    await expect(loadLayerGraph('demo', root)).rejects.toThrow(/cycle: a -> b -> a|cycle: b -> a -> b/);
  });
});
