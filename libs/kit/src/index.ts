export { atomicWriteFile, fsyncDir, tempPathIn, TEMP_PREFIX, type AtomicWriteOptions } from './atomic-write.ts';
export { sha256File, sha256Hex, sha256Stream, type Digest } from './hash.ts';
export {
  byteCounter,
  ConnectionLostError,
  httpDownload,
  httpGet,
  HttpStatusError,
  IdleTimeoutError,
  RangeMismatchError,
  SizeMismatchError,
  type HttpDownloadResult,
  type HttpDownloadSpec,
  type HttpGetOptions,
  type HttpGetResponse,
} from './http-get.ts';
export { acquireLock, LockLostError, LockTimeoutError, withLock, type LockHolder, type LockOptions } from './lock.ts';
export { processAlive } from './process.ts';
export { shellQuote } from './shell.ts';
