import type { Cluster, ClusterNode } from '@boxcar/model';
import { GUEST } from '../guest-layout.ts';
import type { CniFile } from '../types.ts';
import { calicoEtcd } from './calico.ts';

type Conf = Record<string, unknown>;

/**
 * A conf file of the repository's cni/conf, fitted to one node: the cluster values in it come from the model,
 * whatever the file says. Returns undefined when the profile does not run that plugin (the lab has no Calico),
 * or the node has no addresses for it.
 */
export function adaptCniConf(cluster: Cluster, node: ClusterNode, file: CniFile): CniFile | undefined {
  const conf = parseConf(file);
  const features = cluster.profile.features;
  switch (conf.type) {
    case 'ipvlan':
      if (!features.ipvlanDemo) return undefined;
      // The lab's master runs pods too (its kubelet needs a CNI conf), but has no share of the container range.
      if (!node.ipamRange && cluster.kubernetes) return undefined;
      return withContent(file, ipvlanConf(cluster, node, conf, file.name));
    case 'bridge':
      // Pods on a bridge get the node's own pod range, which BIRD routes to (KubernetesSpec.podNetwork).
      if (!node.podCidr) return undefined;
      return withContent(file, { ...conf, ipam: { ...hostLocalIpam(conf, file.name), subnet: node.podCidr } });
    case 'calico':
      if (!features.calico) return undefined;
      return withContent(file, {
        ...conf,
        etcd_endpoints: calicoEtcd(cluster).url,
        ...(isRecord(conf.kubernetes) ? { kubernetes: { ...conf.kubernetes, kubeconfig: GUEST.workerKubeconfig } } : {}),
      });
    default:
      return file;
  }
}

function ipvlanConf(cluster: Cluster, node: ClusterNode, conf: Conf, name: string): Conf {
  if (!node.ipamRange) throw new Error(`cni/conf/${name}: node ${node.name} has no share of the container range (only workers do)`);
  return {
    ...conf,
    master: cluster.network.nics.cluster.name,
    ipam: { ...hostLocalIpam(conf, name), subnet: cluster.network.subnet, rangeStart: node.ipamRange.start, rangeEnd: node.ipamRange.end },
  };
}

/** Each node hands out addresses of its own range: only host-local IPAM does that without a shared store. */
function hostLocalIpam(conf: Conf, name: string): Conf {
  if (!isRecord(conf.ipam) || conf.ipam.type !== 'host-local') {
    throw new Error(`cni/conf/${name}: ipam.type must be "host-local" (each node hands out addresses of its own range)`);
  }
  return conf.ipam;
}

function parseConf(file: CniFile): Conf {
  const text = typeof file.content === 'string' ? file.content : new TextDecoder().decode(file.content);
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (error) {
    throw new Error(`cni/conf/${file.name}: not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(conf) || typeof conf.type !== 'string') {
    throw new Error(`cni/conf/${file.name}: must be a JSON object with a "type" naming the plugin`);
  }
  return conf;
}

function withContent(file: CniFile, conf: Conf): CniFile {
  return { ...file, content: `${JSON.stringify(conf, null, 2)}\n` };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
