// The one HTTP(S) client: GET with redirects, an idle timeout, Range requests and a size limit, and a
// download into a file that resumes where an earlier attempt stopped.

import { createWriteStream } from 'node:fs';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly statusText: string | undefined,
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

/** The source has another size than the one expected. */
export class SizeMismatchError extends Error {
  constructor(
    readonly expectedSize: number,
    /** Announced by the source; undefined when it just kept sending past the expected size. */
    readonly actualSize: number | undefined,
  ) {
    super(actualSize === undefined ? `more than the expected ${expectedSize} bytes` : `${actualSize} bytes instead of ${expectedSize}`);
    this.name = 'SizeMismatchError';
  }
}

/**
 * Passes bytes through, reporting the running file size (starting at `start`) and failing
 * once it would exceed `limit`, so that a wrong or endless source cannot fill the disk.
 */
export function byteCounter(start: number, limit: number | undefined, onBytes: (fileBytes: number) => void): Transform {
  let fileBytes = start;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      fileBytes += chunk.length;
      if (limit !== undefined && fileBytes > limit) {
        callback(new SizeMismatchError(limit, undefined));
        return;
      }
      onBytes(fileBytes);
      callback(null, chunk);
    },
  });
}

export interface HttpGetOptions {
  /** Asks for the bytes from here on with a Range request; a server that ignores it answers with all of them. */
  offset?: number;
  /** Size of the whole resource when known: a server announcing another size fails with SizeMismatchError. */
  expectedSize?: number;
  /** Longest silence on the connection (connecting and the body included) before the request is given up; default 60 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface HttpGetResponse {
  /** The URL that answered, after redirects. */
  url: string;
  /** The body, unread. */
  body: IncomingMessage;
  /** Where the body starts in the resource: the asked offset for a 206, 0 for a 200. */
  start: number;
  /** Size of the whole resource when the server said so. */
  totalBytes: number | undefined;
  /** The idle timeout, once it cut the connection: the stream errors it causes are less telling. */
  timedOut(): IdleTimeoutError | undefined;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** GET following redirects; any answer but 200 or 206 fails with HttpStatusError (404 included). */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpGetResponse> {
  let current = url;
  for (let hops = 0; ; hops++) {
    const exchange = await send(current, options);
    const location = exchange.body.headers.location;
    if (!REDIRECT_STATUSES.has(exchange.body.statusCode ?? 0) || location === undefined) return answer(exchange, current, options);
    exchange.body.destroy();
    if (hops === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects starting at ${url}`);
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error(`${current} redirects to unsupported ${next.href}`);
    current = next.href;
  }
}

interface Exchange {
  body: IncomingMessage;
  timedOut: () => IdleTimeoutError | undefined;
}

function send(url: string, options: HttpGetOptions): Promise<Exchange> {
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    // Identity encoding: callers hash and count the bytes as the server stores them.
    const headers: OutgoingHttpHeaders = { 'accept-encoding': 'identity', 'user-agent': 'boxcar' };
    if (options.offset !== undefined && options.offset > 0) headers.range = `bytes=${options.offset}-`;
    let timedOut: IdleTimeoutError | undefined;
    const client = target.protocol === 'https:' ? https : http;
    // agent: false gives each request its own connection, so a stalled keep-alive socket is never reused.
    const request = client.get(target, { headers, agent: false, ...(options.signal && { signal: options.signal }) }, (body) =>
      resolve({ body, timedOut: () => timedOut }),
    );
    request.setTimeout(idleTimeoutMs, () => {
      timedOut = new IdleTimeoutError(idleTimeoutMs, url);
      request.destroy(timedOut);
    });
    request.on('error', (error) => reject(timedOut ?? error));
  });
}

function answer(exchange: Exchange, url: string, options: HttpGetOptions): HttpGetResponse {
  const { body } = exchange;
  const status = body.statusCode ?? 0;
  const offset = options.offset ?? 0;
  let start: number;
  let totalBytes: number | undefined;
  if (status === 200) {
    // Also the answer of servers that ignore Range: the resource starts over.
    start = 0;
    totalBytes = contentLength(body);
  } else if (status === 206) {
    const contentRange = body.headers['content-range'];
    const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(contentRange ?? '');
    if (match === null || Number(match[1]) !== offset) {
      body.destroy();
      throw new RangeMismatchError(url, offset, contentRange);
    }
    start = offset;
    totalBytes = match[2] === '*' ? undefined : Number(match[2]);
  } else {
    body.destroy();
    throw new HttpStatusError(status, url, body.statusMessage);
  }
  if (options.expectedSize !== undefined && totalBytes !== undefined && totalBytes !== options.expectedSize) {
    body.destroy();
    throw new SizeMismatchError(options.expectedSize, totalBytes);
  }
  return { url, body, start, totalBytes, timedOut: exchange.timedOut };
}

function contentLength(response: IncomingMessage): number | undefined {
  const header = response.headers['content-length'];
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
}

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

/** One download attempt into a file, continuing its first `offset` bytes when the server can. */
export async function httpDownload(spec: HttpDownloadSpec): Promise<HttpDownloadResult> {
  const response = await httpGet(spec.url, {
    offset: spec.offset,
    idleTimeoutMs: spec.idleTimeoutMs,
    ...(spec.expectedSize !== undefined && { expectedSize: spec.expectedSize }),
    ...(spec.signal && { signal: spec.signal }),
  });
  const { start, totalBytes } = response;
  let fileBytes = start;
  const counter = byteCounter(start, spec.expectedSize, (bytes) => {
    fileBytes = bytes;
    spec.onBytes(bytes, totalBytes);
  });
  try {
    await pipeline(response.body, counter, createWriteStream(spec.dest, { flags: start > 0 ? 'a' : 'w' }));
  } catch (error) {
    const timeout = response.timedOut();
    if (timeout !== undefined) throw timeout;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') throw new ConnectionLostError(response.url, fileBytes, totalBytes, code);
    throw error;
  }
  return { fileBytes, totalBytes };
}
