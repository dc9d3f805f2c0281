// The HTTP client against real servers on 127.0.0.1 that misbehave: bodies that never end, sizes
// that lie, redirects from https to http, and bodies that trickle past the deadline.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BodyTooLargeError,
  DeadlineExceededError,
  deadlineFor,
  DEFAULT_MAX_TEXT_BYTES,
  httpDownload,
  httpGet,
  httpGetText,
  InsecureRedirectError,
  redirectTarget,
  SizeMismatchError,
} from './http-get.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let dir: string;
const closers: (() => Promise<void>)[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-kit-http-'));
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await rm(dir, { recursive: true, force: true });
});

async function listen(server: Server | ReturnType<typeof createNetServer>, scheme: string): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A plain http server; `sent` counts the body bytes it managed to write, `closed` when the client hung up. */
async function serve(handler: Handler): Promise<string> {
  return listen(createServer(handler), 'http');
}

interface Endless {
  url: string;
  /** Resolves with the bytes written once the client dropped the connection. */
  dropped: Promise<number>;
}

/** Streams a body forever (chunked, with Content-Length when `announce` is given), honouring backpressure. */
async function serveForever(announce?: number): Promise<Endless> {
  let resolveDropped: (bytes: number) => void = () => undefined;
  const dropped = new Promise<number>((resolve) => (resolveDropped = resolve));
  const url = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', ...(announce !== undefined && { 'content-length': announce }) });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    let open = true;
    res.on('close', () => {
      open = false;
      resolveDropped(sent);
    });
    const pump = (): void => {
      while (open) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  return { url, dropped };
}

async function missing(path: string): Promise<boolean> {
  return stat(path).then(
    () => false,
    (error: NodeJS.ErrnoException) => error.code === 'ENOENT',
  );
}

describe('text bodies are capped', () => {
  it('stops a body that never ends at the cap, naming the URL and the limit', async () => {
    const endless = await serveForever();
    const url = `${endless.url}/catalog.json`;
    const error = await httpGetText(url, { maxBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect((error as Error).message).toBe(`${url} sent more than the limit of ${1024 * 1024} bytes`);
    // The connection was dropped soon after the cap, not read on.
    expect(await endless.dropped).toBeLessThan(16 * 1024 * 1024);
  });

  it('caps at 4 MiB by default', async () => {
    const endless = await serveForever();
    const error = await httpGetText(endless.url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect((error as BodyTooLargeError).limit).toBe(DEFAULT_MAX_TEXT_BYTES);
    expect(DEFAULT_MAX_TEXT_BYTES).toBe(4 * 1024 * 1024);
  });

  it('refuses an announced body over the cap before reading it', async () => {
    const endless = await serveForever(10 * 1024 * 1024);
    await expect(httpGetText(endless.url, { maxBytes: 1000 })).rejects.toThrow(`${endless.url} sent a body of ${10 * 1024 * 1024} bytes, over the limit of 1000 bytes`);
  });

  it('reads a body under the cap whole, multibyte characters included', async () => {
    const text = `{"name": "${'é'.repeat(50_000)}"}`;
    const url = await serve((_req, res) => res.writeHead(200).end(text));
    expect(await httpGetText(url, { maxBytes: 200_000 })).toBe(text);
  });
});

describe('downloads stop past the expected size', () => {
  it('stops a body that never ends right after the expected size and removes the file', async () => {
    const endless = await serveForever();
    const dest = join(dir, 'disk.qcow2');
    let most = 0;
    const error = await httpDownload({ url: endless.url, dest, offset: 0, expectedSize: 100_000, idleTimeoutMs: 5000, onBytes: (b) => (most = b) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SizeMismatchError);
    expect((error as Error).message).toBe(`${endless.url} sent more than the expected 100000 bytes`);
    expect(most).toBeLessThanOrEqual(100_000);
    expect(await missing(dest)).toBe(true);
    expect(await endless.dropped).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses a Content-Length other than the expected size before writing', async () => {
    const url = await serve((_req, res) => res.writeHead(200, { 'content-length': 1000 }).end(Buffer.alloc(1000)));
    const dest = join(dir, 'box');
    await expect(httpDownload({ url, dest, offset: 0, expectedSize: 500, idleTimeoutMs: 5000, onBytes: () => undefined })).rejects.toThrow(
      `${url} sent 1000 bytes instead of 500`,
    );
    expect(await missing(dest)).toBe(true);
  });

  it('keeps to Content-Length when the server sends more bytes than it announced', async () => {
    // A raw socket: the announced 500 bytes, then 64 KiB more on the same connection.
    const server = createNetServer((socket: Socket) => {
      socket.on('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 500\r\nconnection: close\r\n\r\n');
        socket.end(Buffer.alloc(500 + 64 * 1024, 0x41));
      });
      socket.on('error', () => undefined);
    });
    const url = await listen(server, 'http');
    const dest = join(dir, 'box');
    await httpDownload({ url, dest, offset: 0, expectedSize: 500, idleTimeoutMs: 5000, onBytes: () => undefined });
    expect((await readFile(dest)).length).toBe(500);
    expect(await httpGetText(url, { maxBytes: 1000 })).toBe('A'.repeat(500));
  });

  it('stops a streamed read (no file) past the expected size', async () => {
    const endless = await serveForever();
    const response = await httpGet(endless.url, { expectedSize: 70_000 });
    let read = 0;
    const error = await (async () => {
      for await (const chunk of response.body as AsyncIterable<Buffer>) read += chunk.length;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SizeMismatchError);
    expect(read).toBeLessThanOrEqual(70_000);
  });
});

describe('a total deadline', () => {
  /** Sends one byte every 20 ms: never idle, never done. */
  async function serveTrickle(): Promise<string> {
    return serve((_req, res) => {
      res.writeHead(200, { 'content-length': 1_000_000 });
      const timer = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(timer));
    });
  }

  it('scales with the size: a base plus the bytes at a minimum rate', () => {
    expect(deadlineFor(0)).toBe(120_000);
    expect(deadlineFor(4 * 1024 * 1024 * 1024)).toBe(120_000 + 16_384_000);
    expect(deadlineFor(1000, { baseMs: 100, minBytesPerSecond: 10_000 })).toBe(200);
  });

  it('cuts a text read that trickles past its deadline', async () => {
    const url = await serveTrickle();
    const started = Date.now();
    const error = await httpGetText(url, { deadlineMs: 300, idleTimeoutMs: 5000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as Error).message).toMatch(new RegExp(`^GET ${url} exceeded its deadline of 300 ms \\(\\d+ bytes of the body received\\)$`));
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('cuts a download that trickles past the deadline its size allows', async () => {
    const url = await serveTrickle();
    const dest = join(dir, 'disk');
    const started = Date.now();
    const error = await httpDownload({
      url,
      dest,
      offset: 0,
      expectedSize: 1_000_000,
      idleTimeoutMs: 5000,
      deadlinePolicy: { baseMs: 200, minBytesPerSecond: 10_000_000 },
      onBytes: () => undefined,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).deadlineMs).toBe(300);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('treats a deadline too long for a timer as none, instead of striking at once', async () => {
    const url = await serve((_req, res) => res.writeHead(200).end('fine'));
    expect(await httpGetText(url, { deadlineMs: 2 ** 40 })).toBe('fine');
    expect(await httpGetText(url, { deadlineMs: Infinity })).toBe('fine');
  });

  it('also covers a server that never answers', async () => {
    const url = await serve(() => undefined);
    await expect(httpGet(url, { deadlineMs: 200, idleTimeoutMs: 5000 })).rejects.toThrow(`GET ${url} exceeded its deadline of 200 ms (0 bytes of the body received)`);
  });
});

describe('redirects', () => {
  it('refuses https to http, follows the rest, and names both URLs', () => {
    expect(() => redirectTarget('https://boxes.example/a.json', 'http://boxes.example/a.json')).toThrow(
      new InsecureRedirectError('https://boxes.example/a.json', 'http://boxes.example/a.json'),
    );
    expect(() => redirectTarget('https://boxes.example/a.json', 'http://x/')).toThrow(
      'https://boxes.example/a.json redirects to http://x/: refusing to follow a redirect from https to plain http',
    );
    expect(redirectTarget('https://a.example/x/y', '../z')).toBe('https://a.example/z');
    expect(redirectTarget('http://a.example/x', 'https://b.example/x')).toBe('https://b.example/x');
    expect(redirectTarget('http://a.example/x', 'http://b.example/x')).toBe('http://b.example/x');
    expect(() => redirectTarget('http://a.example/x', 'file:///etc/passwd')).toThrow('http://a.example/x redirects to unsupported file:///etc/passwd');
  });

  it('follows http to http, and stops after 5 redirects', async () => {
    const url = await serve((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: '/here' }).end();
      else if (req.url === '/here') res.writeHead(200).end('arrived');
      else res.writeHead(307, { location: req.url ?? '/' }).end();
    });
    expect(await httpGetText(`${url}/moved`)).toBe('arrived');
    await expect(httpGet(`${url}/loop`)).rejects.toThrow(`more than 5 redirects starting at ${url}/loop`);
  });

  it('over real https: follows https to https, refuses https to http', async () => {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    );
    const cert = await readFile(join(dir, 'cert.pem'));
    const plain = await serve((_req, res) => res.writeHead(200).end('plain'));
    const secure = await listen(
      createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert }, (req, res) => {
        if (req.url === '/to-http') res.writeHead(301, { location: `${plain}/catalog.json` }).end();
        else if (req.url === '/to-https') res.writeHead(302, { location: '/catalog.json' }).end();
        else res.writeHead(200).end('secure');
      }) as unknown as Server,
      'https',
    );
    expect(await httpGetText(`${secure}/to-https`, { ca: cert })).toBe('secure');
    const error = await httpGetText(`${secure}/to-http`, { ca: cert }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InsecureRedirectError);
    expect((error as Error).message).toBe(`${secure}/to-http redirects to ${plain}/catalog.json: refusing to follow a redirect from https to plain http`);
    // Without the CA the self-signed server is not trusted at all.
    await expect(httpGetText(`${secure}/catalog.json`)).rejects.toThrow(/self-signed|self signed/);
  });
});
