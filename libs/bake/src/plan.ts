import type { BoxStore } from '@boxcar/box-store';
import { changedInputs, layerKeys, type KeyInputs, type LayerKey } from '@boxcar/layers';
import type { BuilderName, LayerGraph, Profile } from '@boxcar/model';

export type LayerStatus = 'cached' | 'build';

export interface PlannedLayer {
  layer: string;
  parent?: string;
  key: string;
  inputs: KeyInputs;
  status: LayerStatus;
  /** Why it builds: inputs that changed since the last published version, or "forced". */
  reasons: string[];
  box?: { name: string; role: string };
}

export interface BakePlan {
  profile: string;
  builder: BuilderName;
  layers: PlannedLayer[];
}

export interface PlanOptions {
  builder: BuilderName;
  /** Bake only this layer (and whatever of its ancestors is missing). */
  only?: string[];
  /** Rebuild these layers even when their key is in the store. */
  force?: string[];
  /** What shapes the root image beyond layers.json (bootstrap key, base-image script). */
  baseExtras: unknown;
}

/** Looks every layer's key up in the store: the least work that is correct. */
export async function planBake(graph: LayerGraph, profile: Profile, store: BoxStore, options: PlanOptions): Promise<BakePlan> {
  if (!graph.builders.includes(options.builder)) {
    throw new Error(`profile "${graph.profile}" has no base for builder "${options.builder}"; builders: ${graph.builders.join(', ')}`);
  }
  for (const name of [...(options.only ?? []), ...(options.force ?? [])]) {
    if (!graph.layers.some((layer) => layer.name === name)) {
      throw new Error(`unknown layer "${name}" in profile "${graph.profile}"; layers: ${graph.layers.map((l) => l.name).join(', ')}`);
    }
  }
  const keys = layerKeys(graph, options.builder, options.baseExtras);
  const wanted = wantedLayers(graph, options.only);
  const planned: PlannedLayer[] = [];
  for (const layerKey of keys) {
    const layer = graph.layers.find((candidate) => candidate.name === layerKey.layer)!;
    if (!wanted.has(layer.name)) continue;
    const present = await isPublished(store, graph.profile, layerKey, layer.box ? profile.boxes[layer.box.role] : undefined);
    const forced = options.force?.includes(layer.name) ?? false;
    const status: LayerStatus = present && !forced ? 'cached' : 'build';
    const reasons = forced ? ['forced'] : status === 'build' ? changedInputs(await lastInputs(store, graph.profile, layer.name), layerKey.inputs) : [];
    planned.push({
      layer: layer.name,
      ...(layer.parent ? { parent: layer.parent } : {}),
      key: layerKey.key,
      inputs: layerKey.inputs,
      status,
      reasons,
      ...(layer.box ? { box: { name: profile.boxes[layer.box.role], role: layer.box.role } } : {}),
    });
  }
  return { profile: graph.profile, builder: options.builder, layers: planned };
}

function wantedLayers(graph: LayerGraph, only: string[] | undefined): Set<string> {
  if (!only?.length) return new Set(graph.layers.map((layer) => layer.name));
  const wanted = new Set<string>();
  for (const name of only) {
    let current = graph.layers.find((layer) => layer.name === name);
    while (current) {
      wanted.add(current.name);
      current = graph.layers.find((layer) => layer.name === current!.parent);
    }
  }
  return wanted;
}

/** The layer is in the store, and so is its box when it has one. */
export async function isPublished(store: BoxStore, profile: string, layerKey: Pick<LayerKey, 'layer' | 'key'>, boxName: string | undefined): Promise<boolean> {
  if (!(await store.hasLayer(profile, layerKey.layer, layerKey.key))) return false;
  return boxName ? (await store.findBoxVersionByKey(boxName, layerKey.key)) !== undefined : true;
}

/** The inputs recorded with the newest published version of a layer, if the store can tell. */
async function lastInputs(store: BoxStore, profile: string, layer: string): Promise<KeyInputs | undefined> {
  const latest = await store.latestLayer(profile, layer);
  return latest?.meta.inputs as KeyInputs | undefined;
}
