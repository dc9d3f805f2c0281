import { ClusterConfigError, loadCluster, type Cluster } from '@boxcar/model';
import { str, type Options, type Values } from './cli-kit.ts';

export const CLUSTER_OPTIONS: Options = {
  config: { type: 'string', short: 'c', description: 'cluster config file (default: $BOXCAR_CONFIG, else ./cluster.config.json)' } as Options[string],
  profile: { type: 'string', short: 'p', description: 'image profile: xenial-2016 (default) or lab' } as Options[string],
  provider: { type: 'string', description: 'virtualbox, libvirt or qemu (default: the profile\'s)' } as Options[string],
};

/** Ends the command with this exit code and message (no stack); report.ts maps the other errors to codes. */
export class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The resolved cluster for a command. A config file that is not JSON throws JsonSyntaxError (line and
 * column), an invalid configuration ClusterConfigError with every problem: both exit 3.
 */
export function clusterFromOptions(values: Values): Cluster {
  const loaded = loadCluster({ configFile: str(values, 'config'), overrides: { profile: str(values, 'profile'), provider: str(values, 'provider') } });
  for (const warning of loaded.warnings) process.stderr.write(`warning: ${warning.path}: ${warning.message}\n`);
  if (!loaded.cluster) throw new ClusterConfigError(loaded.problems, loaded.configFile ?? 'cluster configuration');
  return loaded.cluster;
}
