import { BoxStoreError } from './errors.ts';

// Names become path segments and URL segments: keeping them to this alphabet means no escaping anywhere
// and no way to reach outside the store (no "..", no "/", no leading dot that would hide or clash with temps).
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const PROVIDER = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function invalid(field: string, value: unknown, allowed: string): BoxStoreError {
  return new BoxStoreError('invalid-argument', `${field} must be ${allowed} (got ${JSON.stringify(value)})`);
}

export function isSegment(value: unknown): value is string {
  return typeof value === 'string' && SEGMENT.test(value);
}

export function checkSegment(field: string, value: unknown): string {
  if (!isSegment(value)) {
    throw invalid(field, value, 'letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128 characters');
  }
  return value;
}

export function isBoxName(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const parts = value.split('/');
  return parts.length === 2 && parts.every((part) => SEGMENT.test(part));
}

/** Vagrant box names as Vagrant Cloud writes them: "<org>/<name>", stored as boxes/<org>/<name>/. */
export function checkBoxName(field: string, value: unknown): string {
  if (!isBoxName(value)) throw invalid(field, value, '"<org>/<name>" with each part made of letters, digits, ".", "_" or "-"');
  return value;
}

export function isProviderName(value: unknown): value is string {
  return typeof value === 'string' && PROVIDER.test(value);
}

export function checkProvider(field: string, value: unknown): string {
  if (!isProviderName(value)) throw invalid(field, value, 'a Vagrant provider name such as "libvirt" (lowercase letters, digits, "_", "-")');
  return value;
}
