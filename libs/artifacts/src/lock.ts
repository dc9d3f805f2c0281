// The artifact lock: every file an image profile downloads, pinned by sha256 and size.
// Parsing is pure; loadLock is the only function here that touches the disk.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { canonicalJson, locateJsonSyntaxError } from '@boxcar/model';

export const ARTIFACT_KINDS = ['file', 'deb', 'git-tarball', 'wheel', 'cloud-image', 'vagrant-box'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

export interface ArtifactEntry {
  id: string;
  kind: ArtifactKind;
  url: string;
  sha256: string;
  /** Bytes; checked before the sha256 when present. */
  size?: number;
  /** The url no longer serves the file: only the cache or a mirror can provide it. */
  upstreamGone: boolean;
  note?: string;
  /** Name of the file in the cache; defaults to the url's last path segment, decoded. */
  filename?: string;
}

/**
 * An entry whose digest could not be taken yet (its upstream is unreachable from where the lock was
 * written): known by URL only, with the reason. Templates and keys can name it; nothing fetches it
 * until the maintainers' refresh records its sha256.
 */
export interface PendingArtifactEntry extends Omit<ArtifactEntry, 'sha256'> {
  sha256: null;
  pending: string;
}

export type LockEntry = ArtifactEntry | PendingArtifactEntry;

export interface ArtifactLock {
  lockVersion: 1;
  artifacts: LockEntry[];
}

export function isPinned(entry: LockEntry): entry is ArtifactEntry {
  return entry.sha256 !== null;
}

export class ArtifactPendingError extends Error {
  constructor(readonly entry: PendingArtifactEntry) {
    super(
      `artifact "${entry.id}" has no pinned sha256 yet (${entry.pending}); run \`boxcar artifacts refresh ${entry.id}\` ` +
        'where its upstream or a mirror is reachable, then commit the lock',
    );
    this.name = 'ArtifactPendingError';
  }
}

/** The entry if its bytes are pinned; a clear error naming what to run otherwise. */
export function requirePinned(entry: LockEntry): ArtifactEntry {
  if (!isPinned(entry)) throw new ArtifactPendingError(entry);
  return entry;
}

export interface LockProblem {
  /** Field path such as `artifacts[3].sha256`; empty for the document as a whole. */
  path: string;
  message: string;
  /** Set for JSON syntax errors. */
  line?: number;
  column?: number;
}

export class LockValidationError extends Error {
  constructor(
    readonly sourcePath: string,
    readonly problems: LockProblem[],
  ) {
    const lines = problems.map((p) => `  ${p.path === '' ? '' : `${p.path}: `}${p.message}`);
    super(`${sourcePath}: invalid artifact lock (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.name = 'LockValidationError';
  }
}

const ID_PATTERN = /^[a-z0-9][a-z0-9._+-]*$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const TOP_LEVEL_FIELDS = ['lockVersion', 'artifacts'];
// Also the key order of serializeLock.
const ENTRY_FIELDS = ['id', 'kind', 'url', 'sha256', 'size', 'upstreamGone', 'note', 'filename', 'pending'] as const;

export async function loadLock(path: string): Promise<ArtifactLock> {
  return parseLock(await readFile(path, 'utf8'), path);
}

export function parseLock(text: string, sourcePath: string): ArtifactLock {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    const located = locateJsonSyntaxError(text);
    const problem: LockProblem =
      located === undefined
        ? { path: '', message: `invalid JSON: ${(error as Error).message}` }
        : { path: '', message: `invalid JSON at line ${located.line}, column ${located.column}: ${located.reason}`, line: located.line, column: located.column };
    throw new LockValidationError(sourcePath, [problem]);
  }
  const problems: LockProblem[] = [];
  const lock = validateLock(document, problems);
  if (problems.length > 0 || lock === undefined) throw new LockValidationError(sourcePath, problems);
  return lock;
}

function validateLock(document: unknown, problems: LockProblem[]): ArtifactLock | undefined {
  if (!isPlainObject(document)) {
    problems.push({ path: '', message: `must be a JSON object with "lockVersion" and "artifacts", got ${describe(document)}` });
    return undefined;
  }
  reportUnknownFields(document, TOP_LEVEL_FIELDS, '', problems);
  if (document.lockVersion !== 1) {
    problems.push({ path: 'lockVersion', message: `must be 1 (the only lock format this boxcar reads), got ${describe(document.lockVersion)}` });
  }
  if (!Array.isArray(document.artifacts)) {
    problems.push({ path: 'artifacts', message: `must be an array of artifact entries, got ${describe(document.artifacts)}` });
    return undefined;
  }
  const firstIndexOfId = new Map<string, number>();
  const artifacts = document.artifacts.map((raw: unknown, index: number) => {
    const entry = validateEntry(raw, `artifacts[${index}]`, problems);
    if (entry !== undefined) {
      const first = firstIndexOfId.get(entry.id);
      if (first === undefined) firstIndexOfId.set(entry.id, index);
      else problems.push({ path: `artifacts[${index}].id`, message: `duplicate id "${entry.id}" (first used by artifacts[${first}])` });
    }
    return entry;
  });
  return { lockVersion: 1, artifacts: artifacts.filter((e): e is ArtifactEntry => e !== undefined) };
}

function validateEntry(raw: unknown, path: string, problems: LockProblem[]): LockEntry | undefined {
  if (!isPlainObject(raw)) {
    problems.push({ path, message: `must be an object with ${ENTRY_FIELDS.join(', ')}, got ${describe(raw)}` });
    return undefined;
  }
  const before = problems.length;
  const problem = (field: string, message: string) => problems.push({ path: `${path}.${field}`, message });
  reportUnknownFields(raw, ENTRY_FIELDS, path, problems);

  const { id, kind, url, sha256, size, upstreamGone, note, filename, pending } = raw;
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    problem('id', `must match [a-z0-9][a-z0-9._+-]* (lowercase letters, digits, . _ + -), got ${describe(id)}`);
  }
  if (typeof kind !== 'string' || !(ARTIFACT_KINDS as readonly string[]).includes(kind)) {
    problem('kind', `must be one of ${ARTIFACT_KINDS.join(', ')}, got ${describe(kind)}`);
  }
  const parsedUrl = typeof url === 'string' ? parseHttpUrl(url) : undefined;
  if (parsedUrl === undefined) problem('url', `must be an absolute http:// or https:// URL, got ${describe(url)}`);
  if (sha256 === null) {
    if (typeof pending !== 'string' || pending.trim() === '') {
      problem('sha256', 'is null, which needs "pending": a sentence saying why the digest could not be taken yet');
    }
  } else {
    if (typeof sha256 !== 'string' || !SHA256_PATTERN.test(sha256)) {
      problem('sha256', `must be 64 lowercase hex characters (or null with "pending"), got ${describe(sha256)}`);
    }
    if (pending !== undefined) problem('pending', 'is only for entries whose sha256 is null');
  }
  if (size !== undefined && (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1)) {
    problem('size', `must be a positive integer (bytes) when present, got ${describe(size)}`);
  }
  if (typeof upstreamGone !== 'boolean') problem('upstreamGone', `must be true or false, got ${describe(upstreamGone)}`);
  if (note !== undefined && typeof note !== 'string') problem('note', `must be a string when present, got ${describe(note)}`);
  if (filename !== undefined) {
    const reason = typeof filename === 'string' ? filenameProblem(filename) : 'must be a string';
    if (reason !== undefined) problem('filename', `${reason}, got ${describe(filename)}`);
  } else if (parsedUrl !== undefined) {
    const derived = filenameFromUrl(parsedUrl);
    if (derived === undefined || filenameProblem(derived) !== undefined) {
      problem('filename', `is required because the url's last path segment ${describe(derived ?? parsedUrl.pathname)} is not a usable file name`);
    }
  }
  if (problems.length > before) return undefined;
  const common = {
    id: id as string,
    kind: kind as ArtifactKind,
    url: url as string,
    ...(size !== undefined ? { size: size as number } : {}),
    upstreamGone: upstreamGone as boolean,
    ...(note !== undefined ? { note: note as string } : {}),
    ...(filename !== undefined ? { filename: filename as string } : {}),
  };
  return sha256 === null ? { ...common, sha256: null, pending: pending as string } : { ...common, sha256: sha256 as string };
}

function reportUnknownFields(object: Record<string, unknown>, allowed: readonly string[], path: string, problems: LockProblem[]): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      problems.push({ path: path === '' ? key : `${path}.${key}`, message: `unknown field; allowed fields: ${allowed.join(', ')}` });
    }
  }
}

function parseHttpUrl(text: string): URL | undefined {
  if (!URL.canParse(text)) return undefined;
  const url = new URL(text);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
}

function filenameFromUrl(url: URL): string | undefined {
  const last = url.pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return undefined;
  }
}

function filenameProblem(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return 'must be a non-empty file name other than . and ..';
  if (/[/\\\0]/.test(name)) return 'must be a plain file name without /, \\ or NUL';
  return undefined;
}

/** The file name of the entry in the cache and in images. */
export function artifactFilename(entry: LockEntry): string {
  if (entry.filename !== undefined) return entry.filename;
  const derived = filenameFromUrl(new URL(entry.url));
  if (derived === undefined || filenameProblem(derived) !== undefined) {
    throw new Error(`artifact "${entry.id}": url ${entry.url} has no usable last path segment; set "filename"`);
  }
  return derived;
}

export function serializeLock(lock: ArtifactLock): string {
  const artifacts = lock.artifacts.map((entry: LockEntry) => {
    const ordered: Record<string, unknown> = {};
    for (const field of ENTRY_FIELDS) if ((entry as unknown as Record<string, unknown>)[field] !== undefined) ordered[field] = (entry as unknown as Record<string, unknown>)[field];
    return ordered;
  });
  return `${JSON.stringify({ lockVersion: lock.lockVersion, artifacts }, null, 2)}\n`;
}

/**
 * Identifies what an image gets from this entry: the bytes (sha256, size), how they are
 * installed (kind) and under which names (id, filename). `url`, `note` and `upstreamGone`
 * are left out on purpose: moving an artifact to a new host or annotating it must not
 * invalidate the layers built from it.
 */
export function lockEntryDigest(entry: LockEntry): string {
  // A pending entry is known by its URL only; once pinned, by its bytes.
  const identity = { id: entry.id, kind: entry.kind, sha256: entry.sha256, size: entry.size, filename: artifactFilename(entry), ...(isPinned(entry) ? {} : { url: entry.url }) };
  return createHash('sha256').update(canonicalJson(identity)).digest('hex');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
