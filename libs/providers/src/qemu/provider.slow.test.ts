import { access, mkdtemp } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveClusterOrThrow } from '@boxcar/model';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDebootstrapImage } from '../base-image.ts';
import { ensureKeyPair } from '../keys.ts';
import { sshCopy, sshRun, type SshTarget } from '../ssh.ts';
import { processesMentioning } from './processes.ts';
import { qemuDown, qemuStatus, qemuUp, type QemuNodeInfo } from './provider.ts';

// The lab base image built by images/base/debootstrap-image.sh (cached by content key under
// ~/.cache/boxcar/images, so reruns skip the build), the three lab nodes booted from it with qemuUp,
// checked over SSH, their cluster network set up by hand and pinged from inside the guests, then
// qemuDown and proof that nothing is left. The host only ever talks to 127.0.0.1.

const cluster = resolveClusterOrThrow({ profile: 'lab' });
const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
const timings: Record<string, number> = {};
let stateDir: string | undefined;

async function timed<T>(name: string, action: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await action();
  } finally {
    timings[name] = Math.round((Date.now() - started) / 100) / 10;
  }
}

afterAll(async () => {
  console.log(`timings (s): ${JSON.stringify(timings)}`);
  // A failed run must not leave VMs behind.
  if (stateDir) await qemuDown(cluster, { stateDir }).catch((error: unknown) => console.error(error));
});

describe('qemu provider: the lab cluster from the debootstrap base image', () => {
  it('boots three nodes that reach each other on the cluster network and leaves nothing when taken down', async () => {
    // A fixed key, so that the image (which holds its public half) is built once and then reused.
    const key = await ensureKeyPair(join(cacheHome, 'boxcar', 'test-keys', 'bootstrap_ed25519'), 'boxcar-providers-test');
    const image = await timed('image', () =>
      ensureDebootstrapImage({ publicKeyFile: key.publicKey, onLine: (line) => console.log(line) }),
    );
    console.log(`base image ${image.path} (${image.cached ? 'cached' : `built in ${image.seconds.toFixed(0)} s`})`);

    stateDir = await mkdtemp(join(tmpdir(), 'boxcar-lab-'));
    const up = await timed('up+ssh', () =>
      qemuUp(cluster, {
        stateDir: stateDir!,
        images: Object.fromEntries(cluster.nodes.map((node) => [node.name, image.path])),
        ssh: { user: 'vagrant', keyFile: key.privateKey, timeoutMs: 8 * 60_000 },
        onProgress: (event) => console.log(`[${event.node ?? cluster.name}] ${event.step}: ${event.message}`),
      }),
    );
    expect(up.accel.accel).toBe('tcg');
    const target = (info: QemuNodeInfo): SshTarget => ({ host: info.sshHost, port: info.sshPort, user: 'vagrant', keyFile: key.privateKey });
    const byName = new Map(up.nodes.map((info) => [info.name, info]));

    const machineIds = new Set<string>();
    await timed('checks', async () => {
      for (const node of cluster.nodes) {
        const ssh = target(byName.get(node.name)!);
        // One SSH round trip per node: each costs about a second under TCG.
        const facts = Object.fromEntries(
          (
            await sshRun(
              ssh,
              [
                'echo "links=$(ip -o link show | cut -d: -f2 | tr -d " " | sort | paste -sd,)"',
                'echo "vpp_driver=$(readlink /sys/class/net/enp0s9/device/driver)"',
                'echo "vpp_pci=$(basename "$(readlink /sys/class/net/enp0s9/device)")"',
                'echo "cluster_mac=$(cat /sys/class/net/enp0s8/address)"',
                'echo "vpp_mac=$(cat /sys/class/net/enp0s9/address)"',
                'echo "machine_id=$(cat /etc/machine-id)"',
                'echo "password=$(sudo -n passwd --status vagrant | cut -d" " -f2)"',
                'echo "sshd_passwords=$(sudo -n sshd -T | grep ^passwordauthentication | cut -d" " -f2)"',
              ].join('; '),
            )
          ).stdout
            .trim()
            .split('\n')
            .map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]),
        );
        expect(facts.links, node.name).toBe('enp0s3,enp0s8,enp0s9,lo');
        expect(facts.vpp_driver).toMatch(/\/e1000$/);
        expect(facts.vpp_pci).toBe('0000:00:09.0');
        expect(facts.cluster_mac).toBe(node.macs.cluster);
        expect(facts.vpp_mac).toBe(node.macs.vpp);
        machineIds.add(facts.machine_id!);
        // Key login only: the password is locked and sshd refuses passwords.
        expect(facts.password).toBe('L');
        expect(facts.sshd_passwords).toBe('no');

        await sshRun(ssh, `sudo -n ip addr add ${node.ip}/${cluster.network.prefixLength} dev enp0s8 && sudo -n ip link set enp0s8 up`);
      }
    });
    // Every clone made its own identity on first boot.
    expect(machineIds.size).toBe(3);

    const first = target(up.nodes[0]!);
    await sshCopy(first, Buffer.from('copied by the slow test\n'), '/etc/boxcar-copy-test', 0o640, { sudo: true });
    expect((await sshRun(first, 'sudo -n stat -c "%a %U" /etc/boxcar-copy-test && sudo -n cat /etc/boxcar-copy-test')).stdout).toBe('640 root\ncopied by the slow test\n');
    expect((await sshRun(first, 'cat', { input: 'through stdin' })).stdout).toBe('through stdin');

    // The full matrix, from inside the guests, over the vde segment.
    const failures: string[] = [];
    await timed('ping-matrix', async () => {
      for (const from of cluster.nodes) {
        for (const to of cluster.nodes) {
          if (from === to) continue;
          const result = await sshRun(target(byName.get(from.name)!), `ping -c 3 -i 0.3 -W 3 ${to.ip}`, { allowFailure: true });
          if (result.exitCode !== 0) failures.push(`${from.name} -> ${to.name} (${to.ip}): ${result.stdout.trim().split('\n').at(-2) ?? result.stderr}`);
        }
      }
    });
    expect(failures).toEqual([]);

    const status = await qemuStatus(cluster, { stateDir });
    expect(status.nodes.map((node) => node.state)).toEqual(['running', 'running', 'running']);

    const down = await timed('down', () => qemuDown(cluster, { stateDir: stateDir! }));
    expect(down.stopped.sort()).toEqual(['cni-master1', 'cni-worker1', 'cni-worker2']);
    // No qemu or vde_switch of this state dir, no socket, no overlay: the whole dir is gone.
    expect(await processesMentioning(stateDir)).toEqual([]);
    await expect(access(stateDir)).rejects.toThrow(/ENOENT/);
    stateDir = undefined;
  });
});
