import { describe, expect, it } from 'vitest';
import { compareBoxVersions, nextVersion } from './version.ts';

const day = (iso: string): Date => new Date(`${iso}T12:00:00Z`);

describe('nextVersion', () => {
  it('starts a new box at <major>.<yyyymmdd>.0', () => {
    expect(nextVersion([], day('2026-11-28'))).toBe('1.20261128.0');
  });

  it('counts up within a day and restarts at 0 on a later day', () => {
    const versions: string[] = [];
    for (let i = 0; i < 11; i++) versions.push(nextVersion(versions, day('2026-11-28')));
    expect(versions.at(-1)).toBe('1.20261128.10');
    expect(new Set(versions).size).toBe(11);
    expect(nextVersion(versions, day('2026-11-29'))).toBe('1.20261129.0');
  });

  it('uses the UTC day', () => {
    expect(nextVersion([], new Date('2026-11-28T23:30:00-05:00'))).toBe('1.20261129.0');
  });

  it('never goes below the newest version when the clock is behind', () => {
    expect(nextVersion(['1.20261130.2'], day('2026-11-28'))).toBe('1.20261130.3');
  });

  it('keeps the highest existing major and accepts a higher one', () => {
    expect(nextVersion(['1.20261127.0', '2.20261127.4'], day('2026-11-28'))).toBe('2.20261128.0');
    expect(nextVersion(['1.20261128.3'], day('2026-11-28'), 2)).toBe('2.20261128.0');
    expect(() => nextVersion(['2.20261128.0'], day('2026-11-28'), 1)).toThrow(/major 1 is below the existing major 2/);
  });

  it('rejects versions that are not <major>.<yyyymmdd>.<n>', () => {
    expect(() => nextVersion(['1.2.3'], day('2026-11-28'))).toThrow(/version "1.2.3" is not <major>.<yyyymmdd>.<n>/);
    expect(() => nextVersion([], new Date('nope'))).toThrow(/date is not a valid Date/);
  });
});

describe('compareBoxVersions', () => {
  it('orders numerically field by field, as RubyGems does', () => {
    const sorted = ['1.20261128.10', '1.20261128.9', '2.20250101.0', '1.20261201.0'].sort(compareBoxVersions);
    expect(sorted).toEqual(['1.20261128.9', '1.20261128.10', '1.20261201.0', '2.20250101.0']);
  });
});
