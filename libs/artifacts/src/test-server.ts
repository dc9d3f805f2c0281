// A real HTTP server on 127.0.0.1 for the tests: records every request and lets each test
// decide how to answer (including misbehaving like real servers do).

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

export interface TestServer {
  /** http://127.0.0.1:<port> */
  origin: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 where nothing listens (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = await startServer(() => undefined);
  await server.close();
  return Number(new URL(server.origin).port);
}

/** Answers like a well-behaved file server: 200, or 206/416 for a `Range: bytes=N-` request. */
export function serveBytes(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (match === null) {
    res.writeHead(200, { 'content-length': body.length }).end(body);
    return;
  }
  const start = Number(match[1]);
  if (start >= body.length) {
    res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    return;
  }
  res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
  res.end(body.subarray(start));
}

/** Sends the headers of the full body and `bytes` of it, then cuts the connection. */
export function serveTruncated(res: ServerResponse, body: Buffer, bytes: number): void {
  res.writeHead(200, { 'content-length': body.length });
  res.write(body.subarray(0, bytes), () => setTimeout(() => res.socket?.destroy(), 20));
}

/** Deterministic, non-repeating-looking bytes, so that a misplaced chunk changes the digest. */
export function testBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
