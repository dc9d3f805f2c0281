import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pathExists } from './path-exists.ts';

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
