#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so that the repo needs no build step. The CLI runs as a child
// so that this wrapper can stay alive while it cleans up: signals are passed on, never acted upon
// here, and the child's exit code is ours.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
// Resolved from this file, not from the working directory (terraform runs the stack's commands anywhere).
const tsx = import.meta.resolve('tsx');
// The IPC channel tells the CLI when this wrapper is gone, even if it was SIGKILLed (terraform kills the
// shell of a provisioner it stops): the CLI then aborts as on SIGTERM instead of living on as an orphan.
const child = spawn(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], {
  stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  cwd: process.cwd(),
  env: process.env,
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // A Ctrl-C in a terminal reaches the child directly (same process group); a signal sent to this
  // process alone is forwarded.
  process.on(signal, () => child.kill(signal));
}
// The same for this wrapper: when the process that started it (terraform's shell) dies, the CLI is told.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) child.kill('SIGTERM');
}, 500).unref();
child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
