import { describe, expect, it } from 'vitest';
import { checkSnapshotName } from './snapshot-name.ts';

describe('checkSnapshotName', () => {
  it('takes plain words', () => {
    for (const name of ['after-first-up', 'v1.2', 'a', 'x_y', '0'.repeat(63)]) expect(checkSnapshotName(name)).toBe(name);
  });

  it('refuses what a file name or a monitor command line would misread, saying what is allowed', () => {
    for (const name of ['', '-x', '.hidden', 'a b', 'A', 'a/b', '../x', 'x;quit', '0'.repeat(64)]) {
      expect(() => checkSnapshotName(name), name).toThrow(/^snapshot name/);
    }
    expect(() => checkSnapshotName('a b')).toThrow(/lowercase letters, digits, '\.', '_' and '-'/);
    expect(() => checkSnapshotName(undefined)).toThrow(/required/);
  });

  it('keeps the name cluster stop uses for itself', () => expect(() => checkSnapshotName('boxcar-stopped')).toThrow(/reserved for cluster stop\/start/));
});
