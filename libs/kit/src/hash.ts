import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** What a reader checks bytes against: their sha256 (lowercase hex) and how many there are. */
export interface Digest {
  sha256: string;
  size: number;
}

/** The sha256 of a string (as UTF-8) or of bytes, in lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hashes a stream as it is read, so that gigabytes never sit in memory. */
export async function sha256Stream(input: AsyncIterable<Uint8Array>): Promise<Digest> {
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
