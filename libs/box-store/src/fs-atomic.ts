// File-system side effects of the store: streaming sha256, verified copies, write-temp-and-rename.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { BoxStoreError, errorCode } from './errors.ts';
import { TEMP_PREFIX } from './layout.ts';

export interface Digest {
  sha256: string;
  size: number;
}

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

export function tempPathIn(dir: string, hint = ''): string {
  return join(dir, `${TEMP_PREFIX}${randomSuffix()}${hint ? `-${hint}` : ''}`);
}

export async function sha256Stream(input: AsyncIterable<Buffer>): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of input) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export function sha256File(path: string): Promise<Digest> {
  return sha256Stream(createReadStream(path));
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the rename is still atomic there, only less durable.
    if (errorCode(error) !== 'EINVAL') throw error;
  } finally {
    await handle.close();
  }
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

/** Replaces `path` with `data` through a fsynced temp file and a rename: readers see the old or the new file. */
export async function atomicWriteFile(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  const temp = tempPathIn(dir, basename(path));
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dir);
}
