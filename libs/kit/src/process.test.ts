import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { processAlive, processStartTicks } from './process.ts';

it('tells a running process from one that has exited, and reads when a process started', async () => {
  const exited = spawnSync('true').pid;
  expect(processAlive(process.pid)).toBe(true);
  expect(processAlive(exited)).toBe(false);
  expect(await processStartTicks(exited)).toBeUndefined();
  const ticks = await processStartTicks(process.pid);
  expect(Number.isSafeInteger(ticks)).toBe(true);
  // pid 1 started before this test runner.
  expect((await processStartTicks(1))!).toBeLessThanOrEqual(ticks!);
});
