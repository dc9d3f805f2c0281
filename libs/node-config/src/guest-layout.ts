// Where things live inside the guests. These are properties of the boxes (what the images install and
// where), not of a cluster, so the model does not carry them; they are kept here, in one place.

import { BOOTSTRAP_USER } from '@boxcar/model';

export const GUEST = {
  /** The Vagrant-style login user of every box. */
  sshUser: BOOTSTRAP_USER,
  authorizedKeys: `/home/${BOOTSTRAP_USER}/.ssh/authorized_keys`,

  kubernetesDir: '/etc/kubernetes',
  sslDir: '/etc/kubernetes/ssl',
  manifestsDir: '/etc/kubernetes/manifests',
  workerKubeconfig: '/etc/kubernetes/worker-kubeconfig.yaml',
  kubeletBinary: '/usr/bin/kubelet',

  /** The lab's Kubernetes (KubernetesSpec): the bake compiles its binaries into here. */
  kubeBinDir: '/usr/local/bin',
  /** Debian's etcd-server: the Calico etcd (etcd.service) and the lab master's Kubernetes etcd (kube-etcd.service). */
  etcdBinary: '/usr/bin/etcd',
  /** Not under etcdDataRoot: Debian's etcd package owns that folder and the Calico etcd keeps its data there. */
  kubeEtcdDataDir: '/var/lib/kube-etcd',
  containerdConfig: '/etc/containerd/config.toml',
  containerdSocket: '/run/containerd/containerd.sock',
  /** Debian's bird2 reads only this file (bird.service). */
  birdConfig: '/etc/bird/bird.conf',
  /** kubectl (Debian's kubernetes-client) reads ~/.kube/config. */
  rootKubeconfig: '/root/.kube/config',

  cniConfDir: '/etc/cni/net.d',
  cniBinDir: '/opt/cni/bin',
  /** Debian's containernetworking-plugins install here; the 2016 kubelet looks in cniBinDir. */
  debianCniPluginDir: '/usr/lib/cni',

  systemdUnitDir: '/etc/systemd/system',
  networkdDir: '/etc/systemd/network',
  ifupdownDir: '/etc/network/interfaces.d',
  etcdDefaults: '/etc/default/etcd',
  etcdDataRoot: '/var/lib/etcd',

  /** Felix 1.4 installed with `setup.py install` puts its entry point here. */
  felixBinary: '/usr/local/bin/calico-felix',
  routeAgentDir: '/home/ubuntu/vpp-calico-route-agent',
  python: '/usr/bin/python',

  /** Marks steps whose files changed but whose commands have not finished yet (see applyPlan). */
  pendingDir: '/var/lib/boxcar/pending',
} as const;

/** File names in sslDir, as the 2016 provisioning named them. */
export const SSL_FILES = {
  ca: 'ca.pem',
  master: { cert: 'apiserver.pem', key: 'apiserver-key.pem' },
  worker: { cert: 'worker.pem', key: 'worker-key.pem' },
} as const;

/**
 * The lab's Kubernetes identities (KubernetesSpec): each one is <stem>.pem and <stem>-key.pem in sslDir, as
 * in the host's PKI folder, and the component that uses it reads <stem>.kubeconfig in kubernetesDir.
 * `serviceAccount` is a key pair, no certificate: sa.pem is its public key.
 */
export const KUBE_IDENTITIES = {
  kubelet: 'kubelet',
  proxy: 'kube-proxy',
  apiserver: 'apiserver',
  admin: 'admin',
  controllerManager: 'kube-controller-manager',
  scheduler: 'kube-scheduler',
  serviceAccount: 'sa',
} as const;

export const sslFile = (stem: string, part: 'cert' | 'key'): string => `${GUEST.sslDir}/${stem}${part === 'key' ? '-key' : ''}.pem`;
export const kubeconfigFile = (stem: string): string => `${GUEST.kubernetesDir}/${stem}.kubeconfig`;
