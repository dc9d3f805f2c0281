import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCluster } from './config-file.ts';
import { JsonSyntaxError } from './json-file.ts';
import { resolveCluster } from './resolve.ts';
import type { ClusterConfig } from './types.ts';

interface Case {
  title: string;
  config: unknown;
  path: string;
  message: RegExp;
}

const cases: Case[] = [
  { title: 'IP outside the cluster subnet', config: { nodes: [{ name: 'cni-worker1', ip: '10.0.0.5' }] }, path: 'nodes[0].ip', message: /outside the cluster subnet 192\.168\.10\.0\/24/ },
  { title: 'duplicate IPs', config: { nodes: [{ name: 'cni-worker2', ip: '192.168.10.21' }] }, path: 'nodes[0].ip', message: /duplicate address 192\.168\.10\.21/ },
  { title: 'duplicate MACs', config: { nodes: [{ name: 'cni-worker1', mac: '52:54:00:00:00:01' }, { name: 'cni-worker2', mac: '52:54:00:00:00:01' }] }, path: 'nodes[1].mac', message: /duplicate MAC/ },
  { title: 'malformed MAC', config: { nodes: [{ name: 'cni-worker1', mac: '52:54:00:zz:00:01' }] }, path: 'nodes[0].mac', message: /must look like 52:54:00:12:34:56/ },
  { title: 'multicast MAC', config: { nodes: [{ name: 'cni-worker1', mac: '01:54:00:00:00:01' }] }, path: 'nodes[0].mac', message: /multicast/ },
  { title: 'duplicate names', config: { nodes: [{ name: 'cni-worker3', ip: '192.168.10.23' }, { name: 'cni-worker3', ip: '192.168.10.24' }] }, path: 'nodes[1].name', message: /duplicate node name "cni-worker3"/ },
  { title: 'container range overlapping the service range', config: { network: { containerRange: { start: '192.168.10.100', end: '192.168.10.230' } } }, path: 'network.containerRange', message: /overlaps the service range 192\.168\.10\.224\/27/ },
  { title: 'node address inside the container range', config: { nodes: [{ name: 'cni-worker2', ip: '192.168.10.150' }] }, path: 'nodes[0].ip', message: /inside the container range/ },
  { title: 'node address inside the service range', config: { nodes: [{ name: 'cni-worker2', ip: '192.168.10.230' }] }, path: 'nodes[0].ip', message: /inside the service range/ },
  { title: 'service range outside the subnet', config: { network: { serviceCidr: '10.96.0.0/12' } }, path: 'network.serviceCidr', message: /must lie inside the cluster subnet/ },
  { title: 'DNS IP outside the subnet', config: { network: { clusterDns: '10.96.0.10' } }, path: 'network.clusterDns', message: /must lie inside the cluster subnet/ },
  { title: 'DNS IP outside the service range', config: { network: { clusterDns: '192.168.10.50' } }, path: 'network.clusterDns', message: /must lie inside the service range 192\.168\.10\.224\/27/ },
  { title: 'DNS IP equal to the kubernetes service IP', config: { network: { clusterDns: '192.168.10.225' } }, path: 'network.clusterDns', message: /kubernetes service IP/ },
  { title: 'invalid hostname', config: { nodes: [{ name: 'Worker_3' }] }, path: 'nodes[0].name', message: /invalid hostname "Worker_3"/ },
  { title: 'hostname ending with a dash', config: { nodes: [{ name: 'worker-' }] }, path: 'nodes[0].name', message: /invalid hostname/ },
  { title: 'RAM below the worker minimum', config: { nodes: [{ name: 'cni-worker1', memoryMb: 1024 }] }, path: 'nodes[0].memoryMb', message: /a worker needs at least 3072 MB/ },
  { title: 'RAM below the master minimum', config: { nodes: [{ name: 'cni-master1', memoryMb: 512 }] }, path: 'nodes[0].memoryMb', message: /a master needs at least 1024 MB/ },
  { title: 'CPUs below the worker minimum', config: { nodes: [{ name: 'cni-worker2', cpus: 1 }] }, path: 'nodes[0].cpus', message: /a worker needs at least 2 CPU/ },
  { title: 'fractional CPUs', config: { nodes: [{ name: 'cni-master1', cpus: 1.5 }] }, path: 'nodes[0].cpus', message: /must be an integer \(number of CPUs\), got 1\.5/ },
  { title: 'unknown profile', config: { profile: 'trusty' }, path: 'profile', message: /unknown profile "trusty"; allowed: lab, xenial-2016/ },
  { title: 'unknown provider', config: { provider: 'hyperv' }, path: 'provider', message: /unknown provider "hyperv"; allowed: virtualbox, libvirt, qemu/ },
  { title: 'provider the profile does not support', config: { profile: 'lab', provider: 'virtualbox' }, path: 'provider', message: /does not support provider "virtualbox"; allowed: qemu, libvirt/ },
  { title: 'unknown version', config: { versions: { 'kubernetes-master': 'v1.30.0' } }, path: 'versions.kubernetes-master', message: /unknown version "v1.30.0"; the profile pins: v1.3.0/ },
  { title: 'unknown component', config: { versions: { cilium: '1.0' } }, path: 'versions.cilium', message: /unknown component/ },
  { title: 'malformed CIDR', config: { network: { subnet: '192.168.10.0/33' } }, path: 'network.subnet', message: /must be an IPv4 CIDR/ },
  { title: 'CIDR with host bits', config: { network: { serviceCidr: '192.168.10.225/27' } }, path: 'network.serviceCidr', message: /must be an IPv4 CIDR with its network address/ },
  { title: 'malformed IP', config: { nodes: [{ name: 'cni-worker1', ip: '192.168.10.256' }] }, path: 'nodes[0].ip', message: /must be an IPv4 address/ },
  { title: 'etcd node that is not a node', config: { etcd: { node: 'cni-worker9' } }, path: 'etcd.node', message: /"cni-worker9" is not a node; allowed: cni-master1, cni-worker1, cni-worker2/ },
  { title: 'zero masters', config: { nodes: [{ name: 'cni-master1', role: 'worker' }] }, path: 'nodes', message: /exactly one node must have role "master", found 0/ },
  { title: 'several masters', config: { nodes: [{ name: 'cni-master2', role: 'master', ip: '192.168.10.11', memoryMb: 2048, cpus: 2 }] }, path: 'nodes', message: /found 2 \(cni-master1, cni-master2\)/ },
  { title: 'no worker', config: { nodes: [{ name: 'cni-worker1', role: 'master' }, { name: 'cni-worker2', role: 'master' }] }, path: 'nodes', message: /at least one node must have role "worker"/ },
  { title: 'unknown role', config: { nodes: [{ name: 'cni-worker1', role: 'etcd' }] }, path: 'nodes[0].role', message: /unknown role "etcd"; allowed: master, worker/ },
  { title: 'unknown top-level field', config: { wokers: 3 }, path: 'wokers', message: /unknown field; allowed: name, profile/ },
  { title: 'unknown network field', config: { network: { dns: '1.1.1.1' } }, path: 'network.dns', message: /unknown field/ },
  { title: 'worker count out of range', config: { workers: 0 }, path: 'workers', message: /whole number from 1 to 64/ },
  { title: 'etcd port out of range', config: { etcd: { clientPorts: [2379, 70000] } }, path: 'etcd.clientPorts[1]', message: /TCP port from 1 to 65535/ },
  { title: 'etcd client and peer port clash', config: { etcd: { peerPorts: [2379] } }, path: 'etcd.peerPorts', message: /already used by etcd.clientPorts/ },
  { title: 'container range reversed', config: { network: { containerRange: { start: '192.168.10.200', end: '192.168.10.100' } } }, path: 'network.containerRange', message: /is after end/ },
  { title: 'uplink subnet overlapping the cluster subnet', config: { network: { uplinkSubnet: '192.168.10.0/28' } }, path: 'network.uplinkSubnet', message: /overlaps the cluster subnet/ },
  { title: 'box store URL scheme', config: { boxStore: 's3://bucket/boxes' }, path: 'boxStore', message: /file:\/\/, http:\/\/ or https:\/\/ URL/ },
  { title: 'libvirt URI without a scheme', config: { profile: 'lab', provider: 'libvirt', libvirt: { uri: '/run/libvirt/libvirt-sock' } }, path: 'libvirt.uri', message: /must be a libvirt URI such as qemu:\/\/\/system/ },
  { title: 'libvirt URI with the ext transport', config: { profile: 'lab', provider: 'libvirt', libvirt: { uri: 'qemu+ext:///system?command=/tmp/x.sh' } }, path: 'libvirt.uri', message: /transport "ext" runs the program named by command=; allowed: .*\+unix, \+ssh, .*without a command= parameter/ },
  { title: 'libvirt URI with the ext transport and no command', config: { libvirt: { uri: 'xen+ext:///' } }, path: 'libvirt.uri', message: /transport "ext" runs the program named by command=/ },
  { title: 'libvirt URI with an unknown transport', config: { libvirt: { uri: 'qemu+http://host/system' } }, path: 'libvirt.uri', message: /transport "http" is not a libvirt transport boxcar allows; allowed: a URI without a transport \(qemu:\/\/\/system\)/ },
  { title: 'libvirt URI with a command parameter', config: { libvirt: { uri: 'qemu+ssh://lab-host/system?keyfile=/k&command=/bin/sh' } }, path: 'libvirt.uri', message: /the command= parameter names a program for libvirt to run; allowed:/ },
  { title: 'libvirt URI with an escaped command parameter', config: { libvirt: { uri: 'qemu+unix:///system?%43omm%61nd=/bin/sh' } }, path: 'libvirt.uri', message: /the command= parameter/ },
  { title: 'libvirt URI whose host is an ssh option', config: { libvirt: { uri: 'qemu+ssh://-oProxyCommand=x/system' } }, path: 'libvirt.uri', message: /starts with "-", which ssh reads as an option/ },
  { title: 'unknown libvirt management network mode', config: { libvirt: { managementNetworkMode: 'bridge' } }, path: 'libvirt.managementNetworkMode', message: /must be one of nat, none, route, open, got "bridge"/ },
  { title: 'unknown libvirt field', config: { libvirt: { driver: 'kvm' } }, path: 'libvirt.driver', message: /unknown field; allowed: uri, managementNetworkMode/ },
  { title: 'unknown terraform resource type', config: { terraform: { resource: 'local_exec' } }, path: 'terraform.resource', message: /must be one of terraform_data, null_resource, got "local_exec"/ },
  { title: 'unknown terraform field', config: { terraform: { backend: 's3' } }, path: 'terraform.backend', message: /unknown field; allowed: resource/ },
  { title: 'timeout given as a string: a type error first', config: { timeouts: { remoteCommandSeconds: '600' } }, path: 'timeouts.remoteCommandSeconds', message: /must be a number of seconds, got string "600"/ },
  { title: 'timeout too short to be kept', config: { timeouts: { sshReadySeconds: 5 } }, path: 'timeouts.sshReadySeconds', message: /must be a whole number of seconds from 15 to 86400, got 5/ },
  { title: 'Ready deadline too short', config: { timeouts: { kubernetesReadySeconds: 1 } }, path: 'timeouts.kubernetesReadySeconds', message: /must be a whole number of seconds from 15 to 86400, got 1/ },
  { title: 'timeouts not an object', config: { timeouts: 600 }, path: 'timeouts', message: /must be an object/ },
  { title: 'cluster name not a DNS label', config: { name: 'My Cluster' }, path: 'name', message: /lowercase DNS label/ },
  { title: 'non-boolean ipip', config: { network: { calicoPool: { ipip: 'yes' } } }, path: 'network.calicoPool.ipip', message: /must be true or false/ },
  { title: 'same API ports', config: { network: { apiInsecurePort: 443 } }, path: 'network.apiInsecurePort', message: /must differ/ },
];

describe('validation names the field and what is allowed', () => {
  it.each(cases)('$title', ({ config, path, message }) => {
    const { problems, cluster } = resolveCluster(config as ClusterConfig);
    expect(cluster).toBeUndefined();
    const atPath = problems.filter((p) => p.path === path);
    expect(atPath, `problems: ${JSON.stringify(problems)}`).not.toHaveLength(0);
    expect(atPath.map((p) => p.message).join('\n')).toMatch(message);
  });

  it('lists every problem at once', () => {
    const { problems } = resolveCluster({
      provider: 'hyperv',
      network: { clusterDns: '10.0.0.1' },
      nodes: [{ name: 'cni-worker1', ip: 'nope' }, { name: 'BAD' }],
      etcd: { node: 'ghost' },
    } as ClusterConfig);
    expect(problems.map((p) => p.path)).toEqual(
      expect.arrayContaining(['provider', 'network.clusterDns', 'nodes[0].ip', 'nodes[1].name', 'etcd.node']),
    );
  });

  it('warns, without failing, that the 2016 Calico pool contains the node subnet', () => {
    const { cluster, warnings } = resolveCluster({});
    expect(cluster).toBeDefined();
    expect(warnings).toEqual([expect.objectContaining({ path: 'network.calicoPool.cidr' })]);
  });
});

describe('user overrides', () => {
  it('another subnet moves every default address by its host offset', () => {
    const { cluster, problems } = resolveCluster({ network: { subnet: '10.20.30.0/24' } });
    expect(problems).toEqual([]);
    expect(cluster!.nodes.map((n) => n.ip)).toEqual(['10.20.30.10', '10.20.30.21', '10.20.30.22']);
    expect(cluster!.network.serviceCidr).toBe('10.20.30.224/27');
    expect(cluster!.network.clusterDns).toBe('10.20.30.240');
    expect(cluster!.network.kubernetesServiceIp).toBe('10.20.30.225');
    expect(cluster!.etcd.endpoints).toEqual(['http://10.20.30.21:2379', 'http://10.20.30.21:4001']);
    expect(cluster!.api.url).toBe('https://10.20.30.10:443');
    expect(cluster!.master.certificateSans.ip).toEqual(['10.20.30.10', '10.20.30.225']);
    expect(cluster!.workers[1]!.ipamRange).toEqual({ start: '10.20.30.150', end: '10.20.30.200' });
  });

  it('more workers are named, addressed and given IPAM ranges and uplinks', () => {
    const { cluster, problems } = resolveCluster({ workers: 4 });
    expect(problems).toEqual([]);
    expect(cluster!.workers.map((w) => [w.name, w.ip, w.uplink])).toEqual([
      ['cni-worker1', '192.168.10.21', '172.16.0.1/24'],
      ['cni-worker2', '192.168.10.22', '172.16.0.2/24'],
      ['cni-worker3', '192.168.10.23', '172.16.0.3/24'],
      ['cni-worker4', '192.168.10.24', '172.16.0.4/24'],
    ]);
    const ranges = cluster!.workers.map((w) => w.ipamRange!);
    expect(ranges[0]).toEqual({ start: '192.168.10.100', end: '192.168.10.124' });
    expect(ranges[3]).toEqual({ start: '192.168.10.175', end: '192.168.10.200' });
  });

  it('the libvirt section passes through as given, empty by default', () => {
    const socket = 'qemu+unix:///system?socket=/tmp/boxcar-libvirt-x/run/libvirt-sock';
    const { cluster, problems } = resolveCluster({ profile: 'lab', provider: 'libvirt', libvirt: { uri: socket, managementNetworkMode: 'none' } });
    expect(problems).toEqual([]);
    expect(cluster!.libvirt).toEqual({ uri: socket, managementNetworkMode: 'none' });
    expect(resolveCluster({ profile: 'lab' }).cluster!.libvirt).toEqual({});
  });

  it('accepts libvirt URIs whose transport runs no program the URI names', () => {
    for (const uri of ['qemu:///system', 'qemu:///session', 'qemu+unix:///system?socket=/run/x', 'qemu+ssh://admin@lab-host:2222/system?keyfile=/k&no_verify=1', 'qemu+libssh2://lab-host/system', 'qemu+tls://lab-host/system', 'qemu+tcp://lab-host/system', 'test:///default']) {
      expect(resolveCluster({ profile: 'lab', provider: 'libvirt', libvirt: { uri } }).problems, uri).toEqual([]);
    }
  });

  it('terraform and timeouts default to terraform_data and 600 s, and take what the config says', () => {
    expect(resolveCluster({ profile: 'lab' }).cluster!.terraform).toEqual({ resource: 'terraform_data' });
    expect(resolveCluster({ profile: 'lab' }).cluster!.timeouts).toEqual({ remoteCommandSeconds: 600, sshReadySeconds: 600, kubernetesReadySeconds: 1200 });
    const custom = resolveCluster({ profile: 'lab', terraform: { resource: 'null_resource' }, timeouts: { sshReadySeconds: 900, kubernetesReadySeconds: 1200 } });
    expect(custom.problems).toEqual([]);
    expect(custom.cluster!.terraform).toEqual({ resource: 'null_resource' });
    expect(custom.cluster!.timeouts).toEqual({ remoteCommandSeconds: 600, sshReadySeconds: 900, kubernetesReadySeconds: 1200 });
  });

  it('a config file is loaded, merged with the profile and its derived values follow', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxcar-config-'));
    const file = join(dir, 'cluster.config.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'team-a', profile: 'lab', network: { subnet: '10.9.0.0/24' }, etcd: { node: 'cni-worker2' }, nodes: [{ name: 'cni-worker3', memoryMb: 1024 }] }),
    );
    const { cluster, problems, configFile } = loadCluster({ configFile: file });
    expect(problems).toEqual([]);
    expect(configFile).toBe(file);
    expect(cluster!.name).toBe('team-a');
    expect(cluster!.provider).toBe('qemu');
    expect(cluster!.nodes.map((n) => [n.name, n.ip, n.memoryMb])).toEqual([
      ['cni-master1', '10.9.0.10', 1536],
      ['cni-worker1', '10.9.0.21', 1024],
      ['cni-worker2', '10.9.0.22', 1024],
      ['cni-worker3', '10.9.0.23', 1024],
    ]);
    expect(cluster!.etcd.endpoints).toEqual(['http://10.9.0.22:2379', 'http://10.9.0.22:4001']);
    expect(cluster!.workers.at(-1)!.certificateSans.ip).toEqual(['10.9.0.23']);
  });

  it('command-line choices win over the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxcar-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ profile: 'xenial-2016', provider: 'libvirt' }));
    expect(loadCluster({ configFile: file, overrides: { provider: 'qemu' } }).cluster!.provider).toBe('qemu');
  });

  it('a syntax error in the config file gives line and column', () => {
    const dir = mkdtempSync(join(tmpdir(), 'boxcar-config-'));
    const file = join(dir, 'cluster.config.json');
    writeFileSync(file, '{\n  "profile": "lab",\n  "workers": 3\n  "name": "x"\n}\n');
    expect(() => loadCluster({ configFile: file })).toThrow(JsonSyntaxError);
    try {
      loadCluster({ configFile: file });
    } catch (error) {
      expect((error as JsonSyntaxError).line).toBe(4);
      expect((error as JsonSyntaxError).column).toBe(3);
      expect((error as Error).message).toContain(`${file}:4:3`);
    }
  });
});
