import type { Cluster } from '@boxcar/model';
import { GUEST } from '../guest-layout.ts';

/** The Calico etcd of a cluster, as etcd's own settings. */
export interface EtcdSettings {
  name: string;
  dataDir: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  listenPeerUrls: string[];
  initialAdvertisePeerUrls: string[];
  initialCluster: string;
  initialClusterState: 'new';
  initialClusterToken: string;
}

export function etcdSettings(cluster: Cluster): EtcdSettings {
  const { node, ip, clientPorts, peerPorts, endpoints } = cluster.etcd;
  const peerUrls = peerPorts.map((port) => `http://${ip}:${port}`);
  return {
    name: node,
    // Per cluster: the package's postinst may already have started etcd with its own member name and
    // data; a fresh directory lets this configuration bootstrap a new member instead of fighting the old one.
    dataDir: `${GUEST.etcdDataRoot}/${cluster.name}`,
    listenClientUrls: [...clientPorts.map((port) => `http://${ip}:${port}`), ...clientPorts.map((port) => `http://127.0.0.1:${port}`)],
    advertiseClientUrls: endpoints,
    listenPeerUrls: peerUrls,
    initialAdvertisePeerUrls: peerUrls,
    initialCluster: peerUrls.map((url) => `${node}=${url}`).join(','),
    initialClusterState: 'new',
    initialClusterToken: cluster.name,
  };
}

/** Major version of the Calico etcd: 2 (Ubuntu xenial's package, flags) or 3 (Debian's etcd-server, ETCD_* variables). */
export function etcdMajor(cluster: Cluster): 2 | 3 {
  const version = cluster.versions['etcd-calico'];
  const major = version === undefined ? undefined : Number(version.split('.')[0]);
  if (major === 2 || major === 3) return major;
  throw new Error(`versions.etcd-calico: ${JSON.stringify(version)} is not supported; allowed: 2.x (flags) or 3.x (environment)`);
}

/** /etc/default/etcd, read by the distribution's etcd.service (EnvironmentFile, `etcd $DAEMON_ARGS`). */
export function renderEtcdDefaults(cluster: Cluster): string {
  const s = etcdSettings(cluster);
  if (etcdMajor(cluster) === 2) {
    const flags = [
      `--name=${s.name}`,
      `--data-dir=${s.dataDir}`,
      `--listen-client-urls=${s.listenClientUrls.join(',')}`,
      `--advertise-client-urls=${s.advertiseClientUrls.join(',')}`,
      `--listen-peer-urls=${s.listenPeerUrls.join(',')}`,
      `--initial-advertise-peer-urls=${s.initialAdvertisePeerUrls.join(',')}`,
      `--initial-cluster=${s.initialCluster}`,
      `--initial-cluster-state=${s.initialClusterState}`,
      `--initial-cluster-token=${s.initialClusterToken}`,
    ];
    return `# Written by boxcar for cluster ${cluster.name}.\nDAEMON_ARGS="${flags.join(' ')}"\n`;
  }
  const variables: [string, string][] = [
    ['ETCD_NAME', s.name],
    ['ETCD_DATA_DIR', s.dataDir],
    ['ETCD_LISTEN_CLIENT_URLS', s.listenClientUrls.join(',')],
    ['ETCD_ADVERTISE_CLIENT_URLS', s.advertiseClientUrls.join(',')],
    ['ETCD_LISTEN_PEER_URLS', s.listenPeerUrls.join(',')],
    ['ETCD_INITIAL_ADVERTISE_PEER_URLS', s.initialAdvertisePeerUrls.join(',')],
    ['ETCD_INITIAL_CLUSTER', s.initialCluster],
    ['ETCD_INITIAL_CLUSTER_STATE', s.initialClusterState],
    ['ETCD_INITIAL_CLUSTER_TOKEN', s.initialClusterToken],
    // etcd 3.4 serves only the v3 API by default; the 2016 clients (calicoctl 0.x, Felix 1.4, etcdctl set) speak v2.
    ['ETCD_ENABLE_V2', 'true'],
  ];
  return `# Written by boxcar for cluster ${cluster.name}.\n${variables.map(([key, value]) => `${key}="${value}"`).join('\n')}\n`;
}
