// containerd's configuration for the lab's kubelet (CRI): containerd's defaults, and only what Kubernetes
// needs differently (and what Debian's packaged file set) written here.

import type { Cluster } from '@boxcar/model';
import { GUEST } from '../guest-layout.ts';
import { kubernetesSpec } from './kubernetes-units.ts';

const CRI = 'plugins."io.containerd.grpc.v1.cri"';

/** /etc/containerd/config.toml (config version 2, containerd 1.5+). Strings are TOML basic strings, which JSON's quoting also writes. */
export function renderContainerdConfig(cluster: Cluster): string {
  const q = (value: string) => JSON.stringify(value);
  return [
    `# Written by boxcar for cluster ${cluster.name}.`,
    'version = 2',
    '',
    `[${CRI}]`,
    // The bake imported it; containerd would otherwise pull its own default pause image, and nothing can be pulled.
    `  sandbox_image = ${q(kubernetesSpec(cluster).images.pause)}`,
    '',
    `[${CRI}.cni]`,
    `  bin_dir = ${q(GUEST.cniBinDir)}`,
    `  conf_dir = ${q(GUEST.cniConfDir)}`,
    '',
    `[${CRI}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    '',
    // The kubelet's --cgroup-driver=cgroupfs: the guests boot with cgroup v1 and both must agree.
    `[${CRI}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    '',
    // Debian's own config.toml, which this one replaces, keeps containerd out of /opt.
    '[plugins."io.containerd.internal.v1.opt"]',
    '  path = "/var/lib/containerd/opt"',
    '',
  ].join('\n');
}
