import { spawn, spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { descendants, processAlive, processIdentity, processStartTicks, runsHere, stopProcess } from './process.ts';

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

it('finds a process it recorded again, ends it and what it started, and never a later process under its pid', async () => {
  const parent = spawn('sh', ['-c', 'sleep 600 & wait'], { stdio: 'ignore' });
  try {
    const recorded = await processIdentity(parent.pid!);
    expect(recorded).toMatchObject({ pid: parent.pid, host: (await processIdentity(process.pid)).host });
    expect(await runsHere(recorded)).toBe(true);
    expect(await runsHere({ ...recorded, startTicks: recorded.startTicks! + 1 })).toBe(false);
    expect(await runsHere({ ...recorded, host: 'another-host' })).toBe(false);
    let children: { pid: number }[] = [];
    for (let attempt = 0; attempt < 50 && children.length === 0; attempt += 1) {
      children = await descendants(parent.pid!);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(children).toHaveLength(1);
    await stopProcess(children[0]!.pid, 1_000);
    await stopProcess(parent.pid!, 1_000);
    expect(await runsHere(recorded)).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
});
