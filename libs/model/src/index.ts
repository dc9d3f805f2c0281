export * from './types.ts';
export * from './ip.ts';
export * from './json-file.ts';
export * from './profile.ts';
export * from './resolve.ts';
export * from './config-file.ts';
export * from './layer.ts';
export * from './canonical-json.ts';
