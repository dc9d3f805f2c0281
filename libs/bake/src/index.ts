// The public API of @boxcar/bake; what is not named here is private to the library.

// A bake as the CLI runs it: open a session (profile, store, packer, artifacts), then plan and execute.
export { openBake } from './session.ts';

// The plan (each layer cached or to build, and why) and its execution; the e2e fault tests drive these.
export { planBake, type BakePlan } from './plan.ts';
export { executeBake, type BakeReporter, type BakeResult } from './bake.ts';

// Live progress per layer on a terminal.
export { createReporter } from './progress.ts';

// `images generate` and `images validate`: every layer's template per builder, and packer validate.
export { generateTemplates, validateTemplates } from './generate.ts';
