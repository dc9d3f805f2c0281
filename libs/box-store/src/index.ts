// The public API of @boxcar/box-store; what is not named here is private to the library.

// A store by its address (file://, http(s)://), and the default one (~/.cache/boxcar/store or BOXCAR_STORE).
export { openStore } from './store.ts';
export { defaultStoreUrl } from './store-url.ts';

// What a store does: publish, read and verify boxes and layers, list, gc, copy; PublishStage names the
// points at which a publish calls its onPublishStage hook (testing/publish-child.ts stops there).
export type { BoxStore, HttpStoreLimits, PublishStage } from './types.ts';

// Copies (publish, pull): the layers that travel with the boxes they were baked from.
export type { CopiedLayers, LayerId } from './types.ts';

// References: which cluster's nodes run on which layer (gc keeps those layers and their box versions).
export type { KeptForRefs, LayerRef, NewLayerRef, RefFilter } from './types.ts';
