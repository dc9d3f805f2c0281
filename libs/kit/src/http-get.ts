// The one HTTP(S) client: GET with redirects, an idle timeout, a total deadline, Range requests and size
// limits, text bodies read under a cap, and a download into a file that resumes where an earlier attempt stopped.

import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { pipeline as pipe, type Readable, Transform } from 'node:stream';
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
    /** The URL or file that sent it, when known. */
    readonly source?: string,
  ) {
    const what = actualSize === undefined ? `more than the expected ${expectedSize} bytes` : `${actualSize} bytes instead of ${expectedSize}`;
    super(source === undefined ? what : `${source} sent ${what}`);
    this.name = 'SizeMismatchError';
  }
}

/** A body longer than the cap the caller set for it (text and JSON bodies are read whole into memory). */
export class BodyTooLargeError extends Error {
  constructor(
    readonly url: string,
    readonly limit: number,
    /** Announced by Content-Length; undefined when the server just kept sending. */
    readonly announced?: number,
  ) {
    super(`${url} sent ${announced === undefined ? 'more than' : `a body of ${announced} bytes, over`} the limit of ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** The request, body included, took longer than its total deadline. */
export class DeadlineExceededError extends Error {
  constructor(
    readonly url: string,
    readonly deadlineMs: number,
    /** Body bytes received when the deadline struck. */
    readonly bytes: number,
  ) {
    super(`GET ${url} exceeded its deadline of ${deadlineMs} ms (${bytes} bytes of the body received)`);
    this.name = 'DeadlineExceededError';
  }
}

/** A redirect that leaves https for plain http: what was authenticated would no longer be. */
export class InsecureRedirectError extends Error {
  constructor(
    readonly from: string,
    readonly to: string,
  ) {
    super(`${from} redirects to ${to}: refusing to follow a redirect from https to plain http`);
    this.name = 'InsecureRedirectError';
  }
}

/** How long a request may take in total: `baseMs` plus the bytes it may carry at `minBytesPerSecond`. */
export interface DeadlinePolicy {
  baseMs: number;
  minBytesPerSecond: number;
}

/** Two minutes, plus 256 KiB/s for the body (a 4 GiB disk: about 4.6 hours). */
export const DEFAULT_DEADLINE: DeadlinePolicy = { baseMs: 120_000, minBytesPerSecond: 256 * 1024 };

/** The total deadline of a request carrying up to `bytes` bytes. */
export function deadlineFor(bytes: number, policy: DeadlinePolicy = DEFAULT_DEADLINE): number {
  return policy.baseMs + Math.ceil((Math.max(0, bytes) * 1000) / policy.minBytesPerSecond);
}

/** Default cap of httpGetText: catalogs, manifests and keys are far smaller. */
export const DEFAULT_MAX_TEXT_BYTES = 4 * 1024 * 1024;

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
  /**
   * Size of the whole resource when known: a server announcing another size fails with SizeMismatchError,
   * and so does the body as soon as it carries more.
   */
  expectedSize?: number;
  /** Most bytes the body may carry: more (announced or sent) fails with BodyTooLargeError. */
  maxBytes?: number;
  /** Longest silence on the connection (connecting and the body included) before the request is given up; default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Longest time for the whole request, redirects and body included (DeadlineExceededError). Default: from
   * `deadlinePolicy` for the bytes expected (expectedSize - offset, else maxBytes); none when neither is known.
   */
  deadlineMs?: number;
  /** Scales the default deadline; DEFAULT_DEADLINE unless given. */
  deadlinePolicy?: DeadlinePolicy;
  /** Certificate authorities trusted for https (PEM), instead of Node's defaults. */
  ca?: string | Buffer;
  /** A client certificate and its key (PEM) presented to an https server that asks for one (a Kubernetes API). */
  clientCert?: { cert: string | Buffer; key: string | Buffer };
  signal?: AbortSignal;
}

export interface HttpGetResponse {
  /** The URL that answered, after redirects. */
  url: string;
  /** The body, unread, held to the size limits and the deadline; destroying it closes the connection. */
  body: Readable;
  /** Where the body starts in the resource: the asked offset for a 206, 0 for a 200. */
  start: number;
  /** Size of the whole resource when the server said so. */
  totalBytes: number | undefined;
  /** The idle timeout, once it cut the connection: the stream errors it causes are less telling. */
  timedOut(): IdleTimeoutError | undefined;
  /** What cut the request short, when something did (idle timeout, deadline, size limit). */
  failure(): Error | undefined;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * Where a redirect from `from` to `location` leads; fails for schemes other than http(s) and for a
 * redirect from https to plain http (InsecureRedirectError).
 */
export function redirectTarget(from: string, location: string): string {
  const next = new URL(location, from);
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error(`${from} redirects to unsupported ${next.href}`);
  if (new URL(from).protocol === 'https:' && next.protocol === 'http:') throw new InsecureRedirectError(from, next.href);
  return next.href;
}

/** Node fires longer timers at once; a deadline beyond it (about 24.8 days) is no deadline. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The bounds of one httpGet: its deadline, and what a failure cuts (the request in flight, then the body). */
class Guard {
  failure: Error | undefined;
  bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private cut: (error: Error) => void = () => undefined;

  constructor(url: string, deadlineMs: number | undefined) {
    if (deadlineMs === undefined || !(deadlineMs < MAX_TIMER_MS)) return;
    this.timer = setTimeout(() => this.fail(new DeadlineExceededError(url, deadlineMs, this.bytes)), deadlineMs);
    this.timer.unref();
  }

  onFail(cut: (error: Error) => void): void {
    this.cut = cut;
  }

  fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.done();
    this.cut(error);
  }

  done(): void {
    clearTimeout(this.timer);
  }
}

function totalDeadlineMs(options: HttpGetOptions): number | undefined {
  if (options.deadlineMs !== undefined) return options.deadlineMs;
  const bytes = options.expectedSize !== undefined ? options.expectedSize - (options.offset ?? 0) : options.maxBytes;
  return bytes === undefined ? undefined : deadlineFor(bytes, options.deadlinePolicy);
}

/** GET following redirects; any answer but 200 or 206 fails with HttpStatusError (404 included). */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpGetResponse> {
  const guard = new Guard(url, totalDeadlineMs(options));
  try {
    let current = url;
    for (let hops = 0; ; hops++) {
      const exchange = await send(current, options, guard);
      const location = exchange.body.headers.location;
      if (!REDIRECT_STATUSES.has(exchange.body.statusCode ?? 0) || location === undefined) return answer(exchange, current, options, guard);
      exchange.body.destroy();
      if (hops === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects starting at ${url}`);
      current = redirectTarget(current, location);
    }
  } catch (error) {
    guard.done();
    throw error;
  }
}

interface Exchange {
  body: IncomingMessage;
  timedOut: () => IdleTimeoutError | undefined;
}

function send(url: string, options: HttpGetOptions, guard: Guard): Promise<Exchange> {
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    // Identity encoding: callers hash and count the bytes as the server stores them.
    const headers: OutgoingHttpHeaders = { 'accept-encoding': 'identity', 'user-agent': 'boxcar' };
    if (options.offset !== undefined && options.offset > 0) headers.range = `bytes=${options.offset}-`;
    let timedOut: IdleTimeoutError | undefined;
    const client = target.protocol === 'https:' ? https : http;
    // agent: false gives each request its own connection, so a stalled keep-alive socket is never reused.
    const request = client.get(
      target,
      {
        headers,
        agent: false,
        ...(options.signal && { signal: options.signal }),
        ...(options.ca !== undefined && { ca: options.ca }),
        ...(options.clientCert !== undefined && { cert: options.clientCert.cert, key: options.clientCert.key }),
      },
      (body) => resolve({ body, timedOut: () => timedOut }),
    );
    guard.onFail((error) => request.destroy(error));
    request.setTimeout(idleTimeoutMs, () => {
      timedOut = new IdleTimeoutError(idleTimeoutMs, url);
      guard.fail(timedOut);
    });
    request.on('error', (error) => reject(guard.failure ?? error));
  });
}

/** The body passed on byte for byte, failing once it carries more than the limits allow. */
function limitedBody(body: IncomingMessage, url: string, start: number, options: HttpGetOptions, guard: Guard): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      guard.bytes += chunk.length;
      if (options.maxBytes !== undefined && guard.bytes > options.maxBytes) {
        callback(new BodyTooLargeError(url, options.maxBytes));
        return;
      }
      if (options.expectedSize !== undefined && start + guard.bytes > options.expectedSize) {
        callback(new SizeMismatchError(options.expectedSize, undefined, url));
        return;
      }
      callback(null, chunk);
    },
  });
  // Destroying the returned stream (by a reader, or by a failure) destroys the response and its socket.
  pipe(body, counter, () => guard.done());
  counter.on('close', () => guard.done());
  guard.onFail((error) => counter.destroy(error));
  return counter;
}

function answer(exchange: Exchange, url: string, options: HttpGetOptions, guard: Guard): HttpGetResponse {
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
    throw new SizeMismatchError(options.expectedSize, totalBytes, url);
  }
  const announced = contentLength(body);
  if (options.maxBytes !== undefined && announced !== undefined && announced > options.maxBytes) {
    body.destroy();
    throw new BodyTooLargeError(url, options.maxBytes, announced);
  }
  return {
    url,
    body: limitedBody(body, url, start, options, guard),
    start,
    totalBytes,
    timedOut: exchange.timedOut,
    failure: () => guard.failure,
  };
}

/** A stream error as the caller should see it: what cut the request, or a lost connection, else as is. */
function explain(error: unknown, response: HttpGetResponse, fileBytes: number): unknown {
  const failure = response.failure();
  if (failure !== undefined) return failure;
  if (error instanceof SizeMismatchError || error instanceof BodyTooLargeError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') return new ConnectionLostError(response.url, fileBytes, response.totalBytes, code);
  return error;
}

/** GET of a text (JSON, a key): the whole body as UTF-8, at most `maxBytes` of it (default DEFAULT_MAX_TEXT_BYTES). */
export async function httpGetText(url: string, options: HttpGetOptions = {}): Promise<string> {
  const response = await httpGet(url, { ...options, maxBytes: options.maxBytes ?? DEFAULT_MAX_TEXT_BYTES });
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      bytes += chunk.length;
    }
  } catch (error) {
    throw explain(error, response, bytes);
  }
  if (response.start === 0 && response.totalBytes !== undefined && bytes !== response.totalBytes) throw new ConnectionLostError(response.url, bytes, response.totalBytes);
  return Buffer.concat(chunks).toString('utf8');
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
  /** Longest time for the attempt; default from `deadlinePolicy` for the bytes still expected (none without expectedSize). */
  deadlineMs?: number;
  deadlinePolicy?: DeadlinePolicy;
  /** Certificate authorities trusted for https (PEM), instead of Node's defaults. */
  ca?: string | Buffer;
  signal?: AbortSignal;
  onBytes: (fileBytes: number, totalBytes: number | undefined) => void;
}

export interface HttpDownloadResult {
  fileBytes: number;
  /** Size of the whole resource when the server said so. */
  totalBytes: number | undefined;
}

/**
 * One download attempt into a file, continuing its first `offset` bytes when the server can. A body
 * past `expectedSize` stops at the first byte too many (SizeMismatchError naming the URL) and the file
 * is removed; after other failures (idle timeout, deadline, lost connection) it is kept for a resume.
 */
export async function httpDownload(spec: HttpDownloadSpec): Promise<HttpDownloadResult> {
  const response = await httpGet(spec.url, {
    offset: spec.offset,
    idleTimeoutMs: spec.idleTimeoutMs,
    ...(spec.expectedSize !== undefined && { expectedSize: spec.expectedSize }),
    ...(spec.deadlineMs !== undefined && { deadlineMs: spec.deadlineMs }),
    ...(spec.deadlinePolicy !== undefined && { deadlinePolicy: spec.deadlinePolicy }),
    ...(spec.ca !== undefined && { ca: spec.ca }),
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
    const reason = explain(error, response, fileBytes);
    // Bytes past the expected size mean a wrong file: nothing of it is worth resuming.
    if (reason instanceof SizeMismatchError) await rm(spec.dest, { force: true });
    throw reason;
  }
  return { fileBytes, totalBytes };
}
