import { sha256Hex } from '@boxcar/kit';
import { canonicalJson, type BuilderName, type Layer, type LayerGraph } from '@boxcar/model';
import { layerTemplate } from '@boxcar/packer';

// A layer's content key (as osbuild keys its stages): a sha256 over its parent's key and everything
// that goes into the layer. No absolute path, time or host name is part of it, so the same checkout
// gives the same keys on every machine, and a change anywhere changes exactly the layer it is in and
// the layers below it.

/** Bump when the meaning of a key's inputs changes, so that old store entries are not reused. */
export const KEY_FORMAT = 1;

export interface KeyInputs {
  format: number;
  parent: string | null;
  builder: BuilderName;
  /** sha256 of the generated template (canonical JSON): settings, provisioner order, env, paths. */
  template: string;
  scripts: Record<string, string>;
  files: Record<string, string>;
  artifacts: Record<string, string>;
  /** Content keys of the build stages whose outputs the layer installs (absent in keys made before build stages). */
  builds?: Record<string, string>;
  /** For the root layer: its base source, plus what else shapes the base image (bootstrap key, builder scripts). */
  base: unknown;
}

export interface LayerKey {
  layer: string;
  builder: BuilderName;
  key: string;
  inputs: KeyInputs;
}

export function keyInputs(graph: LayerGraph, layer: Layer, builder: BuilderName, parentKey: string | null, baseExtras: unknown): KeyInputs {
  return {
    format: KEY_FORMAT,
    parent: parentKey,
    builder,
    template: sha256Hex(canonicalJson(layerTemplate(graph, layer, builder))),
    scripts: Object.fromEntries(layer.scripts.map((script) => [script.path, script.sha256])),
    files: Object.fromEntries(layer.files.flatMap((upload) => upload.entries.map((entry) => [`${upload.dest}<-${entry.path}`, entry.sha256]))),
    artifacts: Object.fromEntries(layer.artifacts.map((artifact) => [artifact.id, artifact.digest])),
    ...(layer.builds.length ? { builds: Object.fromEntries(layer.builds.map((use) => [use.build, use.key])) } : {}),
    base: layer.parent === undefined ? { source: layer.sources[builder], extras: baseExtras } : null,
  };
}

/**
 * Keys of every layer for one builder, parents first. `baseExtras` is what shapes the root image
 * beyond the layer data (for instance the bootstrap public key baked into it).
 */
export function layerKeys(graph: LayerGraph, builder: BuilderName, baseExtras: unknown = null): LayerKey[] {
  const keys = new Map<string, string>();
  return graph.layers.map((layer) => {
    const parentKey = layer.parent === undefined ? null : keys.get(layer.parent)!;
    const inputs = keyInputs(graph, layer, builder, parentKey, baseExtras);
    const key = sha256Hex(canonicalJson(inputs));
    keys.set(layer.name, key);
    return { layer: layer.name, builder, key, inputs };
  });
}

/** Names of the inputs that differ between two keyings of a layer, for "why does this rebuild". */
export function changedInputs(previous: KeyInputs | undefined, current: KeyInputs): string[] {
  if (!previous) return ['never built'];
  const changes: string[] = [];
  if (previous.format !== current.format) changes.push('key format');
  if (previous.parent !== current.parent) changes.push('parent layer');
  if (previous.builder !== current.builder) changes.push('builder');
  if (previous.template !== current.template) changes.push('template');
  for (const group of ['scripts', 'files', 'artifacts', 'builds'] as const) {
    const names = new Set([...Object.keys(previous[group] ?? {}), ...Object.keys(current[group] ?? {})]);
    for (const name of [...names].sort()) {
      const before = previous[group]?.[name];
      const after = current[group]?.[name];
      if (before !== after) changes.push(`${group.slice(0, -1)} ${name} ${before === undefined ? 'added' : after === undefined ? 'removed' : 'changed'}`);
    }
  }
  if (canonicalJson(previous.base) !== canonicalJson(current.base)) changes.push('base source');
  return changes;
}
