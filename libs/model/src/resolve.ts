import { deriveCluster } from './cluster-derive.ts';
import { isObject, mergeConfig } from './cluster-merge.ts';
import { validateCluster } from './cluster-semantics.ts';
import { InputProblemsError, ProblemList } from './problems.ts';
import { DEFAULT_PROFILE, DEFAULT_PROFILES_DIR, listProfiles, loadProfile } from './profile.ts';
import { checkShape } from './schemas.ts';
import type { Cluster, ClusterConfig, Problem } from './types.ts';

// A cluster in four steps: the shape of the user's config (libs/model/schemas/cluster-config.schema.json),
// the merge onto the profile's defaults (cluster-merge.ts), what the values mean together
// (cluster-semantics.ts), and the derived values (cluster-derive.ts).

export interface Resolution {
  cluster?: Cluster;
  problems: Problem[];
  warnings: Problem[];
}

export class ClusterConfigError extends InputProblemsError {
  constructor(problems: Problem[], source = 'cluster configuration') {
    super(source, problems);
  }
}

/** The profile's defaults, the user's overrides on top, validated, with every derived value filled in. */
export function resolveCluster(config: ClusterConfig = {}, profilesDir = DEFAULT_PROFILES_DIR): Resolution {
  const warnings: Problem[] = [];
  const shape = checkShape('clusterConfig', config);
  if (!isObject(config)) return { problems: shape, warnings };
  const problems = new ProblemList(shape);

  const profileName = config.profile ?? DEFAULT_PROFILE;
  const profiles = listProfiles(profilesDir);
  if (typeof profileName !== 'string' || !profiles.includes(profileName)) {
    problems.add('profile', `unknown profile ${JSON.stringify(profileName)}; allowed: ${profiles.join(', ')}`);
    return { problems: [...shape, ...problems.problems], warnings };
  }
  const profile = loadProfile(profileName, profilesDir);
  const merged = mergeConfig(profile, config);
  validateCluster(merged, profile, config, problems, warnings);
  const all = [...shape, ...problems.problems];
  if (all.length > 0) return { problems: all, warnings };
  return { cluster: deriveCluster(merged, profile), problems: all, warnings };
}

export function resolveClusterOrThrow(config: ClusterConfig = {}, profilesDir = DEFAULT_PROFILES_DIR, source?: string): Cluster {
  const resolution = resolveCluster(config, profilesDir);
  if (!resolution.cluster) throw new ClusterConfigError(resolution.problems, source);
  return resolution.cluster;
}
