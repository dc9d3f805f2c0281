// Bytes checked against the digest a catalog or manifest records, and copies accepted only when they match.
import { createHash } from 'node:crypto';
import { open, rm, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { sha256File, type Digest } from '@boxcar/kit';
import { BoxStoreError } from './errors.ts';

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** The digest a reader expects, and the file or URL to name when the data does not match it. */
export interface Expected {
  sha256: string;
  size?: number;
  /** File or URL the bytes come from. */
  source: string;
  /** Where the expectation comes from (a catalog or manifest), for the error message. */
  authority: string;
}

export function mismatch(expected: Expected, actual: Digest): BoxStoreError | undefined {
  if (expected.size !== undefined && actual.size !== expected.size) {
    return new BoxStoreError(
      'corrupt',
      `corrupted ${expected.source}: ${actual.size} bytes, ${expected.authority} says ${expected.size} (truncated or overwritten)`,
      expected.source,
    );
  }
  if (actual.sha256 !== expected.sha256) {
    return new BoxStoreError(
      'corrupt',
      `corrupted ${expected.source}: sha256 ${actual.sha256}, ${expected.authority} says ${expected.sha256}`,
      expected.source,
    );
  }
  return undefined;
}

/**
 * Writes `input` to the new file `dest` while hashing it, fsyncs, then hashes the file back from disk:
 * the copy is accepted only when both digests agree (and match `expected`, when given). On any failure
 * `dest` is removed.
 */
export async function writeStreamVerified(input: Readable, dest: string, expected?: Expected): Promise<Digest> {
  const handle = await open(dest, 'wx').catch((error: unknown) => {
    input.destroy();
    throw error;
  });
  try {
    let streamed: Digest;
    try {
      const hash = createHash('sha256');
      let size = 0;
      // Plain writes on the handle: a FileHandle stream with autoClose off makes close() hang on Node 20.
      for await (const chunk of input as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        for (let offset = 0; offset < chunk.length; ) offset += (await handle.write(chunk, offset)).bytesWritten;
      }
      streamed = { sha256: hash.digest('hex'), size };
      await handle.sync();
    } finally {
      await handle.close();
    }
    const problem = expected ? mismatch(expected, streamed) : undefined;
    if (problem) throw problem;
    const written = await sha256File(dest);
    if (written.sha256 !== streamed.sha256 || written.size !== streamed.size) {
      throw new BoxStoreError(
        'corrupt',
        `copy to ${dest} reads back as sha256 ${written.sha256} (${written.size} bytes) but ${streamed.sha256} (${streamed.size} bytes) was written`,
        dest,
      );
    }
    return streamed;
  } catch (error) {
    input.destroy();
    await unlink(dest).catch(() => undefined);
    throw error;
  }
}
