import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ipToInt, type Cluster } from '@boxcar/model';
import { execa } from 'execa';
import { sshArgs, sshRun, type SshTarget } from '@boxcar/providers';

// The checks that say the lab cluster works, from inside its VMs (the host never sends traffic to the
// cluster's addresses): the ping matrix, Calico's etcd, a CNI ADD on each worker whose namespaces ping
// across nodes. One home for the lab e2e's steps 5-7 and for the snapshot steps that run them again.

export interface LabAccess {
  cluster: Cluster;
  /** BOXCAR_STATE_DIR of the cluster. */
  stateDir: string;
  /** The bake's bootstrap private key, for checks that it is refused. */
  bootstrapKey: string;
  /** Where the nodes' addresses exist only inside a network namespace: runs ssh's argv there. */
  wrap?: (command: string, args: readonly string[]) => [string, string[]];
}

export function labSsh(access: LabAccess) {
  const { cluster, stateDir, wrap } = access;
  /** The node's SSH target as its record says (the port changes with every boot). */
  const nodeTarget = (name: string, key: 'cluster' | 'bootstrap' = 'cluster'): SshTarget => {
    const record = JSON.parse(readFileSync(join(stateDir, cluster.name, 'nodes', `${name}.json`), 'utf8'));
    const keyFile = key === 'cluster' ? join(stateDir, cluster.name, 'ssh', 'cluster_ed25519') : access.bootstrapKey;
    return { host: record.ssh.host, port: record.ssh.port, user: record.ssh.user, keyFile };
  };
  /** A command on a node; its exit status (255: ssh itself failed, e.g. a refused key) and stdout, never thrown. */
  const attempt = async (target: SshTarget, command: string): Promise<{ exitCode: number; stdout: string; stderr: string }> => {
    if (!wrap) return sshRun(target, command, { allowFailure: true, timeoutMs: 120_000 });
    const [program, args] = wrap('ssh', [...sshArgs(target), command]);
    const result = await execa(program, args, { stdin: 'ignore', reject: false, timeout: 120_000 });
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  };
  /** A command on a node with the cluster key; its stdout without the trailing newline, or an error when it fails. */
  const on = async (node: string, command: string): Promise<string> => {
    const result = await attempt(nodeTarget(node), command);
    if (result.exitCode !== 0) throw new Error(`${node}: \`${command}\` exited ${result.exitCode}: ${result.stderr.trim()}`);
    return result.stdout.trimEnd();
  };
  return { nodeTarget, attempt, on };
}

export type LabSsh = ReturnType<typeof labSsh>;

/** Every node pings every other on the cluster network. */
export async function expectPingMatrix(cluster: Cluster, ssh: LabSsh): Promise<void> {
  const failures: string[] = [];
  for (const from of cluster.nodes) {
    for (const to of cluster.nodes.filter((n) => n !== from)) {
      const result = await ssh.attempt(ssh.nodeTarget(from.name), `ping -c 2 -W 3 ${to.ip}`);
      if (result.exitCode !== 0) failures.push(`${from.name} -> ${to.name} (${to.ip})`);
    }
  }
  expect(failures).toEqual([]);
}

/** Calico's etcd answers on every endpoint, from the master and from cni-worker2. */
export async function expectEtcdHealthy(cluster: Cluster, ssh: LabSsh): Promise<void> {
  for (const from of [cluster.master.name, 'cni-worker2']) {
    const health = await ssh.on(from, `ETCDCTL_API=3 etcdctl --endpoints=${cluster.etcd.endpoints.join(',')} endpoint health 2>&1`);
    for (const endpoint of cluster.etcd.endpoints) expect(health).toContain(`${endpoint} is healthy`);
  }
}

/**
 * A CNI ADD through each worker's installed conf into a new namespace `netns` (a name not used before on
 * this cluster: the container id is the same) gives an address in the worker's range; the namespaces
 * ping each other across the nodes.
 */
export async function expectCniAcrossNodes(cluster: Cluster, ssh: LabSsh, netns: string): Promise<void> {
  const addresses: Record<string, string> = {};
  for (const worker of cluster.workers) {
    const output = await ssh.on(
      worker.name,
      `sudo ip netns add ${netns} 2>/dev/null; sudo env CNI_COMMAND=ADD CNI_CONTAINERID=${netns} CNI_NETNS=/var/run/netns/${netns} CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin /opt/cni/bin/ipvlan < /etc/cni/net.d/ipvlan.conf`,
    );
    const result = JSON.parse(output) as { ip4?: { ip: string }; ips?: { address: string }[] };
    const address = (result.ip4?.ip ?? result.ips?.[0]?.address ?? '').split('/')[0]!;
    expect(ipToInt(address)).toBeGreaterThanOrEqual(ipToInt(worker.ipamRange!.start));
    expect(ipToInt(address)).toBeLessThanOrEqual(ipToInt(worker.ipamRange!.end));
    addresses[worker.name] = address;
  }
  expect(addresses['cni-worker1']).not.toBe(addresses['cni-worker2']);
  expect(await ssh.on('cni-worker1', `sudo ip netns exec ${netns} ping -c 2 -W 3 ${addresses['cni-worker2']}`)).toContain(' 0% packet loss');
  expect(await ssh.on('cni-worker2', `sudo ip netns exec ${netns} ping -c 2 -W 3 ${addresses['cni-worker1']}`)).toContain(' 0% packet loss');
}
