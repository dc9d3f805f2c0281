import { expect } from 'vitest';
import { execa } from 'execa';
import { cidrContainsIp, ipToInt, parseCidr, type Cluster } from '@boxcar/model';

// The Kubernetes checks of the lab end to end, run the way a CNI developer works: kubectl on the host
// through the kubeconfig `cluster up` wrote (the API reached on a port forwarded on 127.0.0.1; the host
// never sends traffic to the cluster's addresses), pods from the image the bake imported (never pulled).

export interface KubeAccess {
  cluster: Cluster;
  kubeconfig: string;
}

/** kubectl with the cluster's kubeconfig; its stdout, or an error with its stderr. */
export async function kubectl(access: KubeAccess, args: string[], input?: string): Promise<string> {
  const result = await execa('kubectl', ['--kubeconfig', access.kubeconfig, '--request-timeout=60s', ...args], { reject: false, ...(input ? { input } : {}), timeout: 360_000 });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.exitCode}: ${String(result.stderr).trim()}`);
  return String(result.stdout);
}

interface NodeJson {
  metadata: { name: string };
  status: { conditions: { type: string; status: string }[]; nodeInfo: { kubeletVersion: string } };
}

/**
 * After a restore or a resume the kubelets post their status again within seconds; the controller may
 * have marked them NotReady meanwhile (its clock jumped with theirs). Waits for that, then checks.
 */
export async function expectNodesReadyAgain(access: KubeAccess, version: string, pods: string[]): Promise<void> {
  await kubectl(access, ['wait', '--for=condition=Ready', 'node', '--all', '--timeout=300s']);
  await expectNodesReady(access, version);
  if (pods.length) await kubectl(access, ['wait', '--for=condition=Ready', ...pods.map((pod) => `pod/${pod}`), '--timeout=300s']);
}

/** Every node of the cluster is registered and Ready, each kubelet reporting `version`. */
export async function expectNodesReady(access: KubeAccess, version: string): Promise<void> {
  const nodes = (JSON.parse(await kubectl(access, ['get', 'nodes', '-o', 'json'])) as { items: NodeJson[] }).items;
  const rows = nodes.map((node) => [node.metadata.name, node.status.conditions.find((c) => c.type === 'Ready')?.status, node.status.nodeInfo.kubeletVersion]).sort();
  expect(rows).toEqual(access.cluster.nodes.map((node) => [node.name, 'True', version]).sort());
}

const labels = { app: 'e2e-web' };

/** A pod on `node` from the lab's test image; `command` is its shell command. */
function podManifest(access: KubeAccess, name: string, node: string, command: string, podLabels: Record<string, string> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: podLabels },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': node },
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: access.cluster.kubernetes!.images.test, imagePullPolicy: 'Never', command: ['sh', '-c', command] }],
    },
  };
}

/**
 * A web pod on the first worker behind a Service, a client pod on the second: both Running with an
 * address from their node's pod range; the client pings the web pod across the nodes (BIRD's routes),
 * fetches the page through the Service's cluster IP (kube-proxy); logs and exec work. `suffix` keeps the names of
 * one round apart from another's.
 */
export async function expectPodsAcrossWorkers(access: KubeAccess, suffix: string): Promise<void> {
  const [first, second] = access.cluster.workers;
  const web = `web-${suffix}`;
  const client = `client-${suffix}`;
  const service = `web-${suffix}`;
  const documents = [
    podManifest(access, web, first!.name, `echo serving from $(hostname); mkdir -p /var/www; echo hello-from-$(hostname) > /var/www/index.html; exec httpd -f -p 8080 -h /var/www`, { ...labels, round: suffix }),
    podManifest(access, client, second!.name, 'exec sleep 3600'),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: service }, spec: { selector: { ...labels, round: suffix }, ports: [{ port: 80, targetPort: 8080 }] } },
  ];
  await kubectl(access, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: documents }));
  await kubectl(access, ['wait', '--for=condition=Ready', `pod/${web}`, `pod/${client}`, '--timeout=300s']);

  const pod = async (name: string) => JSON.parse(await kubectl(access, ['get', 'pod', name, '-o', 'json'])) as { spec: { nodeName: string }; status: { podIP: string; phase: string } };
  const webPod = await pod(web);
  const clientPod = await pod(client);
  expect([webPod.spec.nodeName, webPod.status.phase, clientPod.spec.nodeName, clientPod.status.phase]).toEqual([first!.name, 'Running', second!.name, 'Running']);
  expect(cidrContainsIp(parseCidr(first!.podCidr!), ipToInt(webPod.status.podIP)), `${webPod.status.podIP} in ${first!.podCidr}`).toBe(true);
  expect(cidrContainsIp(parseCidr(second!.podCidr!), ipToInt(clientPod.status.podIP)), `${clientPod.status.podIP} in ${second!.podCidr}`).toBe(true);

  expect(await kubectl(access, ['exec', client, '--', 'ping', '-c', '2', '-W', '3', webPod.status.podIP])).toContain(' 0% packet loss');
  const serviceIp = (await kubectl(access, ['get', 'service', service, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  expect(cidrContainsIp(parseCidr(access.cluster.network.serviceCidr), ipToInt(serviceIp))).toBe(true);
  // HTTP by hand with nc: Debian's busybox-static wget dies of SIGSEGV in the container (exit 139, seen
  // here with the pod's own address as well), while nc and httpd work.
  const page = await kubectl(access, ['exec', client, '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 ${serviceIp} 80`]);
  expect(page).toMatch(/^HTTP\/1\.[01] 200 OK/);
  expect(page).toContain(`hello-from-${web}`);
  expect(await kubectl(access, ['logs', web])).toContain(`serving from ${web}`);
}
