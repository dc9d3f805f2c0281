export * from './version.ts';
export * from './template.ts';
export * from './machine-readable.ts';
export * from './runner.ts';
