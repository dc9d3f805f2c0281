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
