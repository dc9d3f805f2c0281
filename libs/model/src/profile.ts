import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonFile } from './json-file.ts';
import type { Profile } from './types.ts';

/** `images/profiles` of this checkout (or $BOXCAR_PROFILES_DIR, which tests point at a copy): a profile is data there, not code. */
export const DEFAULT_PROFILES_DIR = process.env.BOXCAR_PROFILES_DIR || fileURLToPath(new URL('../../../images/profiles/', import.meta.url));
export const DEFAULT_PROFILE = 'xenial-2016';

export function profileDir(name: string, profilesDir = DEFAULT_PROFILES_DIR): string {
  return join(profilesDir, name);
}

export function listProfiles(profilesDir = DEFAULT_PROFILES_DIR): string[] {
  if (!existsSync(profilesDir)) return [];
  return readdirSync(profilesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(profilesDir, entry.name, 'profile.json')))
    .map((entry) => entry.name)
    .sort();
}

export function loadProfile(name: string, profilesDir = DEFAULT_PROFILES_DIR): Profile {
  const known = listProfiles(profilesDir);
  if (!known.includes(name)) {
    throw new Error(`unknown profile "${name}"; allowed: ${known.join(', ')}`);
  }
  const profile = readJsonFile(join(profilesDir, name, 'profile.json')) as Profile;
  if (profile.name !== name) {
    throw new Error(`${join(profilesDir, name, 'profile.json')}: name is "${profile.name}", expected "${name}" (the folder name)`);
  }
  return profile;
}
