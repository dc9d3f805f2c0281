// The lab's Kubernetes (KubernetesSpec): the binaries the bake compiled, run as systemd units on containerd,
// configured by flags from the model. Each component authenticates with its own certificate (KUBE_IDENTITIES),
// which its kubeconfig names by path.

import { shellQuote } from '@boxcar/kit';
import type { Cluster, ClusterNode } from '@boxcar/model';
import { GUEST, KUBE_IDENTITIES, SSL_FILES, kubeconfigFile, sslFile } from '../guest-layout.ts';
import { KUBE_ETCD, kubeconfig } from './kubernetes.ts';
import { execStart, renderUnit, type UnitSection } from './systemd.ts';
import { toYaml } from './yaml.ts';

type KubernetesSpec = NonNullable<Cluster['kubernetes']>;
type Identity = (typeof KUBE_IDENTITIES)[keyof typeof KUBE_IDENTITIES];

const ID = KUBE_IDENTITIES;
const ca = `${GUEST.sslDir}/${SSL_FILES.ca}`;
const binary = (name: string) => `${GUEST.kubeBinDir}/${name}`;

/** The 1.20 recommended admission chain; NodeRestriction keeps each kubelet to its own node and pods. */
const ADMISSION_PLUGINS = ['NamespaceLifecycle', 'LimitRanger', 'ServiceAccount', 'ResourceQuota', 'NodeRestriction'];

/** A label a kubelet may set on itself (NodeRestriction refuses it the kubernetes.io ones), so every node carries its role. */
const ROLE_LABEL = 'boxcar.dev/role';
/** kubectl and the scheduler's conventions know the master by this label and taint, which only an admin may set. */
export const MASTER_ROLE = 'node-role.kubernetes.io/master';

export function kubernetesSpec(cluster: Cluster): KubernetesSpec {
  if (!cluster.kubernetes) throw new Error(`profile "${cluster.profile.name}": has no "kubernetes" object; it runs Kubernetes the 2016 way`);
  return cluster.kubernetes;
}

/** The API server as the master's own components reach it: the loopback, in the apiserver certificate's SANs. */
export const localApiServer = (cluster: Cluster): string => `https://127.0.0.1:${cluster.api.securePort}`;

export function renderKubeconfig(cluster: Cluster, identity: Identity, server: string): string {
  return toYaml(
    kubeconfig(cluster, {
      server,
      user: identity,
      context: `${identity}@${cluster.name}`,
      clientCertificate: sslFile(identity, 'cert'),
      clientKey: sslFile(identity, 'key'),
    }),
  );
}

function service(description: string, argv: string[], unit: [string, string][] = [], serviceExtra: [string, string][] = []): string {
  const sections: UnitSection[] = [
    ['Unit', [['Description', description], ...unit]],
    // The lab's VMs run under software emulation: a crashed or not yet reachable dependency is retried, never given up on.
    ['Service', [...serviceExtra, ['ExecStart', execStart(argv)], ['Restart', 'always'], ['RestartSec', '5']]],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ];
  return renderUnit(sections);
}

/** A second etcd beside Calico's etcd.service (a worker's): Kubernetes data only, on the master's loopback. */
export function renderKubeEtcdUnit(cluster: Cluster): string {
  const name = 'kube-etcd';
  return service(
    'etcd of the Kubernetes API server (the Calico etcd is etcd.service)',
    [
      GUEST.etcdBinary,
      `--name=${name}`,
      `--data-dir=${GUEST.kubeEtcdDataDir}`,
      `--listen-client-urls=${KUBE_ETCD.clientUrl}`,
      `--advertise-client-urls=${KUBE_ETCD.clientUrl}`,
      `--listen-peer-urls=${KUBE_ETCD.peerUrl}`,
      `--initial-advertise-peer-urls=${KUBE_ETCD.peerUrl}`,
      `--initial-cluster=${name}=${KUBE_ETCD.peerUrl}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${cluster.name}-kubernetes`,
    ],
    [],
    // etcd tells systemd when it serves, so the apiserver (After=) starts against a ready etcd.
    [['Type', 'notify']],
  );
}

export function renderApiServerUnit(cluster: Cluster): string {
  return service(
    `Kubernetes API server ${kubernetesSpec(cluster).version}`,
    [
      binary('kube-apiserver'),
      // Without it the apiserver advertises the NAT NIC's address as the kubernetes service endpoint.
      `--advertise-address=${cluster.master.ip}`,
      '--bind-address=0.0.0.0',
      `--secure-port=${cluster.api.securePort}`,
      '--insecure-port=0',
      `--etcd-servers=${KUBE_ETCD.clientUrl}`,
      `--service-cluster-ip-range=${cluster.network.serviceCidr}`,
      '--authorization-mode=Node,RBAC',
      `--enable-admission-plugins=${ADMISSION_PLUGINS.join(',')}`,
      '--allow-privileged=true',
      `--client-ca-file=${ca}`,
      `--tls-cert-file=${sslFile(ID.apiserver, 'cert')}`,
      `--tls-private-key-file=${sslFile(ID.apiserver, 'key')}`,
      // system:masters: logs, exec and port-forward go through the kubelets' API.
      `--kubelet-client-certificate=${sslFile(ID.admin, 'cert')}`,
      `--kubelet-client-key=${sslFile(ID.admin, 'key')}`,
      // The kubelets serve with their system:node certificates, whose SANs hold each node's IP.
      `--kubelet-certificate-authority=${ca}`,
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      `--service-account-key-file=${sslFile(ID.serviceAccount, 'cert')}`,
      // 1.20 refuses to start without both (the TokenRequest API signs with the same key the controller
      // manager signs the legacy tokens with).
      `--service-account-signing-key-file=${sslFile(ID.serviceAccount, 'key')}`,
      `--service-account-issuer=https://kubernetes.default.svc.${cluster.network.clusterDomain}`,
    ],
    [['Wants', 'kube-etcd.service'], ['After', 'kube-etcd.service']],
  );
}

export function renderControllerManagerUnit(cluster: Cluster): string {
  return service(`Kubernetes controller manager ${kubernetesSpec(cluster).version}`, [
    binary('kube-controller-manager'),
    `--kubeconfig=${kubeconfigFile(ID.controllerManager)}`,
    `--service-account-private-key-file=${sslFile(ID.serviceAccount, 'key')}`,
    `--root-ca-file=${ca}`,
    // Each node's pod range comes from the model (BIRD announces it), not from the controller manager.
    '--allocate-node-cidrs=false',
    '--use-service-account-credentials=true',
    '--leader-elect=false',
    // Software emulation makes status updates late: a node is not declared lost, nor its pods evicted, too early.
    '--node-monitor-grace-period=2m',
    '--pod-eviction-timeout=5m',
  ]);
}

export function renderSchedulerUnit(cluster: Cluster): string {
  return service(`Kubernetes scheduler ${kubernetesSpec(cluster).version}`, [
    binary('kube-scheduler'),
    `--kubeconfig=${kubeconfigFile(ID.scheduler)}`,
    '--leader-elect=false',
  ]);
}

export function renderKubeletUnit(cluster: Cluster, node: ClusterNode): string {
  const spec = kubernetesSpec(cluster);
  const net = cluster.network;
  return service(
    `Kubernetes kubelet ${spec.version} (${node.role})`,
    [
      binary('kubelet'),
      `--kubeconfig=${kubeconfigFile(ID.kubelet)}`,
      '--container-runtime=remote',
      `--container-runtime-endpoint=unix://${GUEST.containerdSocket}`,
      // containerd's runc runs with SystemdCgroup = false: both must manage cgroups the same way.
      '--cgroup-driver=cgroupfs',
      '--fail-swap-on=false',
      `--pod-infra-container-image=${spec.images.pause}`,
      `--node-ip=${node.ip}`,
      `--hostname-override=${node.name}`,
      `--node-labels=${ROLE_LABEL}=${node.role}`,
      ...(node.role === 'master' ? [`--register-with-taints=${MASTER_ROLE}=:NoSchedule`] : []),
      `--cluster-dns=${net.clusterDns}`,
      `--cluster-domain=${net.clusterDomain}`,
      `--client-ca-file=${ca}`,
      `--tls-cert-file=${sslFile(ID.kubelet, 'cert')}`,
      `--tls-private-key-file=${sslFile(ID.kubelet, 'key')}`,
      '--anonymous-auth=false',
      '--authorization-mode=Webhook',
      // Nothing can be pulled: the images the bake imported must never be garbage-collected.
      '--image-gc-high-threshold=100',
      '--image-gc-low-threshold=99',
      // The default thresholds (100Mi memory, 10% disk) would evict pods on the lab's small VMs.
      '--eviction-hard=memory.available<50Mi,nodefs.available<1%,imagefs.available<1%',
      '--node-status-update-frequency=20s',
    ],
    [['Wants', 'containerd.service'], ['After', 'containerd.service']],
  );
}

export function renderKubeProxyUnit(cluster: Cluster, node: ClusterNode): string {
  return service(`Kubernetes kube-proxy ${kubernetesSpec(cluster).version}`, [
    binary('kube-proxy'),
    `--kubeconfig=${kubeconfigFile(ID.proxy)}`,
    `--hostname-override=${node.name}`,
    '--proxy-mode=iptables',
    `--cluster-cidr=${cluster.network.calicoPool.cidr}`,
    // 0 leaves nf_conntrack_max as the kernel set it instead of raising it.
    '--conntrack-max-per-core=0',
  ]);
}

/**
 * kubectl's arguments that label the master as such (its ROLES column), run with the admin identity on the
 * master once its node is registered (cluster up, after every node is Ready): a kubelet may not give itself
 * that label (NodeRestriction); --overwrite makes it a no-op when the label is there.
 */
export function masterRoleArgs(node: ClusterNode): string {
  return `label --overwrite node ${shellQuote(node.name)} ${MASTER_ROLE}=`;
}
