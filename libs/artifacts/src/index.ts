// The public API of @boxcar/artifacts; what is not named here is private to the library.

// The lock: loading it, its entries (pinned or pending), their file names and the digest layer keys use.
export {
  artifactFilename,
  isPinned,
  loadLock,
  lockEntryDigest,
  requirePinned,
  type ArtifactLock,
  type LockEntry,
} from './lock.ts';

// The content-addressed cache on the host, and the mirror that replaces the upstream.
export { defaultCacheDir, resolveCacheDir } from './cache.ts';
export { resolveMirror } from './mirror.ts';

// Fetching into the cache (verified, resumed, retried), and re-pinning the lock (maintainers).
export { fetchAll, fetchArtifact } from './fetch.ts';
export { refreshLock } from './refresh.ts';
