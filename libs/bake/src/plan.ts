import type { BoxStore } from '@boxcar/box-store';
import { changedInputs, layerKeys, type KeyInputs, type LayerKey } from '@boxcar/layers';
import type { BuilderName, LayerGraph, Profile } from '@boxcar/model';
import { buildReasons, readBuildRecord } from './build-stage.ts';

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

/** A build stage: built on this machine already, to build (a layer to build needs it), or not needed by this bake. */
export interface PlannedBuild {
  build: string;
  key: string;
  status: 'cached' | 'build' | 'not needed';
  reasons: string[];
  /** The layers to build that install its outputs. */
  neededBy: string[];
}

export interface BakePlan {
  profile: string;
  builder: BuilderName;
  builds: PlannedBuild[];
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
  /** Where build stage outputs are kept (libs/bake paths.ts buildStageCache). */
  buildCache: string;
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
  return { profile: graph.profile, builder: options.builder, builds: await planBuilds(graph, planned, options.buildCache), layers: planned };
}

/** A stage builds only for a layer that builds, and only when this machine has no output under its key. */
async function planBuilds(graph: LayerGraph, layers: PlannedLayer[], cache: string): Promise<PlannedBuild[]> {
  const building = new Set(layers.filter((layer) => layer.status === 'build').map((layer) => layer.layer));
  const planned: PlannedBuild[] = [];
  for (const stage of graph.builds) {
    const neededBy = graph.layers.filter((layer) => building.has(layer.name) && layer.builds.some((use) => use.build === stage.name)).map((layer) => layer.name);
    const built = (await readBuildRecord(cache, stage)) !== undefined;
    const status = neededBy.length === 0 ? 'not needed' : built ? 'cached' : 'build';
    planned.push({ build: stage.name, key: stage.key, status, reasons: status === 'build' ? await buildReasons(cache, stage) : [], neededBy });
  }
  return planned;
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
