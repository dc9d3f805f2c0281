import { ClusterConfigError, JsonSyntaxError, loadCluster, type Cluster } from '@boxcar/model';
import { EXIT, str, type Options, type Values } from './cli-kit.ts';

export const CLUSTER_OPTIONS: Options = {
  config: { type: 'string', short: 'c', description: 'cluster config file (default: $BOXCAR_CONFIG, else ./cluster.config.json)' } as Options[string],
  profile: { type: 'string', short: 'p', description: 'image profile: xenial-2016 (default) or lab' } as Options[string],
  provider: { type: 'string', description: 'virtualbox, libvirt or qemu (default: the profile\'s)' } as Options[string],
};

export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** The resolved cluster for a command, or an ExitError carrying every problem found. */
export function clusterFromOptions(values: Values): Cluster {
  let loaded;
  try {
    loaded = loadCluster({ configFile: str(values, 'config'), overrides: { profile: str(values, 'profile'), provider: str(values, 'provider') } });
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new ExitError(EXIT.invalidConfig, error.message);
    throw error;
  }
  for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning.path}: ${warning.message}\n`);
  if (!loaded.cluster) {
    throw new ExitError(EXIT.invalidConfig, new ClusterConfigError(loaded.problems, loaded.configFile ?? 'cluster configuration').message);
  }
  return loaded.cluster;
}
