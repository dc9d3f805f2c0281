import { shellQuote } from '@boxcar/kit';
import type { Cluster, ClusterNode } from '@boxcar/model';
import { GUEST } from '../guest-layout.ts';
import { execStart, renderUnit } from './systemd.ts';

/**
 * The address Calico's clients use. The 2016 clients (Felix, calico-cni, calicoctl) all used etcd's legacy
 * client port, 4001, which the profiles list last in etcd.clientPorts.
 */
export function calicoEtcd(cluster: Cluster): { host: string; port: number; authority: string; url: string } {
  const { ip, clientPorts } = cluster.etcd;
  const port = clientPorts.at(-1);
  if (port === undefined) throw new Error('etcd.clientPorts: empty; Calico needs a client port');
  return { host: ip, port, authority: `${ip}:${port}`, url: `http://${ip}:${port}` };
}

export function felixEnvironment(cluster: Cluster): Record<string, string> {
  return { FELIX_ETCDADDR: calicoEtcd(cluster).authority, FELIX_LOGSEVERITYSCREEN: 'DEBUG' };
}

export function renderFelixUnit(cluster: Cluster): string {
  return renderUnit([
    ['Unit', [
      ['Description', 'Calico Felix with the VPP devices plugin'],
      ['After', 'network-online.target vpp.service'],
      ['Wants', 'network-online.target vpp.service'],
    ]],
    ['Service', [
      ...Object.entries(felixEnvironment(cluster)).map(([key, value]): [string, string] => ['Environment', `${key}=${value}`]),
      ['ExecStart', GUEST.felixBinary],
      ['Restart', 'always'],
      ['RestartSec', '10'],
    ]],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
}

/** The etcd prefix the route agent watches: Calico's IPAM blocks. */
export const ROUTE_AGENT_WATCH_PREFIX = 'calico/ipam/v2/assignment/ipv4/block';

/** argv of the 2016 command `python agent.py <prefix> <swIfIndex> <uplink ip> <prefix len> http <etcd ip>`. */
export function routeAgentArgv(cluster: Cluster, node: ClusterNode): string[] {
  const swIfIndex = cluster.profile.vpp?.uplinkSwIfIndex;
  if (swIfIndex === undefined) throw new Error(`profile "${cluster.profile.name}": vpp.uplinkSwIfIndex is required for the route agent`);
  if (!node.uplink) throw new Error(`node ${node.name}: has no uplink address; only workers of VPP profiles run the route agent`);
  const [address = '', prefix = ''] = node.uplink.split('/');
  return [GUEST.python, 'agent.py', ROUTE_AGENT_WATCH_PREFIX, String(swIfIndex), address, prefix, 'http', cluster.etcd.ip];
}

export function renderRouteAgentUnit(cluster: Cluster, node: ClusterNode): string {
  return renderUnit([
    ['Unit', [
      ['Description', 'vpp-calico-route-agent: routes to the other workers\' Calico blocks through the VPP uplink'],
      ['After', 'vpp.service calico-felix.service'],
      ['Wants', 'vpp.service'],
    ]],
    ['Service', [
      ['WorkingDirectory', GUEST.routeAgentDir],
      ['ExecStart', execStart(routeAgentArgv(cluster, node))],
      // The agent exits while etcd has no IPAM subtree yet (before the first workload): retry.
      ['Restart', 'always'],
      ['RestartSec', '10'],
    ]],
    ['Install', [['WantedBy', 'multi-user.target']]],
  ]);
}

/**
 * The 2016 by-hand Calico bring-up on the etcd node, made idempotent: wait for etcd, then add the profile,
 * the pool and the Ready flag only when they are missing.
 */
export function calicoBringUpCommands(cluster: Cluster): string[] {
  const etcd = calicoEtcd(cluster);
  const etcdctl = `etcdctl --endpoints ${shellQuote(etcd.url)}`;
  const calicoctl = `ETCD_AUTHORITY=${shellQuote(etcd.authority)} calicoctl`;
  const pool = cluster.network.calicoPool;
  const poolFlags = [...(pool.ipip ? ['--ipip'] : []), ...(pool.natOutgoing ? ['--nat-outgoing'] : [])];
  const waitSeconds = 120;
  return [
    `for _ in $(seq ${waitSeconds / 2}); do ${etcdctl} cluster-health >/dev/null 2>&1 && break; sleep 2; done; ` +
      `${etcdctl} cluster-health >/dev/null || { echo "etcd at ${etcd.url} does not answer after ${waitSeconds} s" >&2; exit 1; }`,
    `grep -qw calico <<<"$(${calicoctl} profile show)" || ${calicoctl} profile add calico`,
    `grep -qF ${shellQuote(pool.cidr)} <<<"$(${calicoctl} pool show --ipv4)" || ${calicoctl} pool add ${[shellQuote(pool.cidr), ...poolFlags].join(' ')}`,
    `[ "$(${etcdctl} get /calico/v1/Ready 2>/dev/null || true)" = true ] || ${etcdctl} set /calico/v1/Ready true`,
  ];
}

export function vppUplinkCommands(cluster: Cluster): string[] {
  const nic = cluster.network.nics.vpp.name;
  // VPP refuses an interface the kernel routes through; once VPP owns the NIC the kernel device is gone.
  return [`if ip link show dev ${nic} >/dev/null 2>&1; then ip link set dev ${nic} down && systemctl restart vpp; fi`];
}
