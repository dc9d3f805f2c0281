// Gets the bytes of one artifact into a `.partial` file: over HTTP with retries, backoff and
// Range resumption, or by copying from a file mirror. Verification is the caller's job.

import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { byteCounter, ConnectionLostError, DeadlineExceededError, httpDownload, HttpStatusError, IdleTimeoutError, RangeMismatchError, SizeMismatchError, unlessMissing } from '@boxcar/kit';
import { ArtifactFetchError, describeCause } from './errors.ts';
import type { ArtifactSource } from './mirror.ts';

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  /** Delay after the first failed attempt; doubles after each further one, up to maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  idleTimeoutMs: number;
  signal?: AbortSignal;
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  id: string;
  /** The attempt that just failed (1 = the first). */
  attempt: number;
  delayMs: number;
  source: string;
  cause: Error;
}

export interface AcquireJob {
  id: string;
  source: ArtifactSource;
  partialPath: string;
  /** When known (from the lock), more bytes are refused and fewer mean "not finished yet". */
  expectedSize?: number;
  onBytes: (fileBytes: number, totalBytes: number | undefined) => void;
}

export function sourceLabel(source: ArtifactSource): string {
  return source.type === 'http' ? source.url : source.path;
}

/** Fills job.partialPath; throws ArtifactFetchError, SizeMismatchError, or the abort reason. */
export async function acquire(job: AcquireJob, policy: RetryPolicy): Promise<void> {
  if (job.source.type === 'file') await copyFromMirror(job, job.source.path);
  else await downloadWithRetries(job, job.source.url, policy);
}

async function copyFromMirror(job: AcquireJob, path: string): Promise<void> {
  const stats = await unlessMissing(path, stat(path), undefined);
  if (stats === undefined || !stats.isFile()) {
    throw new ArtifactFetchError(job.id, path, 1, false, `not in the file mirror: ${path} does not exist or is not a file`);
  }
  if (job.expectedSize !== undefined && stats.size !== job.expectedSize) throw new SizeMismatchError(job.expectedSize, stats.size);
  try {
    await pipeline(
      createReadStream(path),
      byteCounter(0, job.expectedSize, (bytes) => job.onBytes(bytes, stats.size)),
      createWriteStream(job.partialPath),
    );
  } catch (error) {
    await rm(job.partialPath, { force: true });
    throw error;
  }
}

async function downloadWithRetries(job: AcquireJob, url: string, policy: RetryPolicy): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let offset = await fileSize(job.partialPath);
    if (job.expectedSize !== undefined && offset > job.expectedSize) {
      await rm(job.partialPath, { force: true });
      offset = 0;
    }
    // A partial of full size was left by a run that stopped before verifying it.
    if (job.expectedSize !== undefined && offset === job.expectedSize) return;
    try {
      const result = await httpDownload({
        url,
        dest: job.partialPath,
        offset,
        expectedSize: job.expectedSize,
        idleTimeoutMs: policy.idleTimeoutMs,
        signal: policy.signal,
        onBytes: job.onBytes,
      });
      // Servers that close the connection early without a Content-Length look like a clean end.
      const expected = job.expectedSize ?? result.totalBytes;
      if (expected === undefined || result.fileBytes === expected) return;
      throw new ConnectionLostError(url, result.fileBytes, expected);
    } catch (error) {
      if (policy.signal?.aborted) throw policy.signal.reason;
      if (error instanceof SizeMismatchError) {
        await rm(job.partialPath, { force: true });
        throw error;
      }
      const cause = error instanceof Error ? error : new Error(String(error));
      // The kept bytes cannot be continued (server lost or changed the file): start over.
      if (cause instanceof RangeMismatchError || (cause instanceof HttpStatusError && cause.status === 416)) {
        await rm(job.partialPath, { force: true });
      }
      const transient = isTransient(cause);
      if (!transient || attempt > policy.retries) {
        // Partial bytes are kept after transient failures so that the next run resumes.
        if (!transient) await rm(job.partialPath, { force: true });
        const tries = `${attempt} attempt${attempt === 1 ? '' : 's'}`;
        throw new ArtifactFetchError(job.id, url, attempt, transient, `download from ${url} failed after ${tries}: ${describeCause(cause)}`, { cause });
      }
      const delayMs = Math.min(policy.backoffMs * 2 ** (attempt - 1), policy.maxBackoffMs);
      policy.onRetry?.({ id: job.id, attempt, delayMs, source: url, cause });
      // Callers see the reason they aborted with, as they do when a request is cut off.
      await sleep(delayMs, undefined, { signal: policy.signal }).catch((error: unknown) => {
        throw policy.signal?.aborted ? policy.signal.reason : error;
      });
    }
  }
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
]);

function isTransient(error: Error): boolean {
  if (error instanceof HttpStatusError) return error.status >= 500 || [408, 416, 429].includes(error.status);
  // A deadline cut (the client's, scaled by the expected size) keeps the partial bytes: the next attempt resumes.
  if (error instanceof IdleTimeoutError || error instanceof DeadlineExceededError || error instanceof RangeMismatchError || error instanceof ConnectionLostError) return true;
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** The size of what is at `path`, 0 when nothing is; an unreadable path is an error, not an empty file. */
export async function fileSize(path: string): Promise<number> {
  const stats = await unlessMissing(path, stat(path), undefined);
  return stats?.size ?? 0;
}
