import { describe, expect, it } from 'vitest';
import { resolveClusterOrThrow } from './resolve.ts';

// Each expectation below is one fact of shared/reference/original-env.md (the 2016 environment).
const cluster = resolveClusterOrThrow({});
const node = (name: string) => {
  const found = cluster.nodes.find((n) => n.name === name);
  if (!found) throw new Error(`no node ${name}`);
  return found;
};

describe('xenial-2016 is the default profile and reproduces the 2016 environment', () => {
  it('is chosen when the config names no profile', () => expect(cluster.profile.name).toBe('xenial-2016'));
  it('uses VirtualBox like the 2016 Vagrantfile', () => expect(cluster.provider).toBe('virtualbox'));
  it('runs Ubuntu 16.04', () => expect(cluster.versions.ubuntu).toBe('16.04'));

  describe('nodes', () => {
    it('has exactly cni-master1, cni-worker1, cni-worker2', () =>
      expect(cluster.nodes.map((n) => n.name)).toEqual(['cni-master1', 'cni-worker1', 'cni-worker2']));
    it('cni-master1 is the master', () => expect(node('cni-master1').role).toBe('master'));
    it('cni-worker1 is a worker', () => expect(node('cni-worker1').role).toBe('worker'));
    it('cni-worker2 is a worker', () => expect(node('cni-worker2').role).toBe('worker'));
    it('cni-master1 is 192.168.10.10', () => expect(node('cni-master1').ip).toBe('192.168.10.10'));
    it('cni-worker1 is 192.168.10.21', () => expect(node('cni-worker1').ip).toBe('192.168.10.21'));
    it('cni-worker2 is 192.168.10.22', () => expect(node('cni-worker2').ip).toBe('192.168.10.22'));
    it('cni-master1 has 2048 MB', () => expect(node('cni-master1').memoryMb).toBe(2048));
    it('cni-worker1 has 4096 MB', () => expect(node('cni-worker1').memoryMb).toBe(4096));
    it('cni-worker2 has 4096 MB', () => expect(node('cni-worker2').memoryMb).toBe(4096));
    it('cni-master1 has 2 vCPUs', () => expect(node('cni-master1').cpus).toBe(2));
    it('cni-worker1 has 2 vCPUs', () => expect(node('cni-worker1').cpus).toBe(2));
    it('cni-worker2 has 2 vCPUs', () => expect(node('cni-worker2').cpus).toBe(2));
    it('the etcd node is cni-worker1', () => expect(cluster.nodes.filter((n) => n.etcd).map((n) => n.name)).toEqual(['cni-worker1']));
  });

  describe('NICs', () => {
    const nics = cluster.network.nics;
    it('NIC 2 is enp0s8', () => expect(nics.cluster.name).toBe('enp0s8'));
    it('NIC 2 is on internal network cni-dev-bridge', () => expect(nics.cluster.internalNetwork).toBe('cni-dev-bridge'));
    it('NIC 2 is promiscuous allow-all', () => expect(nics.cluster.promiscuous).toBe('allow-all'));
    it('NIC 3 is enp0s9', () => expect(nics.vpp.name).toBe('enp0s9'));
    it('NIC 3 sits at PCI 0000:00:09.0', () => expect(nics.vpp.pciAddress).toBe('0000:00:09.0'));
    it('NIC 3 is an Intel 82540EM', () => expect(nics.vpp.model).toBe('82540EM'));
    it('NIC 3 is claimed by VPP as GigabitEthernet0/9/0', () => expect(nics.vpp.vppInterface).toBe('GigabitEthernet0/9/0'));
    it('NIC 3 cable is disconnected at boot', () => expect(nics.vpp.cableConnectedAtBoot).toBe(false));
    it('NIC 3 is promiscuous allow-all', () => expect(nics.vpp.promiscuous).toBe('allow-all'));
    it('NIC 1 is enp0s3 (NAT)', () => expect(nics.nat.name).toBe('enp0s3'));
  });

  describe('address plan', () => {
    it('cluster subnet is 192.168.10.0/24', () => expect(cluster.network.subnet).toBe('192.168.10.0/24'));
    it('API endpoint is https://192.168.10.10:443', () => expect(cluster.api.url).toBe('https://192.168.10.10:443'));
    it('insecure API port is 8080', () => expect(cluster.api.insecurePort).toBe(8080));
    it('service range is 192.168.10.224/27', () => expect(cluster.network.serviceCidr).toBe('192.168.10.224/27'));
    it('kubernetes service IP is 192.168.10.225', () => expect(cluster.network.kubernetesServiceIp).toBe('192.168.10.225'));
    it('cluster DNS is 192.168.10.240', () => expect(cluster.network.clusterDns).toBe('192.168.10.240'));
    it('cluster domain is cluster.local', () => expect(cluster.network.clusterDomain).toBe('cluster.local'));
    it('old ipvlan container range starts at 192.168.10.100', () => expect(cluster.network.containerRange.start).toBe('192.168.10.100'));
    it('old ipvlan container range ends at 192.168.10.200', () => expect(cluster.network.containerRange.end).toBe('192.168.10.200'));
    it('Calico pool is 192.168.0.0/16', () => expect(cluster.network.calicoPool.cidr).toBe('192.168.0.0/16'));
    it('Calico pool uses ipip', () => expect(cluster.network.calicoPool.ipip).toBe(true));
    it('Calico pool uses nat-outgoing', () => expect(cluster.network.calicoPool.natOutgoing).toBe(true));
    it('Calico etcd clients on 2379 and 4001', () => expect(cluster.etcd.clientPorts).toEqual([2379, 4001]));
    it('Calico etcd peers on 2380 and 7001', () => expect(cluster.etcd.peerPorts).toEqual([2380, 7001]));
    it('Calico etcd endpoint is http://192.168.10.21:4001', () => expect(cluster.etcd.endpoints).toContain('http://192.168.10.21:4001'));
    it('worker1 route-agent uplink is 172.16.0.1/24', () => expect(node('cni-worker1').uplink).toBe('172.16.0.1/24'));
    it('worker2 route-agent uplink is 172.16.0.2/24', () => expect(node('cni-worker2').uplink).toBe('172.16.0.2/24'));
    it('the master has no uplink', () => expect(node('cni-master1').uplink).toBeUndefined());
    it('VPP uplink is sw_if_index 1', () => expect(cluster.profile.vpp?.uplinkSwIfIndex).toBe(1));
    it('workers get 1024 hugepages', () => expect(cluster.profile.vpp?.hugepages).toBe(1024));
  });

  describe('versions', () => {
    it('master kubelet/kubectl v1.3.0', () => expect(node('cni-master1').kubeletVersion).toBe('v1.3.0'));
    it('worker kubelet v1.3.0-beta.2', () => expect(node('cni-worker1').kubeletVersion).toBe('v1.3.0-beta.2'));
    it('hyperkube v1.3.0', () => expect(cluster.versions.hyperkube).toBe('v1.3.0'));
    it("the master's etcd is 2.2.1", () => expect(cluster.versions['etcd-kubernetes']).toBe('2.2.1'));
    it("Calico's etcd is Ubuntu's 2.2.x", () => expect(cluster.versions['etcd-calico']).toMatch(/^2\.2\./));
    it('Felix is 1.4.0 with the vpp plugin', () => expect(cluster.versions.felix).toBe('1.4.0-vpp'));
    it('VPP is pinned to a 2016 release', () => expect(cluster.versions.vpp).toMatch(/^v16\./));
  });

  describe('derived values', () => {
    it('apiserver SANs include the service IP 2016 missed', () =>
      expect(node('cni-master1').certificateSans.ip).toEqual(['192.168.10.10', '192.168.10.225']));
    it('apiserver SANs include kubernetes and kubernetes.default', () =>
      expect(node('cni-master1').certificateSans.dns).toEqual(expect.arrayContaining(['kubernetes', 'kubernetes.default'])));
    it('each worker certificate carries its own IP', () =>
      expect(cluster.workers.map((w) => w.certificateSans.ip)).toEqual([['192.168.10.21'], ['192.168.10.22']]));
    it('worker IPAM ranges split the container range without overlap', () =>
      expect(cluster.workers.map((w) => w.ipamRange)).toEqual([
        { start: '192.168.10.100', end: '192.168.10.149' },
        { start: '192.168.10.150', end: '192.168.10.200' },
      ]));
    it('MACs are unique per NIC', () => {
      const macs = cluster.nodes.flatMap((n) => [n.macs.cluster, n.macs.vpp]);
      expect(new Set(macs).size).toBe(macs.length);
    });
  });
});
