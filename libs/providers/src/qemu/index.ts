export * from './args.ts';
export * from './layout.ts';
export * from './provider.ts';
