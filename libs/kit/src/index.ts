export { atomicWriteFile, fsyncDir, tempPathIn, TEMP_PREFIX, type AtomicWriteOptions } from './atomic-write.ts';
export { sha256File, sha256Hex, sha256Stream, type Digest } from './hash.ts';
export {
  BodyTooLargeError,
  byteCounter,
  ConnectionLostError,
  DeadlineExceededError,
  deadlineFor,
  DEFAULT_DEADLINE,
  DEFAULT_MAX_TEXT_BYTES,
  httpDownload,
  httpGet,
  httpGetText,
  HttpStatusError,
  IdleTimeoutError,
  InsecureRedirectError,
  RangeMismatchError,
  redirectTarget,
  SizeMismatchError,
  type DeadlinePolicy,
  type HttpDownloadResult,
  type HttpDownloadSpec,
  type HttpGetOptions,
  type HttpGetResponse,
} from './http-get.ts';
export { pathExists, unlessMissing } from './path-exists.ts';
export { acquireLock, LockLostError, LockTimeoutError, withLock, type LockHolder, type LockOptions } from './lock.ts';
export { descendants, processAlive, processIdentity, runsHere, stopProcess, type ProcessIdentity } from './process.ts';
export { shellQuote, shellQuoteForPeople } from './shell.ts';
export { diskImageHostReferences } from './disk-image.ts';
export { ActionableError } from './actionable-error.ts';
