export * from './paths.ts';
export * from './plan.ts';
export * from './bake.ts';
export * from './progress.ts';
export * from './session.ts';
export * from './generate.ts';
