import { join } from 'node:path';
import { executeBake, planBake, type BakePlan, type BakeReporter, type BakeResult } from '@boxcar/bake';
import { openStore } from '@boxcar/box-store';
import { loadLayerGraph } from '@boxcar/layers';
import { loadProfile } from '@boxcar/model';
import { detectPacker } from '@boxcar/packer';
import { bakerBootstrapKey } from '@boxcar/providers';
import { PROFILE, publishBase, type World } from './helpers.ts';

// The bake library driven in this process, without the CLI around it: executeBake on the world's
// profile and store, with a signal the test controls. The base layer is published first under the
// planned key, so the bake starts at "node" (Packer is the test double named in PACKER_BINARY).

export interface LibraryBake {
  /** Wrapped so that returning it from an async function does not wait for it. */
  result: Promise<BakeResult>;
  plan: BakePlan;
  /** Everything the bake reported, one line per event. */
  messages: string[];
}

export async function startLibraryBake(world: World, double: Record<string, unknown>, signal: AbortSignal): Promise<LibraryBake> {
  // The runner, work dirs and logs read these at call time.
  Object.assign(process.env, world.env, { PACKER_DOUBLE: JSON.stringify(double) });
  const graph = await loadLayerGraph(PROFILE, world.profiles);
  const profile = loadProfile(PROFILE, world.profiles);
  const store = openStore(world.storeUrl);
  const buildCache = join(world.root, 'builds');
  const options = { builder: 'qemu' as const, baseExtras: { bakedBy: 'the fault tests, in process' }, buildCache };
  const first = await planBake(graph, profile, store, options);
  await publishBase(world, first.layers[0]!.key, first.layers[0]!.inputs);
  const plan = await planBake(graph, profile, store, options);
  const messages: string[] = [];
  const reporter: BakeReporter = {
    layerStart: (layer, _key, log) => messages.push(`[${layer}] baking, log ${log}`),
    step: (layer, step) => messages.push(`[${layer}] ${step}`),
    line: () => undefined,
    layerDone: (layer) => messages.push(`[${layer}] done`),
    layerFailed: (layer, error) => messages.push(`[${layer}] FAILED: ${error.message}`),
    message: (text) => messages.push(text),
  };
  const packer = await detectPacker();
  if (!packer) throw new Error(`PACKER_BINARY ${process.env.PACKER_BINARY} does not answer "version"`);
  const result = executeBake(plan, {
    graph,
    profile,
    store,
    builder: 'qemu',
    packer,
    accelerator: 'tcg',
    buildCache,
    bootstrap: await bakerBootstrapKey(),
    rootImage: () => Promise.reject(new Error('the base layer is in the store: no root image is needed')),
    artifactCache: join(world.cache, 'boxcar', 'artifacts'),
    jobs: 1,
    signal,
    reporter,
  });
  return { result, plan, messages };
}
