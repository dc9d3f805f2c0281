import type { Cluster, ClusterNode } from '@boxcar/model';
import { GUEST, SSL_FILES } from '../guest-layout.ts';
import { execStart, renderUnit } from './systemd.ts';
import { toYaml } from './yaml.ts';

/** The master's own etcd (Kubernetes data only), reachable on the master alone. */
export const KUBE_ETCD = { clientPort: 2379, peerPort: 2380, clientUrl: 'http://127.0.0.1:2379', peerUrl: 'http://127.0.0.1:2380', dataDir: '/var/lib/etcd' };

/** The Calico etcd may run on the master only on ports the master's own etcd leaves free. */
export function checkEtcdPortsFree(cluster: Cluster): void {
  const { node, clientPorts, peerPorts } = cluster.etcd;
  if (node !== cluster.master.name) return;
  const taken = [...clientPorts, ...peerPorts].filter((port) => port === KUBE_ETCD.clientPort || port === KUBE_ETCD.peerPort);
  if (taken.length) {
    throw new Error(`etcd.node: ${node} is the master, whose Kubernetes etcd holds port(s) ${taken.join(', ')}; put the Calico etcd on a worker or change etcd.clientPorts/peerPorts`);
  }
}

/** Kubernetes 1.3's recommended admission chain, as the 2016 apiserver ran it. */
export const ADMISSION_CONTROL = ['NamespaceLifecycle', 'NamespaceExists', 'LimitRanger', 'SecurityContextDeny', 'ServiceAccount', 'ResourceQuota'];

const ssl = (file: string) => `${GUEST.sslDir}/${file}`;

/**
 * Container images of the static pods. The 2016 registry paths are gone; the images keep their 2016 names
 * as local tags, preloaded into docker by the bake (the kubelet does not pull a tag it already has).
 * `pause` is the kubelet 1.3 default infra image, which must be preloaded too.
 */
export function kubernetesImages(cluster: Cluster): { hyperkube: string; etcd: string; pause: string } {
  const version = (component: string) => {
    const value = cluster.versions[component];
    if (!value) throw new Error(`versions.${component}: required by profile "${cluster.profile.name}" for the Kubernetes static pods`);
    return value;
  };
  return {
    hyperkube: `gcr.io/google_containers/hyperkube:${version('hyperkube')}`,
    etcd: `gcr.io/google_containers/etcd:${version('etcd-kubernetes')}`,
    pause: 'gcr.io/google_containers/pause-amd64:3.0',
  };
}

export function kubeletFlags(cluster: Cluster, node: ClusterNode): string[] {
  const net = cluster.network;
  if (node.role === 'master') {
    // The master runs only its static pods and never registers: no workloads land there.
    return [
      '--register-node=false',
      '--allow-privileged=true',
      `--config=${GUEST.manifestsDir}`,
      `--cluster-dns=${net.clusterDns}`,
      `--cluster-domain=${net.clusterDomain}`,
      '--logtostderr=true',
    ];
  }
  return [
    `--api-servers=${cluster.api.url}`,
    `--kubeconfig=${GUEST.workerKubeconfig}`,
    '--network-plugin=cni',
    `--network-plugin-dir=${GUEST.cniConfDir}`,
    `--hostname-override=${node.ip}`,
    `--cluster-dns=${net.clusterDns}`,
    `--cluster-domain=${net.clusterDomain}`,
    '--allow-privileged=true',
    `--config=${GUEST.manifestsDir}`,
    `--tls-cert-file=${ssl(SSL_FILES.worker.cert)}`,
    `--tls-private-key-file=${ssl(SSL_FILES.worker.key)}`,
    '--address=0.0.0.0',
    '--logtostderr=true',
  ];
}

export function renderKubeletUnit(cluster: Cluster, node: ClusterNode): string {
  return renderUnit([
    ['Unit', [
      ['Description', `Kubernetes Kubelet (${node.role})`],
      ['Documentation', 'https://github.com/kubernetes/kubernetes'],
      ['Requires', 'docker.service'],
      ['After', 'docker.service network-online.target'],
    ]],
    ['Service', [
      ['ExecStart', execStart([GUEST.kubeletBinary, ...kubeletFlags(cluster, node)])],
      ['Restart', 'always'],
      ['RestartSec', '10'],
    ]],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
}

const hostPath = (name: string, path: string) => ({ name, hostPath: { path } });
const mount = (name: string, mountPath: string, readOnly?: true) => ({ name, mountPath, ...(readOnly ? { readOnly } : {}) });
const healthProbe = (port: number) => ({
  httpGet: { host: '127.0.0.1', path: '/healthz', port },
  initialDelaySeconds: 15,
  timeoutSeconds: 1,
});

/** The master components as one host-network static pod, like 2016. */
export function masterPod(cluster: Cluster): Record<string, unknown> {
  const images = kubernetesImages(cluster);
  const local = `http://127.0.0.1:${cluster.api.insecurePort}`;
  const { securePort, insecurePort } = cluster.api;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'kube-controller', namespace: 'kube-system' },
    spec: {
      hostNetwork: true,
      volumes: [
        hostPath('etc-kubernetes', GUEST.kubernetesDir),
        hostPath('ssl-certs-kubernetes', GUEST.sslDir),
        hostPath('ssl-certs-host', '/usr/share/ca-certificates'),
        hostPath('var-run-kubernetes', '/var/run/kubernetes'),
        hostPath('etcd-datadir', KUBE_ETCD.dataDir),
      ],
      containers: [
        {
          name: 'etcd',
          image: images.etcd,
          command: [
            '/usr/local/bin/etcd',
            `--data-dir=${KUBE_ETCD.dataDir}`,
            `--advertise-client-urls=${KUBE_ETCD.clientUrl}`,
            `--listen-client-urls=${KUBE_ETCD.clientUrl}`,
            `--listen-peer-urls=${KUBE_ETCD.peerUrl}`,
            '--name=etcd',
          ],
          volumeMounts: [mount('etcd-datadir', KUBE_ETCD.dataDir)],
        },
        {
          name: 'kube-apiserver',
          image: images.hyperkube,
          command: [
            '/hyperkube',
            'apiserver',
            '--allow-privileged=true',
            '--bind-address=0.0.0.0',
            // Without it the apiserver advertises the NAT NIC's address as the kubernetes service endpoint.
            `--advertise-address=${cluster.master.ip}`,
            `--secure-port=${securePort}`,
            `--insecure-port=${insecurePort}`,
            `--etcd-servers=${KUBE_ETCD.clientUrl}`,
            `--service-cluster-ip-range=${cluster.network.serviceCidr}`,
            `--admission-control=${ADMISSION_CONTROL.join(',')}`,
            `--service-account-key-file=${ssl(SSL_FILES.master.key)}`,
            `--tls-private-key-file=${ssl(SSL_FILES.master.key)}`,
            `--tls-cert-file=${ssl(SSL_FILES.master.cert)}`,
            `--client-ca-file=${ssl(SSL_FILES.ca)}`,
            '--logtostderr=true',
          ],
          ports: [
            { containerPort: securePort, hostPort: securePort, name: 'https' },
            { containerPort: insecurePort, hostPort: insecurePort, name: 'local' },
          ],
          volumeMounts: [
            mount('ssl-certs-kubernetes', GUEST.sslDir, true),
            mount('ssl-certs-host', '/etc/ssl/certs', true),
            mount('etc-kubernetes', GUEST.kubernetesDir),
            mount('var-run-kubernetes', '/var/run/kubernetes'),
          ],
        },
        {
          name: 'kube-controller-manager',
          image: images.hyperkube,
          command: [
            '/hyperkube',
            'controller-manager',
            `--master=${local}`,
            `--service-account-private-key-file=${ssl(SSL_FILES.master.key)}`,
            `--root-ca-file=${ssl(SSL_FILES.ca)}`,
          ],
          livenessProbe: healthProbe(10252),
          volumeMounts: [mount('ssl-certs-kubernetes', GUEST.sslDir, true), mount('ssl-certs-host', '/etc/ssl/certs', true)],
        },
        {
          name: 'kube-scheduler',
          image: images.hyperkube,
          command: ['/hyperkube', 'scheduler', `--master=${local}`],
          livenessProbe: healthProbe(10251),
        },
        {
          name: 'kube-proxy',
          image: images.hyperkube,
          command: ['/hyperkube', 'proxy', `--master=${local}`, '--proxy-mode=iptables'],
          securityContext: { privileged: true },
          volumeMounts: [mount('ssl-certs-host', '/etc/ssl/certs', true)],
        },
      ],
    },
  };
}

export function workerProxyPod(cluster: Cluster): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'kube-proxy', namespace: 'kube-system' },
    spec: {
      hostNetwork: true,
      containers: [
        {
          name: 'kube-proxy',
          image: kubernetesImages(cluster).hyperkube,
          command: ['/hyperkube', 'proxy', `--master=${cluster.api.url}`, `--kubeconfig=${GUEST.workerKubeconfig}`, '--proxy-mode=iptables'],
          securityContext: { privileged: true },
          volumeMounts: [
            mount('ssl-certs', '/etc/ssl/certs', true),
            mount('kubeconfig', GUEST.workerKubeconfig, true),
            mount('etc-kube-ssl', GUEST.sslDir, true),
          ],
        },
      ],
      volumes: [
        hostPath('ssl-certs', '/usr/share/ca-certificates'),
        hostPath('kubeconfig', GUEST.workerKubeconfig),
        hostPath('etc-kube-ssl', GUEST.sslDir),
      ],
    },
  };
}

export interface KubeconfigSpec {
  server: string;
  user: string;
  context: string;
  /** Paths on the node: the kubeconfig refers to the files, so that no private key is copied into it. */
  clientCertificate: string;
  clientKey: string;
}

export function kubeconfig(cluster: Cluster, spec: KubeconfigSpec): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster.name, cluster: { server: spec.server, 'certificate-authority': ssl(SSL_FILES.ca) } }],
    users: [{ name: spec.user, user: { 'client-certificate': spec.clientCertificate, 'client-key': spec.clientKey } }],
    contexts: [{ name: spec.context, context: { cluster: cluster.name, user: spec.user } }],
    'current-context': spec.context,
  };
}

export function workerKubeconfig(cluster: Cluster): Record<string, unknown> {
  return kubeconfig(cluster, {
    server: cluster.api.url,
    user: 'kubelet',
    context: 'kubelet-context',
    clientCertificate: ssl(SSL_FILES.worker.cert),
    clientKey: ssl(SSL_FILES.worker.key),
  });
}

export const renderMasterManifest = (cluster: Cluster): string => toYaml(masterPod(cluster));
export const renderWorkerProxyManifest = (cluster: Cluster): string => toYaml(workerProxyPod(cluster));
export const renderWorkerKubeconfig = (cluster: Cluster): string => toYaml(workerKubeconfig(cluster));
