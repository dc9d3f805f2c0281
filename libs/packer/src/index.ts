export * from './version.ts';
export * from './template.ts';
