import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ArtifactFetchError } from './errors.ts';
import { parseLock, serializeLock, type ArtifactLock } from './lock.ts';
import { refreshLock } from './refresh.ts';
import { sha256Hex } from '@boxcar/kit';
import { serveBytes, serveTruncated, startServer, testBytes, type TestServer } from './test-server.ts';

const NEW_KUBELET = testBytes(20_000, 4);
const CNI = testBytes(3_000, 5);

let work: string;
let cacheDir: string;
let lockPath: string;
let server: TestServer;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'boxcar-refresh-'));
  cacheDir = join(work, 'cache');
  lockPath = join(work, 'artifacts.lock.json');
  server = await startServer((req, res, index) => {
    if (req.url === '/flaky/kubelet' && index === 0) serveTruncated(res, NEW_KUBELET, 5_000);
    else if (req.url?.endsWith('/kubelet')) serveBytes(req, res, NEW_KUBELET);
    else if (req.url?.endsWith('/cni.tgz')) serveBytes(req, res, CNI);
    else res.writeHead(404).end();
  });
});

afterEach(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

function lock(kubeletPath = '/kubelet'): ArtifactLock {
  return {
    lockVersion: 1,
    artifacts: [
      { id: 'kubelet', kind: 'file', url: `${server.origin}${kubeletPath}`, sha256: 'a'.repeat(64), size: 1, upstreamGone: false },
      { id: 'cni', kind: 'git-tarball', url: `${server.origin}/cni.tgz`, sha256: sha256Hex(CNI), size: CNI.length, upstreamGone: false, note: 'pinned' },
      { id: 'gone', kind: 'deb', url: `${server.origin}/gone.deb`, sha256: 'c'.repeat(64), size: 9, upstreamGone: true },
    ],
  };
}

it('records the new sha256 and size of the chosen entries, rewrites the lock, and caches the file', async () => {
  await writeFile(lockPath, serializeLock(lock()));

  const result = await refreshLock(lockPath, ['kubelet'], { cacheDir, env: {} });

  expect(result).toEqual({
    changed: [{ id: 'kubelet', oldSha256: 'a'.repeat(64), newSha256: sha256Hex(NEW_KUBELET), oldSize: 1, newSize: NEW_KUBELET.length }],
    unchanged: [],
    skipped: [],
  });
  const expected = lock();
  expected.artifacts[0] = { ...(expected.artifacts[0] as ArtifactLock['artifacts'][0]), sha256: sha256Hex(NEW_KUBELET), size: NEW_KUBELET.length };
  const text = await readFile(lockPath, 'utf8');
  expect(text).toBe(serializeLock(expected));
  expect(parseLock(text, lockPath)).toEqual(expected);
  expect(await readdir(work)).toEqual(['artifacts.lock.json', 'cache']);
  const cached = join(cacheDir, 'sha256', sha256Hex(NEW_KUBELET), 'kubelet');
  expect((await readFile(cached)).equals(NEW_KUBELET)).toBe(true);
  expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
  expect(server.requests.map((r) => r.path)).toEqual(['/kubelet']);
});

it("refreshes 'all' except upstream-gone entries, and leaves an unchanged lock file alone", async () => {
  const original = serializeLock(lock()).replace('\n', '\n\n');
  await writeFile(lockPath, original);

  const first = await refreshLock(lockPath, 'all', { cacheDir, env: {} });
  expect(first.changed.map((c) => c.id)).toEqual(['kubelet']);
  expect(first.unchanged).toEqual(['cni']);
  expect(first.skipped).toEqual(['gone']);

  const rewritten = await readFile(lockPath, 'utf8');
  const second = await refreshLock(lockPath, 'all', { cacheDir, env: {} });
  expect(second.changed).toEqual([]);
  expect(await readFile(lockPath, 'utf8')).toBe(rewritten);
  expect(server.requests.map((r) => r.path)).toEqual(['/kubelet', '/cni.tgz', '/kubelet', '/cni.tgz']);
});

it('resumes an interrupted refresh download', async () => {
  await writeFile(lockPath, serializeLock(lock('/flaky/kubelet')));
  const result = await refreshLock(lockPath, ['kubelet'], { cacheDir, env: {}, backoffMs: 5 });
  expect(result.changed[0]?.newSha256).toBe(sha256Hex(NEW_KUBELET));
  expect(server.requests.map((r) => r.headers.range)).toEqual([undefined, 'bytes=5000-']);
});

it('reads from the mirror when one is set', async () => {
  await writeFile(lockPath, serializeLock({ lockVersion: 1, artifacts: [{ ...(lock().artifacts[0] as ArtifactLock['artifacts'][0]), url: 'https://upstream.invalid/kubelet' }] }));
  const result = await refreshLock(lockPath, ['kubelet'], { cacheDir, env: { BOXCAR_ARTIFACT_MIRROR: `${server.origin}/mirror` } });
  expect(result.changed).toHaveLength(1);
  expect(server.requests.map((r) => r.path)).toEqual(['/mirror/upstream.invalid/kubelet']);
});

it('refuses unknown and upstream-gone ids before downloading anything', async () => {
  await writeFile(lockPath, serializeLock(lock()));
  await expect(refreshLock(lockPath, ['kubelet', 'nope'], { cacheDir, env: {} })).rejects.toThrow(
    'no artifact with id "nope"; known ids: kubelet, cni, gone',
  );
  await expect(refreshLock(lockPath, ['gone'], { cacheDir, env: {} })).rejects.toThrow('"gone" is marked upstreamGone: true');
  expect(server.requests).toHaveLength(0);
});

it('keeps the lock as it was when a download fails', async () => {
  const original = serializeLock({ lockVersion: 1, artifacts: [...lock().artifacts, { id: 'missing', kind: 'file', url: `${server.origin}/missing`, sha256: 'd'.repeat(64), size: 2, upstreamGone: false }] });
  await writeFile(lockPath, original);
  await expect(refreshLock(lockPath, ['kubelet', 'missing'], { cacheDir, env: {} })).rejects.toBeInstanceOf(ArtifactFetchError);
  expect(await readFile(lockPath, 'utf8')).toBe(original);
  expect(await readdir(work)).toEqual(['artifacts.lock.json', 'cache']);
});
