export * from './graph.ts';
export * from './keys.ts';
