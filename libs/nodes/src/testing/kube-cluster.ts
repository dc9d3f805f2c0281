// The lab cluster as it runs Kubernetes (features.kubernetes and a KubernetesSpec), resolved by the model
// from a copy of the lab profile: the profile's own spec where it has one, else a test spec as the lab's.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PROFILES_DIR, resolveClusterOrThrow, type Cluster } from '@boxcar/model';

type KubernetesSpec = NonNullable<Cluster['kubernetes']>;
type ClusterConfig = NonNullable<Parameters<typeof resolveClusterOrThrow>[0]>;

export const TEST_KUBERNETES: KubernetesSpec = {
  version: 'v1.20.2',
  runtime: 'containerd',
  controlPlane: 'systemd',
  podNetwork: { type: 'bird-mesh', asn: 64512, blockPrefixLength: 24, firstBlock: 100 },
  images: { pause: 'k8s.gcr.io/pause:3.2', test: 'boxcar/test:1' },
};

/** A profiles directory under `dir` holding the lab profile with Kubernetes, and the cluster resolved from it. */
export function labKubernetesCluster(dir: string, config: ClusterConfig = {}): Cluster {
  const profiles = join(dir, 'profiles');
  mkdirSync(join(profiles, 'lab'), { recursive: true });
  const profile = JSON.parse(readFileSync(join(DEFAULT_PROFILES_DIR, 'lab', 'profile.json'), 'utf8')) as Record<string, unknown> & { features: Record<string, unknown> };
  delete profile.$schema;
  writeFileSync(
    join(profiles, 'lab', 'profile.json'),
    JSON.stringify({ ...profile, features: { ...profile.features, kubernetes: true }, kubernetes: profile.kubernetes ?? TEST_KUBERNETES }, null, 2),
  );
  return resolveClusterOrThrow({ profile: 'lab', ...config }, profiles);
}
