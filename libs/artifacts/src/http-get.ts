// One HTTP(S) download attempt into a file, resuming with a Range request when asked to.
// This is the only module that opens network connections.

import { createWriteStream } from 'node:fs';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { byteCounter, SizeMismatchError } from './byte-counter.ts';

export interface HttpDownloadSpec {
  url: string;
  /** File to write; with offset > 0 its first `offset` bytes are kept and a Range request asks for the rest. */
  dest: string;
  offset: number;
  /** Size of the complete file when known: a server announcing another size, or sending more, fails with SizeMismatchError. */
  expectedSize?: number;
  /** Longest silence on the connection (connecting included) before the attempt is given up. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  onBytes: (fileBytes: number, totalBytes: number | undefined) => void;
}

export interface HttpDownloadResult {
  fileBytes: number;
  /** Size of the whole resource when the server said so. */
  totalBytes: number | undefined;
}

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    statusText: string | undefined,
  ) {
    super(`HTTP ${status}${statusText ? ` ${statusText}` : ''} from ${url}`);
    this.name = 'HttpStatusError';
  }
}

export class IdleTimeoutError extends Error {
  constructor(timeoutMs: number, url: string) {
    super(`no data from ${url} for ${timeoutMs} ms`);
    this.name = 'IdleTimeoutError';
  }
}

/** The response ended, cleanly or not, before the whole file arrived. */
export class ConnectionLostError extends Error {
  constructor(url: string, fileBytes: number, totalBytes: number | undefined, code?: string) {
    super(`connection to ${url} lost after ${fileBytes}${totalBytes === undefined ? '' : ` of ${totalBytes}`} bytes${code ? ` (${code})` : ''}`);
    this.name = 'ConnectionLostError';
  }
}

/** A 206 answer that does not start where the Range request asked. */
export class RangeMismatchError extends Error {
  constructor(url: string, asked: number, contentRange: string | undefined) {
    super(`${url} answered a Range request for bytes ${asked}- with Content-Range ${JSON.stringify(contentRange ?? null)}`);
    this.name = 'RangeMismatchError';
  }
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export async function httpDownload(spec: HttpDownloadSpec): Promise<HttpDownloadResult> {
  let url = spec.url;
  for (let hops = 0; ; hops++) {
    const exchange = await send(url, spec);
    const { response } = exchange;
    const location = response.headers.location;
    if (!REDIRECT_STATUSES.has(response.statusCode ?? 0) || location === undefined) return receive(exchange, url, spec);
    discard(exchange);
    if (hops === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects starting at ${spec.url}`);
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error(`${url} redirects to unsupported ${next.href}`);
    url = next.href;
  }
}

interface Exchange {
  response: IncomingMessage;
  /** Set once the idle timer fired; the stream errors it causes are less telling than this. */
  timeout: () => IdleTimeoutError | undefined;
}

function send(url: string, spec: HttpDownloadSpec): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const headers: OutgoingHttpHeaders = { 'accept-encoding': 'identity', 'user-agent': 'boxcar-artifacts' };
    if (spec.offset > 0) headers.range = `bytes=${spec.offset}-`;
    let timedOut: IdleTimeoutError | undefined;
    const client = target.protocol === 'https:' ? https : http;
    // agent: false gives each attempt its own connection, so a stalled keep-alive socket is never reused.
    const request = client.get(target, { headers, agent: false, signal: spec.signal }, (response) =>
      resolve({ response, timeout: () => timedOut }),
    );
    request.setTimeout(spec.idleTimeoutMs, () => {
      timedOut = new IdleTimeoutError(spec.idleTimeoutMs, url);
      request.destroy(timedOut);
    });
    request.on('error', (error) => reject(timedOut ?? error));
  });
}

async function receive(exchange: Exchange, url: string, spec: HttpDownloadSpec): Promise<HttpDownloadResult> {
  const { response } = exchange;
  const status = response.statusCode ?? 0;
  let start: number;
  let totalBytes: number | undefined;
  if (status === 200) {
    // Also the answer of servers that ignore Range: the file starts over.
    start = 0;
    totalBytes = contentLength(response);
  } else if (status === 206) {
    const contentRange = response.headers['content-range'];
    const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange ?? '');
    if (match === null || Number(match[1]) !== spec.offset) {
      discard(exchange);
      throw new RangeMismatchError(url, spec.offset, contentRange);
    }
    start = spec.offset;
    totalBytes = match[2] === '*' ? undefined : Number(match[2]);
  } else {
    discard(exchange);
    throw new HttpStatusError(status, url, response.statusMessage);
  }
  if (spec.expectedSize !== undefined && totalBytes !== undefined && totalBytes !== spec.expectedSize) {
    discard(exchange);
    throw new SizeMismatchError(spec.expectedSize, totalBytes);
  }
  let fileBytes = start;
  const counter = byteCounter(start, spec.expectedSize, (bytes) => {
    fileBytes = bytes;
    spec.onBytes(bytes, totalBytes);
  });
  try {
    await pipeline(response, counter, createWriteStream(spec.dest, { flags: start > 0 ? 'a' : 'w' }));
  } catch (error) {
    const timeout = exchange.timeout();
    if (timeout !== undefined) throw timeout;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') throw new ConnectionLostError(url, fileBytes, totalBytes, code);
    throw error;
  }
  return { fileBytes, totalBytes };
}

function contentLength(response: IncomingMessage): number | undefined {
  const header = response.headers['content-length'];
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
}

function discard(exchange: Exchange): void {
  exchange.response.destroy();
}
