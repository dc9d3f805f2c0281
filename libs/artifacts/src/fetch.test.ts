import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheFilePath, cachedPath } from './cache.ts';
import type { RetryEvent } from './download.ts';
import { ArtifactFetchError, ArtifactIntegrityError } from './errors.ts';
import { fetchAll, fetchArtifact, type FetchOptions, type ProgressEvent } from './fetch.ts';
import type { ArtifactEntry } from './lock.ts';
import { sha256Hex } from '@boxcar/kit';
import { closedPort, serveBytes, serveTruncated, startServer, testBytes, type TestServer } from './test-server.ts';

const BODY = testBytes(64 * 1024);
const HALF = BODY.length / 2;

let work: string;
let cacheDir: string;
let server: TestServer | undefined;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'boxcar-artifacts-'));
  cacheDir = join(work, 'cache');
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(work, { recursive: true, force: true });
});

function entryFor(url: string, body: Buffer = BODY, extra: Partial<ArtifactEntry> = {}): ArtifactEntry {
  return { id: 'kubelet-v1.3.0', kind: 'file', url, sha256: sha256Hex(body), size: body.length, upstreamGone: false, ...extra };
}

// Tests must not read the developer's BOXCAR_ARTIFACT_MIRROR.
function options(extra: FetchOptions = {}): FetchOptions {
  return { cacheDir, env: {}, backoffMs: 5, ...extra };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('fetchArtifact', () => {
  it('downloads into the content-addressed cache, reports progress, and then serves the cache without the network', async () => {
    server = await startServer((req, res) => serveBytes(req, res, BODY));
    const entry = entryFor(`${server.origin}/release/v1.3.0/bin/kubelet`);
    const progress: ProgressEvent[] = [];

    const path = await fetchArtifact(entry, options({ onProgress: (e) => progress.push(e) }));

    expect(path).toBe(join(cacheDir, 'sha256', entry.sha256, 'kubelet'));
    expect((await readFile(path)).equals(BODY)).toBe(true);
    expect(progress.at(-1)).toEqual({ id: entry.id, receivedBytes: BODY.length, totalBytes: BODY.length });
    expect(await filesUnder(cacheDir)).toEqual([path]);
    expect(server.requests).toHaveLength(1);

    expect(await fetchArtifact(entry, options())).toBe(path);
    expect(server.requests).toHaveLength(1);
  });

  it('cachedPath checks the size, and the sha256 only when asked', async () => {
    const entry = entryFor('https://upstream.invalid/kubelet');
    expect(await cachedPath(entry, cacheDir)).toBeUndefined();
    const path = cacheFilePath(entry, cacheDir);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, BODY.subarray(1));
    expect(await cachedPath(entry, cacheDir)).toBeUndefined();
    await writeFile(path, testBytes(BODY.length, 2));
    expect(await cachedPath(entry, cacheDir)).toBe(path);
    expect(await cachedPath(entry, cacheDir, { verifySha256: true })).toBeUndefined();
    await writeFile(path, BODY);
    expect(await cachedPath(entry, cacheDir, { verifySha256: true })).toBe(path);
  });

  it('rejects bytes with the wrong sha256 without retrying and keeps nothing', async () => {
    const served = testBytes(BODY.length, 7);
    server = await startServer((req, res) => serveBytes(req, res, served));
    const entry = entryFor(`${server.origin}/kubelet`);

    const error = await fetchArtifact(entry, options()).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ArtifactIntegrityError);
    const message = (error as Error).message;
    expect(message).toContain('"kubelet-v1.3.0"');
    expect(message).toContain(entry.url);
    expect(message).toContain(`expected ${entry.sha256}, got ${sha256Hex(served)}`);
    expect(server.requests).toHaveLength(1);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('refuses a response announcing another size than the lock, and keeps nothing', async () => {
    server = await startServer((req, res) => serveBytes(req, res, Buffer.concat([BODY, BODY])));
    const error = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArtifactIntegrityError);
    expect((error as Error).message).toContain(`size mismatch: expected ${BODY.length} bytes, got ${2 * BODY.length} bytes`);
    expect(server.requests).toHaveLength(1);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('cuts off a response without Content-Length once it exceeds the locked size, and keeps nothing', async () => {
    server = await startServer((_req, res) => {
      res.writeHead(200);
      res.write(BODY);
      res.end(BODY);
    });
    const error = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArtifactIntegrityError);
    expect((error as Error).message).toContain(`size mismatch: expected ${BODY.length} bytes, got more than that`);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('drops a .partial the server answers with 416, then reports the changed upstream size', async () => {
    const shrunk = BODY.subarray(0, HALF / 2);
    server = await startServer((req, res) => serveBytes(req, res, shrunk));
    const entry = entryFor(`${server.origin}/kubelet`);
    const partial = `${cacheFilePath(entry, cacheDir)}.partial`;
    await mkdir(dirname(partial), { recursive: true });
    await writeFile(partial, BODY.subarray(0, HALF));

    const error = await fetchArtifact(entry, options()).catch((e: unknown) => e);

    expect(server.requests.map((r) => r.headers.range)).toEqual([`bytes=${HALF}-`, undefined]);
    expect(error).toBeInstanceOf(ArtifactIntegrityError);
    expect((error as Error).message).toContain(`expected ${BODY.length} bytes, got ${shrunk.length} bytes`);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('resumes an interrupted download with a Range request', async () => {
    server = await startServer((req, res, index) => (index === 0 ? serveTruncated(res, BODY, HALF) : serveBytes(req, res, BODY)));
    const retries: RetryEvent[] = [];

    const path = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options({ onRetry: (e) => retries.push(e) }));

    expect(server.requests.map((r) => r.headers.range)).toEqual([undefined, `bytes=${HALF}-`]);
    expect((await readFile(path)).equals(BODY)).toBe(true);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.cause.message).toContain(`lost after ${HALF} of ${BODY.length} bytes`);
    expect(await filesUnder(cacheDir)).toEqual([path]);
  });

  it('starts over when the server answers a Range request with 200', async () => {
    server = await startServer((_req, res, index) =>
      index === 0 ? serveTruncated(res, BODY, HALF) : res.writeHead(200, { 'content-length': BODY.length }).end(BODY),
    );

    const path = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options());

    expect(server.requests.map((r) => r.headers.range)).toEqual([undefined, `bytes=${HALF}-`]);
    expect((await readFile(path)).equals(BODY)).toBe(true);
  });

  it('discards a .partial left by an earlier run when the resumed file does not verify, and downloads afresh', async () => {
    server = await startServer((req, res) => serveBytes(req, res, BODY));
    const entry = entryFor(`${server.origin}/kubelet`);
    const partial = `${cacheFilePath(entry, cacheDir)}.partial`;
    await mkdir(dirname(partial), { recursive: true });
    await writeFile(partial, testBytes(HALF, 3));

    const path = await fetchArtifact(entry, options());

    expect(server.requests.map((r) => r.headers.range)).toEqual([`bytes=${HALF}-`, undefined]);
    expect((await readFile(path)).equals(BODY)).toBe(true);
  });

  it('retries a refused connection with exponential backoff, then names id, url, attempts and cause', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/kubelet`;
    const retries: RetryEvent[] = [];
    const started = Date.now();

    const error = await fetchArtifact(entryFor(url), options({ retries: 3, backoffMs: 20, onRetry: (e) => retries.push(e) })).catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(ArtifactFetchError);
    const fetchError = error as ArtifactFetchError;
    expect(fetchError.attempts).toBe(4);
    expect(fetchError.transient).toBe(true);
    expect(fetchError.message).toContain('artifact "kubelet-v1.3.0"');
    expect(fetchError.message).toContain(`download from ${url} failed after 4 attempts`);
    expect(fetchError.message).toContain('ECONNREFUSED');
    expect(retries.map((r) => [r.attempt, r.delayMs])).toEqual([
      [1, 20],
      [2, 40],
      [3, 80],
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('caps the backoff delay', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/kubelet`;
    const retries: RetryEvent[] = [];
    await fetchArtifact(entryFor(url), options({ retries: 4, backoffMs: 10, maxBackoffMs: 25, onRetry: (e) => retries.push(e) })).catch(() => undefined);
    expect(retries.map((r) => r.delayMs)).toEqual([10, 20, 25, 25]);
  });

  it('does not retry a 404', async () => {
    server = await startServer((_req, res) => res.writeHead(404).end('no such file'));
    const error = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArtifactFetchError);
    expect((error as ArtifactFetchError).transient).toBe(false);
    expect((error as Error).message).toContain('HTTP 404');
    expect(server.requests).toHaveLength(1);
  });

  it('retries 5xx answers', async () => {
    server = await startServer((req, res, index) => (index < 2 ? res.writeHead(503).end() : serveBytes(req, res, BODY)));
    const path = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options());
    expect(server.requests).toHaveLength(3);
    expect((await readFile(path)).equals(BODY)).toBe(true);
  });

  it('gives up an attempt after the idle timeout, retries, then fails clearly', async () => {
    // Sends a little, then goes silent for longer than the idle timeout.
    server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 100));
    });
    const started = Date.now();

    const error = await fetchArtifact(entryFor(`${server.origin}/kubelet`), options({ retries: 1, timeoutMs: 150 })).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ArtifactFetchError);
    expect((error as ArtifactFetchError).attempts).toBe(2);
    expect((error as Error).message).toContain('no data from');
    expect((error as Error).message).toContain('for 150 ms');
    expect(server.requests).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('follows redirects', async () => {
    server = await startServer((req, res) =>
      req.url === '/moved' ? res.writeHead(302, { location: '/real/kubelet' }).end() : serveBytes(req, res, BODY),
    );
    const path = await fetchArtifact(entryFor(`${server.origin}/moved`, BODY, { filename: 'kubelet' }), options());
    expect(server.requests.map((r) => r.path)).toEqual(['/moved', '/real/kubelet']);
    expect((await readFile(path)).equals(BODY)).toBe(true);
  });

  it('stops waiting when the signal aborts', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/kubelet`;
    const started = Date.now();
    const error = await fetchArtifact(entryFor(url), options({ backoffMs: 10_000, signal: AbortSignal.timeout(100) })).catch((e: unknown) => e);
    expect((error as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('fails at once, without network, for an upstream-gone artifact that no mirror provides', async () => {
    server = await startServer((req, res) => serveBytes(req, res, BODY));
    const error = await fetchArtifact(entryFor(`${server.origin}/kubelet`, BODY, { upstreamGone: true }), options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArtifactFetchError);
    expect((error as Error).message).toContain('upstreamGone: true');
    expect((error as Error).message).toContain('BOXCAR_ARTIFACT_MIRROR');
    expect(server.requests).toHaveLength(0);
  });
});

describe('mirrors', () => {
  it('reads https://host/path from <http mirror>/host/path', async () => {
    server = await startServer((req, res) => serveBytes(req, res, BODY));
    const entry = entryFor('https://upstream.invalid/x', BODY, { upstreamGone: true });

    const path = await fetchArtifact(entry, options({ mirror: `${server.origin}/mirror` }));

    expect(server.requests.map((r) => r.path)).toEqual(['/mirror/upstream.invalid/x']);
    expect((await readFile(path)).equals(BODY)).toBe(true);
  });

  it('takes the mirror from BOXCAR_ARTIFACT_MIRROR', async () => {
    server = await startServer((req, res) => serveBytes(req, res, BODY));
    await fetchArtifact(entryFor('https://upstream.invalid/pool/main/k/kubelet.deb'), {
      ...options(),
      env: { BOXCAR_ARTIFACT_MIRROR: `${server.origin}/m/` },
    });
    expect(server.requests.map((r) => r.path)).toEqual(['/m/upstream.invalid/pool/main/k/kubelet.deb']);
  });

  it('copies and verifies from a file:// mirror', async () => {
    const mirrorDir = join(work, 'mirror');
    await mkdir(join(mirrorDir, 'upstream.invalid', 'x'), { recursive: true });
    await writeFile(join(mirrorDir, 'upstream.invalid', 'x', 'kubelet'), BODY);
    const progress: ProgressEvent[] = [];

    const path = await fetchArtifact(
      entryFor('https://upstream.invalid/x/kubelet'),
      options({ mirror: pathToFileURL(mirrorDir).href, onProgress: (e) => progress.push(e) }),
    );

    expect(path).toBe(join(cacheDir, 'sha256', sha256Hex(BODY), 'kubelet'));
    expect((await readFile(path)).equals(BODY)).toBe(true);
    expect(progress.at(-1)?.receivedBytes).toBe(BODY.length);
  });

  it('refuses wrong bytes from a file:// mirror and keeps nothing', async () => {
    const mirrorDir = join(work, 'mirror');
    const mirrored = join(mirrorDir, 'upstream.invalid', 'kubelet');
    await mkdir(dirname(mirrored), { recursive: true });
    const fetchFromMirror = () =>
      fetchArtifact(entryFor('https://upstream.invalid/kubelet'), options({ mirror: pathToFileURL(mirrorDir).href })).catch((e: unknown) => e);

    await writeFile(mirrored, testBytes(BODY.length, 8));
    const wrongBytes = await fetchFromMirror();
    expect(wrongBytes).toBeInstanceOf(ArtifactIntegrityError);
    expect((wrongBytes as Error).message).toContain(`from ${mirrored}: sha256 mismatch: expected ${sha256Hex(BODY)}, got ${sha256Hex(testBytes(BODY.length, 8))}`);
    expect(await filesUnder(cacheDir)).toEqual([]);

    await writeFile(mirrored, BODY.subarray(0, HALF));
    const wrongSize = await fetchFromMirror();
    expect(wrongSize).toBeInstanceOf(ArtifactIntegrityError);
    expect((wrongSize as Error).message).toContain(`size mismatch: expected ${BODY.length} bytes, got ${HALF} bytes`);
    expect(await filesUnder(cacheDir)).toEqual([]);
  });

  it('names the missing file of a file:// mirror', async () => {
    const mirrorDir = join(work, 'mirror');
    const error = await fetchArtifact(entryFor('https://upstream.invalid/kubelet'), options({ mirror: pathToFileURL(mirrorDir).href })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ArtifactFetchError);
    expect((error as Error).message).toContain(`${join(mirrorDir, 'upstream.invalid', 'kubelet')} does not exist`);
  });
});

describe('fetchAll', () => {
  it('fetches several artifacts two at a time and maps id to path', async () => {
    const other = testBytes(1000, 9);
    let open = 0;
    let mostOpen = 0;
    // Answers after a pause so that requests made together overlap.
    server = await startServer((req, res) => {
      mostOpen = Math.max(mostOpen, ++open);
      res.on('finish', () => open--);
      setTimeout(() => serveBytes(req, res, req.url === '/a' ? BODY : other), 50);
    });
    const a = entryFor(`${server.origin}/a`, BODY, { id: 'a' });
    const b = entryFor(`${server.origin}/b`, other, { id: 'b' });

    const paths = await fetchAll([a, b], options());

    expect([...paths.keys()]).toEqual(['a', 'b']);
    expect((await readFile(paths.get('b') as string)).equals(other)).toBe(true);
    expect(server.requests).toHaveLength(2);
    expect(mostOpen).toBe(2);
  });

  it('reports every failure of the batch', async () => {
    server = await startServer((_req, res) => res.writeHead(404).end());
    const entries = ['a', 'b'].map((id) => entryFor(`${server?.origin}/${id}`, testBytes(10, id.charCodeAt(0)), { id }));
    const error = await fetchAll(entries, options()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AggregateError);
    expect((error as Error).message).toContain('artifact "a"');
    expect((error as Error).message).toContain('artifact "b"');
  });
});
