export * from './vagrantfile.ts';
export * from './runner.ts';
