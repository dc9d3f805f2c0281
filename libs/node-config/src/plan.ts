import { posix } from 'node:path';
import type { Cluster, ClusterNode } from '@boxcar/model';
import { GUEST, KUBE_IDENTITIES, SSL_FILES, kubeconfigFile, sslFile } from './guest-layout.ts';
import { renderBirdConfig } from './render/bird.ts';
import { calicoBringUpCommands, renderFelixUnit, renderRouteAgentUnit, vppUplinkCommands } from './render/calico.ts';
import { adaptCniConf } from './render/cni.ts';
import { renderContainerdConfig } from './render/containerd.ts';
import { renderEtcdDefaults } from './render/etcd.ts';
import { checkEtcdPortsFree, renderKubeletUnit, renderMasterManifest, renderWorkerKubeconfig, renderWorkerProxyManifest } from './render/kubernetes.ts';
import * as lab from './render/kubernetes-units.ts';
import { clusterIpConfig, renderHostname, renderHosts } from './render/network.ts';
import { authorizedKeysFor } from './render/ssh.ts';
import type { NodePlan, PemPair, PlanFile, PlanInputs, Step } from './types.ts';

/**
 * The final configuration of one booted node, derived from the cluster model alone (plus what only the host
 * has: keys, certificates, the repository's CNI files). The profile's features decide which steps exist.
 */
export function planNode(cluster: Cluster, nodeName: string, inputs: PlanInputs): NodePlan {
  const node = cluster.nodes.find((candidate) => candidate.name === nodeName);
  if (!node) throw new Error(`node "${nodeName}" is not in cluster "${cluster.name}"; allowed: ${cluster.nodes.map((n) => n.name).join(', ')}`);
  const features = cluster.profile.features;
  const worker = node.role === 'worker';
  // The lab's Kubernetes (systemd units on containerd, pods routed by BIRD) where the profile describes one;
  // otherwise, with features.kubernetes, the 2016 way (hyperkube static pods on docker, Calico).
  const labKubernetes = cluster.kubernetes !== undefined;
  const kubernetes2016 = features.kubernetes && !labKubernetes;

  const steps: Step[] = [hostnameStep(cluster, node), clusterIpStep(cluster, node)];
  if (features.kubernetes) checkEtcdPortsFree(cluster);
  if (labKubernetes) steps.push(kubernetesPkiStep(node, inputs));
  if (kubernetes2016) {
    steps.push(certificatesStep(node, inputs));
    steps.push(worker ? kubeconfigStep(cluster) : masterManifestsStep(cluster));
    if (worker) steps.push(workerManifestsStep(cluster));
  }
  steps.push(etcdStep(cluster, node));
  if (labKubernetes) steps.push(containerdStep(cluster), birdStep(cluster, node));
  if (features.calico && node.etcd) steps.push(calicoPoolStep(cluster));
  if (worker || labKubernetes) steps.push(...optional(cniStep(cluster, node, inputs.cni)));
  if (features.vpp && worker) steps.push(vppUplinkStep(cluster));
  if (features.felix && worker) steps.push(felixStep(cluster));
  if (features.vpp && features.calico && node.uplink) steps.push(routeAgentStep(cluster, node));
  if (kubernetes2016) steps.push(kubeletStep(cluster, node));
  if (labKubernetes) steps.push(labKubeletStep(cluster, node), kubeProxyStep(cluster, node));
  // The control plane last: under emulation the apiserver's start takes the node's one vCPU for minutes,
  // and every step after it would wait for that. Its kubelet retries until the apiserver answers.
  if (labKubernetes && !worker) steps.push(...controlPlaneSteps(cluster));
  // Last: once this step is applied only the cluster key opens the node, so everything before it must be done.
  steps.push(sshKeysStep(inputs.clusterPublicKey));

  checkUniquePaths(steps);
  return { node: node.name, steps };
}

const file = (path: string, content: string | Uint8Array, mode = '0644', extra: Partial<PlanFile> = {}): PlanFile => ({ path, content, mode, ...extra });

/**
 * A step whose files configure one systemd unit: the unit is enabled and (re)started whenever one of
 * them changed. systemd reads unit files again only on a reload, which costs seconds under TCG: only
 * a step that writes a unit file asks for one.
 */
function unitStep(id: string, description: string, unit: string, files: PlanFile[]): Step {
  const reload = files.some((planned) => planned.path.startsWith(`${GUEST.systemdUnitDir}/`));
  return {
    id,
    description,
    files,
    commands: [...(reload ? ['systemctl daemon-reload'] : []), `systemctl enable ${unit}`, `systemctl restart ${unit}`],
    onlyIfChanged: true,
  };
}

function hostnameStep(cluster: Cluster, node: ClusterNode): Step {
  return {
    id: 'hostname',
    description: `hostname ${node.name}, /etc/hosts with all ${cluster.nodes.length} nodes`,
    files: [file('/etc/hostname', renderHostname(node)), file('/etc/hosts', renderHosts(cluster))],
    commands: ['hostname -F /etc/hostname'],
    onlyIfChanged: true,
  };
}

function clusterIpStep(cluster: Cluster, node: ClusterNode): Step {
  const config = clusterIpConfig(cluster, node);
  return {
    id: 'cluster-ip',
    description: `${node.ip}/${cluster.network.prefixLength} on ${cluster.network.nics.cluster.name}`,
    files: [file(config.path, config.content)],
    commands: config.apply,
    onlyIfChanged: true,
  };
}

function certificatesStep(node: ClusterNode, inputs: PlanInputs): Step {
  const pem = inputs.certificates;
  if (!pem) throw new Error(`inputs.certificates: required for ${node.name} (the profile runs Kubernetes); see ensureClusterPki`);
  const names = node.role === 'master' ? SSL_FILES.master : SSL_FILES.worker;
  return {
    id: 'certificates',
    description: `CA and ${node.role === 'master' ? 'apiserver' : 'node'} certificate in ${GUEST.sslDir}`,
    files: [
      file(`${GUEST.sslDir}/${SSL_FILES.ca}`, pem.ca),
      file(`${GUEST.sslDir}/${names.cert}`, pem.cert),
      file(`${GUEST.sslDir}/${names.key}`, pem.key, '0600', { secret: true }),
    ],
    // Running components read certificates at start only.
    commands:
      node.role === 'master'
        ? ['if systemctl is-active --quiet docker.service; then docker ps -q --filter label=io.kubernetes.container.name=kube-apiserver | xargs -r docker restart; fi']
        : ['systemctl try-restart kubelet.service'],
    onlyIfChanged: true,
  };
}

/** Every identity the node's components use, in /etc/kubernetes/ssl; the units read them at start only. */
function kubernetesPkiStep(node: ClusterNode, inputs: PlanInputs): Step {
  const pem = inputs.kubernetes;
  if (!pem) throw new Error(`inputs.kubernetes: required for ${node.name} (the cluster runs the lab's Kubernetes); see ensureClusterPki and readKubernetesPems`);
  const id = KUBE_IDENTITIES;
  const pairs: [string, PemPair][] = [[id.kubelet, pem.kubelet], [id.proxy, pem.proxy]];
  const units = ['kubelet.service', 'kube-proxy.service'];
  if (node.role === 'master') {
    const master = pem.master;
    if (!master) throw new Error(`inputs.kubernetes.master: required for ${node.name}, the master (the control plane's identities)`);
    pairs.push(
      [id.apiserver, master.apiserver],
      [id.admin, master.admin],
      [id.controllerManager, master.controllerManager],
      [id.scheduler, master.scheduler],
      [id.serviceAccount, master.serviceAccount],
    );
    units.unshift('kube-apiserver.service', 'kube-controller-manager.service', 'kube-scheduler.service');
  }
  return {
    id: 'certificates',
    description: `CA and ${pairs.map(([stem]) => stem).join(', ')} in ${GUEST.sslDir}`,
    files: [
      file(`${GUEST.sslDir}/${SSL_FILES.ca}`, pem.ca),
      ...pairs.flatMap(([stem, pair]) => [file(sslFile(stem, 'cert'), pair.cert), file(sslFile(stem, 'key'), pair.key, '0600', { secret: true })]),
    ],
    // Only what runs: on a first configure the units do not exist yet (later steps write and start them),
    // and `systemctl try-restart` fails on a unit it does not know.
    commands: [`for unit in ${units.join(' ')}; do if systemctl is-active --quiet "$unit"; then systemctl restart "$unit"; fi; done`],
    onlyIfChanged: true,
  };
}

function kubeconfigStep(cluster: Cluster): Step {
  return {
    id: 'kubeconfig',
    description: `${GUEST.workerKubeconfig} for ${cluster.api.url}`,
    files: [file(GUEST.workerKubeconfig, renderWorkerKubeconfig(cluster))],
    commands: ['systemctl try-restart kubelet.service'],
    onlyIfChanged: true,
  };
}

// The kubelet watches the manifest directory itself: static pod manifests need no command.
function masterManifestsStep(cluster: Cluster): Step {
  return {
    id: 'master-manifests',
    description: 'static pod: etcd, apiserver, controller-manager, scheduler, kube-proxy',
    files: [file(`${GUEST.manifestsDir}/master.manifest`, renderMasterManifest(cluster))],
    commands: [],
  };
}

function workerManifestsStep(cluster: Cluster): Step {
  return {
    id: 'worker-manifests',
    description: 'static pod: kube-proxy',
    files: [file(`${GUEST.manifestsDir}/kube-proxy.manifest`, renderWorkerProxyManifest(cluster))],
    commands: [],
  };
}

function etcdStep(cluster: Cluster, node: ClusterNode): Step {
  if (node.etcd) {
    const description = `Calico etcd ${cluster.versions['etcd-calico'] ?? ''} serving ${cluster.etcd.endpoints.join(', ')}`;
    return unitStep('etcd', description, 'etcd.service', [file(GUEST.etcdDefaults, renderEtcdDefaults(cluster))]);
  }
  return {
    id: 'etcd',
    description: `no etcd here (it runs on ${cluster.etcd.node})`,
    files: [],
    // Boxes are shared by role, so the etcd package may be installed on nodes that must not run it.
    // Asked first: `systemctl disable` reloads systemd every time (20 s under TCG on a busy host),
    // and a unit that is not there is neither enabled nor active.
    commands: ['if systemctl is-enabled --quiet etcd.service 2>/dev/null || systemctl is-active --quiet etcd.service; then systemctl disable --now etcd.service; fi'],
  };
}

/** The master's control plane, each component a unit restarted when its unit or kubeconfig changed. */
function controlPlaneSteps(cluster: Cluster): Step[] {
  const id = KUBE_IDENTITIES;
  const local = lab.localApiServer(cluster);
  const kubeconfigOf = (identity: typeof id.controllerManager | typeof id.scheduler | typeof id.admin) =>
    file(kubeconfigFile(identity), lab.renderKubeconfig(cluster, identity, local));
  const unit = (name: string, content: string) => file(`${GUEST.systemdUnitDir}/${name}`, content);
  return [
    unitStep('kube-etcd', `kube-etcd.service: the API server's etcd on ${GUEST.kubeEtcdDataDir}`, 'kube-etcd.service', [
      unit('kube-etcd.service', lab.renderKubeEtcdUnit(cluster)),
    ]),
    unitStep('kube-apiserver', `kube-apiserver.service on ${cluster.master.ip}:${cluster.api.securePort}`, 'kube-apiserver.service', [
      unit('kube-apiserver.service', lab.renderApiServerUnit(cluster)),
    ]),
    unitStep('kube-controller-manager', 'kube-controller-manager.service', 'kube-controller-manager.service', [
      kubeconfigOf(id.controllerManager),
      unit('kube-controller-manager.service', lab.renderControllerManagerUnit(cluster)),
    ]),
    unitStep('kube-scheduler', 'kube-scheduler.service', 'kube-scheduler.service', [
      kubeconfigOf(id.scheduler),
      unit('kube-scheduler.service', lab.renderSchedulerUnit(cluster)),
    ]),
    {
      id: 'kubectl',
      description: `${kubeconfigFile(id.admin)} (system:masters), kubectl's default as root`,
      files: [kubeconfigOf(id.admin)],
      commands: [`mkdir -p ${posix.dirname(GUEST.rootKubeconfig)} && ln -sfn ${kubeconfigFile(id.admin)} ${GUEST.rootKubeconfig}`],
    },
  ];
}

function containerdStep(cluster: Cluster): Step {
  return unitStep('containerd', `${GUEST.containerdConfig}: CRI with the local pause image, CNI from ${GUEST.cniConfDir}`, 'containerd.service', [
    file(GUEST.containerdConfig, renderContainerdConfig(cluster)),
  ]);
}

function birdStep(cluster: Cluster, node: ClusterNode): Step {
  // bird.service drops to the bird user before it reads its configuration (as Debian's package sets it up).
  return unitStep('bird', `BIRD: this node's pod range to the ${cluster.nodes.length - 1} other node(s) over iBGP, theirs into the kernel`, 'bird.service', [
    file(GUEST.birdConfig, renderBirdConfig(cluster, node), '0640', { owner: 'root:bird' }),
  ]);
}

function calicoPoolStep(cluster: Cluster): Step {
  const pool = cluster.network.calicoPool;
  return {
    id: 'calico-pool',
    description: `Calico profile, pool ${pool.cidr}${pool.ipip ? ' ipip' : ''}${pool.natOutgoing ? ' nat-outgoing' : ''}, /calico/v1/Ready`,
    files: [],
    commands: calicoBringUpCommands(cluster),
  };
}

function cniStep(cluster: Cluster, node: ClusterNode, cni: PlanInputs['cni']): Step | undefined {
  const confs = cni.conf.flatMap((conf) => optional(adaptCniConf(cluster, node, conf)));
  const files = [
    ...confs.map((conf) => file(`${GUEST.cniConfDir}/${checkName(conf.name, 'conf')}`, conf.content, conf.mode)),
    ...cni.bin.map((bin) => file(`${GUEST.cniBinDir}/${checkName(bin.name, 'bin')}`, bin.content, bin.mode)),
  ];
  const commands: string[] = [];
  if (cni.bin.length === 0 && cluster.profile.os.distribution === 'debian') commands.push(linkDebianPlugins());
  // The 2016 kubelet reads CNI configuration at start; containerd reads it again for each new pod.
  const restartKubelet = cluster.profile.features.kubernetes && !cluster.kubernetes;
  if (restartKubelet) commands.push('systemctl try-restart kubelet.service');
  if (files.length === 0 && commands.length === 0) return undefined;
  return {
    id: 'cni',
    description: `${confs.length} conf file(s) in ${GUEST.cniConfDir}; ${pluginSource(cluster, cni.bin.length)}`,
    files,
    commands,
    onlyIfChanged: restartKubelet,
  };
}

function pluginSource(cluster: Cluster, binaries: number): string {
  if (binaries > 0) return `${binaries} plugin(s) into ${GUEST.cniBinDir}`;
  return cluster.profile.os.distribution === 'debian' ? `plugins linked from ${GUEST.debianCniPluginDir} into ${GUEST.cniBinDir}` : 'no plugin binaries (cni/bin is empty)';
}

/** Debian's containernetworking-plugins, where the kubelet and the 2016 tooling look for them. */
function linkDebianPlugins(): string {
  const from = GUEST.debianCniPluginDir;
  const to = GUEST.cniBinDir;
  return [
    `[ -d ${from} ] || { echo "${from} is missing: the image needs Debian's containernetworking-plugins" >&2; exit 1; }`,
    `mkdir -p ${to}`,
    // One process for every plugin: a loop of readlink per plugin cost seconds under TCG.
    `ln -sf ${from}/* ${to}/`,
  ].join('; ');
}

function vppUplinkStep(cluster: Cluster): Step {
  const vpp = cluster.network.nics.vpp;
  return {
    id: 'vpp-uplink',
    description: `${vpp.name} (${vpp.pciAddress}) handed to VPP as ${vpp.vppInterface}`,
    files: [],
    commands: vppUplinkCommands(cluster),
  };
}

function felixStep(cluster: Cluster): Step {
  return unitStep('felix', 'calico-felix.service', 'calico-felix.service', [file(`${GUEST.systemdUnitDir}/calico-felix.service`, renderFelixUnit(cluster))]);
}

function routeAgentStep(cluster: Cluster, node: ClusterNode): Step {
  return unitStep('route-agent', `vpp-calico-route-agent.service, uplink ${node.uplink}`, 'vpp-calico-route-agent.service', [
    file(`${GUEST.systemdUnitDir}/vpp-calico-route-agent.service`, renderRouteAgentUnit(cluster, node)),
  ]);
}

function kubeletStep(cluster: Cluster, node: ClusterNode): Step {
  return unitStep('kubelet', `kubelet.service (${node.role})`, 'kubelet.service', [file(`${GUEST.systemdUnitDir}/kubelet.service`, renderKubeletUnit(cluster, node))]);
}

function labKubeletStep(cluster: Cluster, node: ClusterNode): Step {
  return unitStep('kubelet', `kubelet.service (${node.role}) on containerd, registering as ${node.name}`, 'kubelet.service', [
    file(kubeconfigFile(KUBE_IDENTITIES.kubelet), lab.renderKubeconfig(cluster, KUBE_IDENTITIES.kubelet, cluster.api.url)),
    file(`${GUEST.systemdUnitDir}/kubelet.service`, lab.renderKubeletUnit(cluster, node)),
  ]);
}

function kubeProxyStep(cluster: Cluster, node: ClusterNode): Step {
  return unitStep('kube-proxy', 'kube-proxy.service, iptables mode', 'kube-proxy.service', [
    file(kubeconfigFile(KUBE_IDENTITIES.proxy), lab.renderKubeconfig(cluster, KUBE_IDENTITIES.proxy, cluster.api.url)),
    file(`${GUEST.systemdUnitDir}/kube-proxy.service`, lab.renderKubeProxyUnit(cluster, node)),
  ]);
}

function sshKeysStep(publicKey: string): Step {
  return {
    id: 'ssh-keys',
    description: `cluster key replaces the bootstrap key for ${GUEST.sshUser}`,
    files: [file(GUEST.authorizedKeys, authorizedKeysFor(publicKey), '0600', { owner: `${GUEST.sshUser}:${GUEST.sshUser}` })],
    commands: [],
  };
}

function checkName(name: string, folder: 'conf' | 'bin'): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`cni/${folder}/${name}: file names may use letters, digits, '.', '_' and '-' only`);
  return name;
}

function checkUniquePaths(steps: Step[]): void {
  const seen = new Map<string, string>();
  for (const step of steps) {
    for (const { path } of step.files) {
      const other = seen.get(path);
      if (other) throw new Error(`${path} is written by both step "${other}" and step "${step.id}"`);
      seen.set(path, step.id);
    }
  }
}

function optional<T>(value: T | undefined): T[] {
  return value === undefined ? [] : [value];
}
