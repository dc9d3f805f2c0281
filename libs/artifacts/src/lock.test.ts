import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROFILES_DIR } from '@boxcar/model';
import { LockValidationError, artifactFilename, loadLock, lockEntryDigest, parseLock, serializeLock, type ArtifactEntry, type LockProblem } from './lock.ts';

const SHA = 'a'.repeat(64);

function validEntry(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'kubelet-v1.3.0',
    kind: 'file',
    url: 'https://storage.googleapis.com/kubernetes-release/release/v1.3.0/bin/linux/amd64/kubelet',
    sha256: SHA,
    size: 123,
    upstreamGone: false,
    ...extra,
  };
}

function problemsOf(document: unknown): LockProblem[] {
  try {
    parseLock(typeof document === 'string' ? document : JSON.stringify(document), 'lab/artifacts.lock.json');
  } catch (error) {
    expect(error).toBeInstanceOf(LockValidationError);
    return (error as LockValidationError).problems;
  }
  throw new Error('parseLock accepted the document');
}

function withEntry(extra: Record<string, unknown>): unknown {
  return { lockVersion: 1, artifacts: [validEntry(extra)] };
}

describe('parseLock', () => {
  it('accepts a valid lock and derives the file name from the url', () => {
    const lock = parseLock(JSON.stringify({ lockVersion: 1, artifacts: [validEntry({ note: 'from the seed' }), validEntry({ id: 'vpp.deb', kind: 'deb', url: 'https://h.example/vpp%2B1.deb' })] }), 'x');
    expect(lock.artifacts).toHaveLength(2);
    expect(lock.artifacts[0]?.note).toBe('from the seed');
    expect(artifactFilename(lock.artifacts[0] as ArtifactEntry)).toBe('kubelet');
    expect(artifactFilename(lock.artifacts[1] as ArtifactEntry)).toBe('vpp+1.deb');
  });

  const cases: { name: string; document: unknown; path: string; message: string }[] = [
    { name: 'short sha256', document: withEntry({ sha256: 'abc' }), path: 'artifacts[0].sha256', message: 'must be 64 lowercase hex characters (or null with "pending"), got "abc"' },
    { name: 'uppercase sha256', document: withEntry({ sha256: 'A'.repeat(64) }), path: 'artifacts[0].sha256', message: 'must be 64 lowercase hex characters' },
    { name: 'bad id', document: withEntry({ id: 'Kubelet' }), path: 'artifacts[0].id', message: 'must match [a-z0-9][a-z0-9._+-]*' },
    { name: 'unknown kind', document: withEntry({ kind: 'tarball' }), path: 'artifacts[0].kind', message: 'must be one of file, deb, git-tarball, wheel, cloud-image, vagrant-box, got "tarball"' },
    { name: 'ftp url', document: withEntry({ url: 'ftp://h.example/kubelet' }), path: 'artifacts[0].url', message: 'must be an absolute http:// or https:// URL, got "ftp://h.example/kubelet"' },
    { name: 'relative url', document: withEntry({ url: 'kubelet' }), path: 'artifacts[0].url', message: 'must be an absolute http:// or https:// URL' },
    { name: 'fractional size', document: withEntry({ size: 1.5 }), path: 'artifacts[0].size', message: 'must be a positive integer (bytes) when present, got 1.5' },
    { name: 'size as string', document: withEntry({ size: '123' }), path: 'artifacts[0].size', message: 'must be a positive integer (bytes) when present, got "123"' },
    { name: 'null sha256 without pending', document: withEntry({ sha256: null }), path: 'artifacts[0].sha256', message: 'is null, which needs "pending"' },
    { name: 'pending beside a digest', document: withEntry({ pending: 'not yet' }), path: 'artifacts[0].pending', message: 'is only for entries whose sha256 is null' },
    { name: 'missing upstreamGone', document: withEntry({ upstreamGone: undefined }), path: 'artifacts[0].upstreamGone', message: 'must be true or false, got nothing (field missing)' },
    { name: 'note not a string', document: withEntry({ note: 5 }), path: 'artifacts[0].note', message: 'must be a string when present, got 5' },
    { name: 'filename with a slash', document: withEntry({ filename: '../kubelet' }), path: 'artifacts[0].filename', message: 'must be a plain file name without /' },
    { name: 'url without file name', document: withEntry({ url: 'https://h.example/dir/' }), path: 'artifacts[0].filename', message: 'is required because the url\'s last path segment "" is not a usable file name' },
    { name: 'misspelt field', document: withEntry({ sha: SHA }), path: 'artifacts[0].sha', message: 'unknown field; allowed: id, kind, url, sha256, size, upstreamGone, note, filename' },
    { name: 'entry not an object', document: { lockVersion: 1, artifacts: ['kubelet'] }, path: 'artifacts[0]', message: 'must be an object with id, kind' },
    { name: 'wrong lockVersion', document: { lockVersion: 2, artifacts: [] }, path: 'lockVersion', message: 'must be 1 (the only lock format this boxcar reads), got 2' },
    { name: 'artifacts not an array', document: { lockVersion: 1, artifacts: {} }, path: 'artifacts', message: 'must be an array of artifact entries, got an object' },
    { name: 'document not an object', document: [], path: '', message: 'must be a JSON object with "lockVersion" and "artifacts", got an array' },
  ];

  it.each(cases)('reports $name at its field path', ({ document, path, message }) => {
    const problems = problemsOf(document);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.path).toBe(path);
    expect(problems[0]?.message).toContain(message);
  });

  it('reports every problem at once, and duplicate ids', () => {
    const problems = problemsOf({
      lockVersion: 1,
      artifacts: [validEntry(), validEntry({ sha256: 'abc', size: 0 }), validEntry(), validEntry({ kind: 'rpm', id: 'x' })],
      extra: true,
    });
    expect(problems.map((p) => p.path)).toEqual(['extra', 'artifacts[1].sha256', 'artifacts[1].size', 'artifacts[2].id', 'artifacts[3].kind']);
    expect(problems[3]?.message).toBe('duplicate id "kubelet-v1.3.0" (first used by artifacts[0])');
  });

  it('puts the source path and every problem in the error message', () => {
    expect(() => parseLock(JSON.stringify(withEntry({ sha256: 'abc', size: -1 })), 'images/profiles/lab/artifacts.lock.json')).toThrow(
      'images/profiles/lab/artifacts.lock.json has 2 problem(s):\n' +
        '  - artifacts[0].sha256: must be 64 lowercase hex characters (or null with "pending"), got "abc"\n' +
        '  - artifacts[0].size: must be a positive integer (bytes) when present, got -1',
    );
  });

  it('gives line and column of malformed JSON', () => {
    const trailingComma = '{\n  "lockVersion": 1,\n  "artifacts": [],\n}\n';
    expect(problemsOf(trailingComma)).toEqual([
      { path: '', message: 'invalid JSON at line 4, column 1: expected a double-quoted property name, found character "}"', line: 4, column: 1 },
    ]);
    const missingComma = '{\n  "lockVersion": 1\n  "artifacts": []\n}';
    expect(problemsOf(missingComma)[0]).toMatchObject({ line: 3, column: 3, message: expect.stringContaining("expected ',' or '}'") });
    const truncated = '{\n  "lockVersion": 1,\n  "artifacts": [\n    {"id": "a"';
    expect(problemsOf(truncated)[0]).toMatchObject({ line: 4, column: 15, message: expect.stringContaining('end of input') });
    const badLiteral = '{"lockVersion": 1, "artifacts": [{"upstreamGone": tru}]}';
    expect(problemsOf(badLiteral)[0]).toMatchObject({ line: 1, column: 51 });
  });

  it('loadLock reads the file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'boxcar-lock-'));
    try {
      const path = join(dir, 'artifacts.lock.json');
      await writeFile(path, JSON.stringify(withEntry({})));
      expect((await loadLock(path)).artifacts[0]?.id).toBe('kubelet-v1.3.0');
      await writeFile(path, '{');
      await expect(loadLock(path)).rejects.toThrow(`${path} has 1 problem(s):\n  - invalid JSON at line 1, column 2`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('serializeLock', () => {
  it('writes fields in a stable order with 2-space indent and a trailing newline, and round-trips', () => {
    const entry = { filename: 'kubelet', note: 'n', upstreamGone: true, size: 5, sha256: SHA, url: 'https://h.example/k', kind: 'file', id: 'k' } as const;
    const text = serializeLock({ lockVersion: 1, artifacts: [entry] });
    expect(text).toBe(
      `{\n  "lockVersion": 1,\n  "artifacts": [\n    {\n      "id": "k",\n      "kind": "file",\n      "url": "https://h.example/k",\n` +
        `      "sha256": "${SHA}",\n      "size": 5,\n      "upstreamGone": true,\n      "note": "n",\n      "filename": "kubelet"\n    }\n  ]\n}\n`,
    );
    expect(serializeLock(parseLock(text, 'x'))).toBe(text);
  });

  it('keeps "$schema" (for editors) first, through a parse and a rewrite', () => {
    const text = serializeLock({ $schema: '../../../libs/model/schemas/artifacts-lock.schema.json', lockVersion: 1, artifacts: [] });
    expect(text).toBe('{\n  "$schema": "../../../libs/model/schemas/artifacts-lock.schema.json",\n  "lockVersion": 1,\n  "artifacts": []\n}\n');
    expect(serializeLock(parseLock(text, 'x'))).toBe(text);
  });

  it.each(['lab', 'xenial-2016'])('rewrites the %s profile\'s lock byte for byte', async (profile) => {
    const path = join(DEFAULT_PROFILES_DIR, profile, 'artifacts.lock.json');
    const text = await readFile(path, 'utf8');
    expect(serializeLock(await loadLock(path))).toBe(text);
  });
});

describe('lockEntryDigest', () => {
  const entry = parseLock(JSON.stringify(withEntry({})), 'x').artifacts[0] as ArtifactEntry;

  it('is a sha256 independent of key order and of an explicit default file name', () => {
    const digest = lockEntryDigest(entry);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const reordered = Object.fromEntries(Object.entries(entry).reverse()) as unknown as ArtifactEntry;
    expect(lockEntryDigest(reordered)).toBe(digest);
    expect(lockEntryDigest({ ...entry, filename: 'kubelet' })).toBe(digest);
  });

  it('changes with the bytes or the name, not with url, note or upstreamGone', () => {
    const digest = lockEntryDigest(entry);
    expect(lockEntryDigest({ ...entry, sha256: 'b'.repeat(64) })).not.toBe(digest);
    expect(lockEntryDigest({ ...entry, size: 124 })).not.toBe(digest);
    expect(lockEntryDigest({ ...entry, filename: 'kubelet-1.3' })).not.toBe(digest);
    expect(lockEntryDigest({ ...entry, kind: 'deb' })).not.toBe(digest);
    expect(lockEntryDigest({ ...entry, note: 'moved', upstreamGone: true, url: 'https://mirror.example/kubelet' })).toBe(digest);
  });
});

describe('pending entries (no digest taken yet)', () => {
  const pending = { sha256: null, pending: 'the upstream is unreachable from where the lock was written' };

  it('parse, and keep their reason', () => {
    const lock = parseLock(JSON.stringify(withEntry({ ...pending, size: undefined })), 'x');
    expect(lock.artifacts[0]).toMatchObject({ sha256: null, pending: pending.pending });
  });

  it('have a digest that changes once the entry is pinned', () => {
    const [entry] = parseLock(JSON.stringify(withEntry(pending)), 'x').artifacts;
    const [pinned] = parseLock(JSON.stringify(withEntry({})), 'x').artifacts;
    expect(lockEntryDigest(entry!)).not.toBe(lockEntryDigest(pinned!));
  });

  it('are refused by fetchArtifact without any request, naming the command to run', async () => {
    const { fetchArtifact } = await import('./fetch.ts');
    const [entry] = parseLock(JSON.stringify(withEntry(pending)), 'x').artifacts;
    await expect(fetchArtifact(entry!, { cacheDir: await mkdtemp(join(tmpdir(), 'pending-')) })).rejects.toThrow(
      /has no pinned sha256 yet \(the upstream is unreachable.*\); run `boxcar artifacts refresh/,
    );
  });
});
