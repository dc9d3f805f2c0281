// Errors a caller may want to tell apart: a download that failed (maybe worth running again
// later) and bytes that are not the ones the lock pins (never worth retrying blindly).

export class ArtifactFetchError extends Error {
  constructor(
    readonly id: string,
    /** The URL or file that was tried last (after mirror rewriting). */
    readonly source: string,
    readonly attempts: number,
    /** False when retrying cannot help (404, 403, missing mirror file, upstream gone). */
    readonly transient: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`artifact "${id}": ${message}`, options);
    this.name = 'ArtifactFetchError';
  }
}

export class ArtifactIntegrityError extends Error {
  constructor(
    readonly id: string,
    readonly source: string,
    readonly expected: { sha256: string; size?: number },
    /** Without sha256 when the download was cut off: size is then what the source announced, if it did. */
    readonly actual: { sha256?: string; size?: number },
  ) {
    const what =
      actual.sha256 !== undefined && (expected.size === undefined || actual.size === expected.size)
        ? `sha256 mismatch: expected ${expected.sha256}, got ${actual.sha256}`
        : `size mismatch: expected ${expected.size} bytes, got ${actual.size === undefined ? 'more than that' : `${actual.size} bytes`}${actual.sha256 ? ` (sha256 ${actual.sha256})` : ''}`;
    super(`artifact "${id}" from ${source}: ${what}; the download was discarded`);
    this.name = 'ArtifactIntegrityError';
  }
}

/** The cause chain as one line, e.g. "connect ECONNREFUSED 127.0.0.1:9 (ECONNREFUSED)". */
export function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}
