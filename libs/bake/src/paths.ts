import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@boxcar/model';

/** Caches that make reruns fast live outside the repo, keyed by content. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'boxcar');
}

/** Where a layer is built: big (a VM disk), outside the repo, removed after publishing. */
export function workDir(profile: string, layer: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'work', profile, `${layer}-${key.slice(0, 12)}`);
}

/** Generated, inspectable, not committed: templates of `images generate` and the bake logs. */
export function buildDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.BOXCAR_BUILD_DIR || join(REPO_ROOT, 'build');
}

export function logFile(profile: string, layer: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(buildDir(env), 'logs', profile, `${layer}-${key.slice(0, 12)}.log`);
}

export function buildLogFile(profile: string, build: string, key: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(buildDir(env), 'logs', profile, `build-${build}-${key.slice(0, 12)}.log`);
}

export function baseImageCache(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'base-images');
}

/** Outputs of build stages, one folder per stage and key: <name>-<key>. */
export function buildStageCache(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'builds');
}
