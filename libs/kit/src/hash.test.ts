import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { sha256File, sha256Hex } from './hash.ts';

const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

it('hashes strings as UTF-8, bytes as they are, and files by streaming them', async () => {
  expect(sha256Hex('abc')).toBe(ABC);
  expect(sha256Hex(Buffer.from('abc'))).toBe(ABC);
  const dir = await mkdtemp(join(tmpdir(), 'boxcar-kit-hash-'));
  try {
    await writeFile(join(dir, 'f'), 'abc');
    expect(await sha256File(join(dir, 'f'))).toEqual({ sha256: ABC, size: 3 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
