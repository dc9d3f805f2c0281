import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { pathExists, unlessMissing } from './path-exists.ts';

const dir = mkdtempSync(join(tmpdir(), 'boxcar-path-exists-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'file'), 'x');

describe('pathExists', () => {
  it('is true for a file and a directory', async () => {
    expect(await pathExists(join(dir, 'file'))).toBe(true);
    expect(await pathExists(dir)).toBe(true);
  });

  it('is false for nothing there, also below a file', async () => {
    expect(await pathExists(join(dir, 'missing'))).toBe(false);
    expect(await pathExists(join(dir, 'file', 'below'))).toBe(false);
  });

  it('throws what is not absence instead of answering false (a name longer than the file system allows)', async () => {
    await expect(pathExists(join(dir, 'n'.repeat(300)))).rejects.toThrow(/ENAMETOOLONG/);
  });
});

describe('unlessMissing', () => {
  it('gives the read, or the stand-in for a path not there (also below a file)', async () => {
    expect(await unlessMissing(join(dir, 'file'), readFile(join(dir, 'file'), 'utf8'), undefined)).toBe('x');
    expect(await unlessMissing(join(dir, 'missing'), readFile(join(dir, 'missing'), 'utf8'), '')).toBe('');
    expect(await unlessMissing(join(dir, 'file', 'below'), stat(join(dir, 'file', 'below')), undefined)).toBeUndefined();
  });

  it('throws any other failure with the path named (a directory read as a file)', async () => {
    await expect(unlessMissing(dir, readFile(dir, 'utf8'), '')).rejects.toThrow(`${dir}: EISDIR`);
  });
});
