import { Transform } from 'node:stream';

/** The source has a different size than the lock says; the download is discarded. */
export class SizeMismatchError extends Error {
  constructor(
    readonly expectedSize: number,
    /** Announced by the server; undefined when it just kept sending past the expected size. */
    readonly actualSize: number | undefined,
  ) {
    super(actualSize === undefined ? `more than the expected ${expectedSize} bytes` : `${actualSize} bytes instead of ${expectedSize}`);
    this.name = 'SizeMismatchError';
  }
}

/**
 * Passes bytes through, reporting the running file size (starting at `start`) and failing
 * once it would exceed `limit`, so that a wrong or endless response cannot fill the disk.
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
