// The public API of @boxcar/layers; what is not named here is private to the library.

// A profile's layer graph, loaded from its layers.json and checked.
export { buildKeyInputs, loadLayerGraph, type LoadedLayerGraph } from './graph.ts';

// Content keys: per layer and builder, and which of their inputs changed since the last bake.
export { changedInputs, layerKeys, type KeyInputs, type LayerKey } from './keys.ts';
