// The artifact lock: every file an image profile downloads, pinned by sha256 and size.
// Parsing is pure; loadLock is the only function here that touches the disk.

import { readFile } from 'node:fs/promises';
import { sha256Hex } from '@boxcar/kit';
import { canonicalJson, checkShape, InputProblemsError, isAtOrUnder, locateJsonSyntaxError, show, type Problem } from '@boxcar/model';

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
  /** The JSON Schema, for editors (libs/model/schemas/artifacts-lock.schema.json); kept when the lock is rewritten. */
  $schema?: string;
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

export interface LockProblem extends Problem {
  /** Field path such as `artifacts[3].sha256`; empty for the document as a whole. */
  path: string;
  /** Set for JSON syntax errors. */
  line?: number;
  column?: number;
}

export class LockValidationError extends InputProblemsError {
  constructor(
    readonly sourcePath: string,
    override readonly problems: LockProblem[],
  ) {
    super(sourcePath, problems);
  }
}

// The key order of serializeLock.
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

/**
 * The shape from libs/model/schemas/artifacts-lock.schema.json, then what it cannot say: a usable url
 * and file name, "pending" exactly when sha256 is null, unique ids. Problems come entry by entry.
 */
function validateLock(document: unknown, problems: LockProblem[]): ArtifactLock | undefined {
  const shape = checkShape('artifactsLock', document);
  const found: LockProblem[] = [...shape];
  // Already reported: at this path or above it (a field's entry is not an object), or anywhere under it.
  const known = (path: string) => found.some((problem) => isAtOrUnder(path, problem.path));
  const anyUnder = (path: string) => found.some((problem) => isAtOrUnder(problem.path, path));
  const add = (path: string, message: string) => {
    if (!known(path)) found.push({ path, message });
  };
  const raw = document as { $schema?: string; artifacts?: unknown };
  const entries: unknown[] = Array.isArray(raw?.artifacts) ? raw.artifacts : [];
  const firstIndexOfId = new Map<string, number>();
  const artifacts = entries.map((entry, index) => {
    const path = `artifacts[${index}]`;
    if (known(path)) return undefined;
    checkEntry(entry as Record<string, unknown>, path, add);
    if (anyUnder(path)) return undefined;
    const valid = toEntry(entry as Record<string, unknown>);
    const first = firstIndexOfId.get(valid.id);
    if (first === undefined) firstIndexOfId.set(valid.id, index);
    else add(`${path}.id`, `duplicate id "${valid.id}" (first used by artifacts[${first}])`);
    return valid;
  });
  problems.push(...inEntryOrder(found));
  if (found.length > 0) return undefined;
  return { ...(raw.$schema !== undefined ? { $schema: raw.$schema } : {}), lockVersion: 1, artifacts: artifacts as LockEntry[] };
}

function checkEntry(raw: Record<string, unknown>, path: string, add: (path: string, message: string) => void): void {
  const { url, sha256, filename, pending } = raw;
  const problem = (field: string, message: string) => add(`${path}.${field}`, message);
  const parsedUrl = parseHttpUrl(url as string);
  if (parsedUrl === undefined) problem('url', `must be an absolute http:// or https:// URL, got ${show(url)}`);
  if (sha256 === null) {
    if (typeof pending !== 'string' || pending.trim() === '') {
      problem('sha256', 'is null, which needs "pending": a sentence saying why the digest could not be taken yet');
    }
  } else if (pending !== undefined) problem('pending', 'is only for entries whose sha256 is null');
  if (filename !== undefined) {
    const reason = filenameProblem(filename as string);
    if (reason !== undefined) problem('filename', `${reason}, got ${show(filename)}`);
  } else if (parsedUrl !== undefined) {
    const derived = filenameFromUrl(parsedUrl);
    if (derived === undefined || filenameProblem(derived) !== undefined) {
      problem('filename', `is required because the url's last path segment ${show(derived ?? parsedUrl.pathname)} is not a usable file name`);
    }
  }
}

/** An entry the schema and checkEntry found nothing wrong with, with its fields in serializeLock's order. */
function toEntry(raw: Record<string, unknown>): LockEntry {
  return Object.fromEntries(ENTRY_FIELDS.filter((field) => raw[field] !== undefined).map((field) => [field, raw[field]])) as unknown as LockEntry;
}

/** The document's own problems first, then each entry's together, entries in file order. */
function inEntryOrder(problems: LockProblem[]): LockProblem[] {
  const entryOf = (problem: LockProblem) => Number(/^artifacts\[(\d+)\]/.exec(problem.path)?.[1] ?? -1);
  return problems.map((problem, order) => ({ problem, order })).sort((a, b) => entryOf(a.problem) - entryOf(b.problem) || a.order - b.order).map(({ problem }) => problem);
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
  return `${JSON.stringify({ ...(lock.$schema !== undefined ? { $schema: lock.$schema } : {}), lockVersion: lock.lockVersion, artifacts }, null, 2)}\n`;
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
  return sha256Hex(canonicalJson(identity));
}
