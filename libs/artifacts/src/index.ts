export {
  ARTIFACT_KINDS,
  ArtifactPendingError,
  isPinned,
  requirePinned,
  type LockEntry,
  type PendingArtifactEntry,
  LockValidationError,
  artifactFilename,
  loadLock,
  lockEntryDigest,
  parseLock,
  serializeLock,
  type ArtifactEntry,
  type ArtifactKind,
  type ArtifactLock,
  type LockProblem,
} from './lock.ts';
export { cacheFilePath, cachedPath, defaultCacheDir, resolveCacheDir, sha256File } from './cache.ts';
export { artifactSource, resolveMirror, type ArtifactSource } from './mirror.ts';
export { ArtifactFetchError, ArtifactIntegrityError } from './errors.ts';
export type { RetryEvent } from './download.ts';
export { fetchAll, fetchArtifact, type FetchAllOptions, type FetchOptions, type ProgressEvent } from './fetch.ts';
export { refreshLock, type RefreshChange, type RefreshResult } from './refresh.ts';
