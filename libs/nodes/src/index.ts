export * from './state.ts';
export * from './runtime.ts';
