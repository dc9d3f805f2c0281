import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { atomicWriteFile, tempPathIn, TEMP_PREFIX } from './atomic-write.ts';

let dir: string;
beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'boxcar-kit-write-'))));
afterEach(() => rm(dir, { recursive: true, force: true }));

it('replaces a file with the new content, in the mode asked, leaving no temporary file', async () => {
  const path = join(dir, 'record.json');
  await writeFile(path, 'old');
  await atomicWriteFile(path, 'new', { mode: 0o600 });
  expect(await readFile(path, 'utf8')).toBe('new');
  expect((await stat(path)).mode & 0o777).toBe(0o600);
  expect(await readdir(dir)).toEqual(['record.json']);
});

it('leaves no temporary file when the write fails', async () => {
  // A directory in the way makes the last step, the rename, fail.
  await mkdir(join(dir, 'taken'));
  await expect(atomicWriteFile(join(dir, 'taken'), 'new')).rejects.toThrow(/EISDIR/);
  expect(await readdir(dir)).toEqual(['taken']);
});

it('names temporary files so that they never end like the file they stand for', () => {
  const temp = tempPathIn(dir, 'record.json');
  expect(temp.startsWith(join(dir, TEMP_PREFIX))).toBe(true);
  expect(temp.endsWith('.json')).toBe(false);
});
