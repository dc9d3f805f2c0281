import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonFile } from './json-file.ts';
import { DEFAULT_PROFILES_DIR } from './profile.ts';
import { resolveCluster, type Resolution } from './resolve.ts';
import type { ClusterConfig } from './types.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CONFIG_FILE_NAME = 'cluster.config.json';
/** The CNI configuration every node gets (README of cni/); the CLI takes $BOXCAR_CNI_DIR for a copy elsewhere (the tests', the benchmark's). */
export const DEFAULT_CNI_DIR = resolve(REPO_ROOT, 'cni');

/** `--config`, else $BOXCAR_CONFIG, else cluster.config.json at the repo root if there is one. */
export function findConfigFile(explicit?: string): string | undefined {
  if (explicit) return resolve(explicit);
  if (process.env.BOXCAR_CONFIG) return resolve(process.env.BOXCAR_CONFIG);
  const atRoot = resolve(REPO_ROOT, CONFIG_FILE_NAME);
  return existsSync(atRoot) ? atRoot : undefined;
}

export interface LoadedCluster extends Resolution {
  configFile?: string;
}

/**
 * Reads the user's config file (if any), applies command-line choices on top (profile, provider),
 * and resolves. A syntax error in the file throws JsonSyntaxError with line and column.
 */
export function loadCluster(options: { configFile?: string; overrides?: ClusterConfig; profilesDir?: string } = {}): LoadedCluster {
  const configFile = findConfigFile(options.configFile);
  if (configFile && !existsSync(configFile)) throw new Error(`config file not found: ${configFile}`);
  const fromFile = configFile ? (readJsonFile(configFile) as ClusterConfig) : {};
  const config = { ...fromFile, ...stripUndefined(options.overrides ?? {}) };
  return { ...resolveCluster(config, options.profilesDir ?? DEFAULT_PROFILES_DIR), ...(configFile ? { configFile } : {}) };
}

function stripUndefined<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}
