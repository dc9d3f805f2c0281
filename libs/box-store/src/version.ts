import { BoxStoreError } from './errors.ts';

// Box versions are `<major>.<yyyymmdd>.<n>`: RubyGems-comparable (Vagrant orders versions that way),
// readable as a date, and unique within a day through n.
const VERSION = /^(0|[1-9]\d{0,8})\.(\d{8})\.(0|[1-9]\d{0,8})$/;

export interface BoxVersionParts {
  major: number;
  day: string;
  n: number;
}

export function parseBoxVersion(text: string): BoxVersionParts | undefined {
  const match = VERSION.exec(text);
  if (!match) return undefined;
  return { major: Number(match[1]), day: match[2] as string, n: Number(match[3]) };
}

export function isBoxVersion(text: unknown): text is string {
  return typeof text === 'string' && parseBoxVersion(text) !== undefined;
}

function mustParse(text: string): BoxVersionParts {
  const parts = parseBoxVersion(text);
  if (!parts) throw new BoxStoreError('invalid-argument', `version "${text}" is not <major>.<yyyymmdd>.<n> (e.g. 1.20261128.0)`);
  return parts;
}

function compareParts(a: BoxVersionParts, b: BoxVersionParts): number {
  return a.major - b.major || a.day.localeCompare(b.day) || a.n - b.n;
}

/** Orders like RubyGems (and so Vagrant) orders these versions: numerically, field by field. */
export function compareBoxVersions(a: string, b: string): number {
  return compareParts(mustParse(a), mustParse(b));
}

export function utcDay(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new BoxStoreError('invalid-argument', 'date is not a valid Date');
  return date.toISOString().slice(0, 10).replaceAll('-', '');
}

/**
 * The version to publish next: `<major>.<yyyymmdd>.0` for the first box of the (UTC) day, n + 1 after it.
 * It is always above every existing version of that major, even when this host's clock is behind the
 * newest version's day, so a version is never reused and the new box is always the newest.
 * `major` defaults to the highest existing major (1 for a new box).
 */
export function nextVersion(existingVersions: readonly string[], date: Date = new Date(), major?: number): string {
  const parsed = existingVersions.map(mustParse);
  const highestMajor = Math.max(0, ...parsed.map((p) => p.major));
  const chosen = major ?? (parsed.length > 0 ? highestMajor : 1);
  if (!Number.isSafeInteger(chosen) || chosen < 0) {
    throw new BoxStoreError('invalid-argument', `major must be a non-negative integer (got ${String(major)})`);
  }
  if (chosen < highestMajor) {
    throw new BoxStoreError('invalid-argument', `major ${chosen} is below the existing major ${highestMajor}: the new version would not be the newest`);
  }
  const today = utcDay(date);
  const newest = parsed.filter((p) => p.major === chosen).sort(compareParts).at(-1);
  if (!newest || newest.day < today) return `${chosen}.${today}.0`;
  return `${chosen}.${newest.day}.${newest.n + 1}`;
}
