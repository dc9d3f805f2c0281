import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonFile } from './json-file.ts';
import { InputProblemsError, ProblemList } from './problems.ts';
import { checkShape, withoutSchemaKey } from './schemas.ts';
import type { Problem, Profile } from './types.ts';

/** `images/profiles` of this checkout (or $BOXCAR_PROFILES_DIR, which tests point at a copy): a profile is data there, not code. */
export const DEFAULT_PROFILES_DIR = process.env.BOXCAR_PROFILES_DIR || fileURLToPath(new URL('../../../images/profiles/', import.meta.url));
export const DEFAULT_PROFILE = 'xenial-2016';

/** The host-side runner of build stages (BuildStage): makes the build root and runs the stage's script in it. */
export const NATIVE_BUILD_SCRIPT = fileURLToPath(new URL('../../../images/build/native-build.sh', import.meta.url));

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

/** A profile.json that does not match libs/model/schemas/profile.schema.json or contradicts itself. */
export class ProfileError extends InputProblemsError {
  constructor(
    readonly file: string,
    problems: Problem[],
  ) {
    super(file, problems);
  }
}

export function loadProfile(name: string, profilesDir = DEFAULT_PROFILES_DIR): Profile {
  const known = listProfiles(profilesDir);
  if (!known.includes(name)) {
    throw new Error(`unknown profile "${name}"; allowed: ${known.join(', ')}`);
  }
  const file = join(profilesDir, name, 'profile.json');
  const document = readJsonFile(file);
  const shape = checkShape('profile', document);
  const problems = new ProblemList(shape);
  if (shape.every((problem) => problem.path !== '')) checkProfile(document as Profile, name, problems);
  if (shape.length + problems.problems.length > 0) throw new ProfileError(file, [...shape, ...problems.problems]);
  return withoutSchemaKey(document as Profile);
}

/** What the schema cannot say: the folder's name, and names that refer to each other. */
function checkProfile(profile: Profile, folder: string, problems: ProblemList): void {
  if (profile.name !== folder) problems.add('name', `is "${profile.name}", expected "${folder}" (the folder name)`);
  if (Array.isArray(profile.providers) && !profile.providers.includes(profile.defaultProvider)) {
    problems.add('defaultProvider', `"${profile.defaultProvider}" is not one of providers: ${profile.providers.join(', ')}`);
  }
  const versions = typeof profile.versions === 'object' && profile.versions !== null ? profile.versions : {};
  for (const [component, pins] of Object.entries(versions)) {
    if (Array.isArray(pins?.supported) && !pins.supported.includes(pins.default)) {
      problems.add(`versions.${component}.default`, `"${pins.default}" is not one of supported: ${pins.supported.join(', ')}`);
    }
  }
  for (const [role, component] of Object.entries(profile.kubeletVersionComponent ?? {})) {
    if (!Object.hasOwn(versions, component)) {
      problems.add(`kubeletVersionComponent.${role}`, `"${component}" is not a component of versions; allowed: ${Object.keys(versions).join(', ')}`);
    }
  }
}
