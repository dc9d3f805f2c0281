export type BoxStoreErrorCode =
  | 'invalid-argument'
  | 'not-found'
  | 'corrupt'
  | 'unsafe-image'
  | 'invalid-catalog'
  | 'invalid-layer'
  | 'read-only'
  | 'lock-timeout'
  | 'conflict'
  | 'http';

/** Every failure the store reports on purpose; `file` names the file or URL at fault when there is one. */
export class BoxStoreError extends Error {
  constructor(
    readonly code: BoxStoreErrorCode,
    message: string,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BoxStoreError';
  }
}

export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
