import { lstat, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { leftoverNamespaces, missingLibvirtPrerequisites, namespaceExists, startLibvirtNetns, type LibvirtNetns, type StartLibvirtNetnsOptions } from './libvirt-netns.ts';

// The harness itself: libvirtd and virtlogd inside a network namespace this test creates, on private
// directories, and a teardown that leaves nothing. The lab cluster's bring-up through Vagrant +
// vagrant-libvirt in such a namespace is e2e/lab-libvirt.steps.ts (part of e2e/lab.slow.test.ts).

const missing = await missingLibvirtPrerequisites();

describe.skipIf(missing.length > 0)(`libvirtd inside a network namespace (the e2e harness)${missing.length ? ` (skipped: missing ${missing.join(', ')})` : ''}`, () => {
  // Torn down again after the tests whatever happened in them (a second teardown does nothing).
  const opened: LibvirtNetns[] = [];
  const open = async (options: StartLibvirtNetnsOptions) => {
    const ns = await startLibvirtNetns(options);
    opened.push(ns);
    return ns;
  };

  afterAll(async () => {
    for (const ns of opened) await ns.teardown();
  });

  it('runs libvirtd and virtlogd inside the namespace on private directories, and tears all of it down', async () => {
    const ns = await open({ hideKvm: true });
    const { netns, root } = ns;
    expect(await leftoverNamespaces()).toContain(netns);
    const [program, args] = ns.wrap('readlink', ['/proc/self/ns/net']);
    const inside = String((await execa(program, args)).stdout).trim();
    for (const pid of [ns.libvirtdPid, ns.virtlogdPid]) {
      expect(await readlink(`/proc/${pid}/ns/net`)).toBe(inside);
      expect(await readlink(`/proc/${pid}/ns/net`)).not.toBe(await readlink('/proc/self/ns/net'));
    }
    // The daemons' /run/libvirt is <root>/run; their /dev/kvm a file that nobody may open.
    expect((await lstat(`/proc/${ns.libvirtdPid}/root/run/libvirt/libvirt-sock`)).isSocket()).toBe(true);
    expect((await lstat(join(root, 'run', 'libvirt-sock'))).isSocket()).toBe(true);
    const kvm = await lstat(`/proc/${ns.libvirtdPid}/root/dev/kvm`).catch(() => undefined);
    if (kvm) expect(kvm.isCharacterDevice()).toBe(false);
    expect((await ns.virsh(['net-list', '--all', '--name'])).trim()).toBe('');

    // A process left in the namespace (as a crashed test would leave a QEMU) is stopped by the teardown.
    const [sleepProgram, sleepArgs] = ns.wrap('sleep', ['600']);
    const stray = execa(sleepProgram, sleepArgs, { reject: false });
    await new Promise((done) => setTimeout(done, 300));
    const report = await ns.teardown();
    expect(report.killed).toEqual(expect.arrayContaining([stray.pid!]));
    expect((await stray).signal).toBe('SIGTERM');
    expect(report.netnsRemoved).toBe(true);
    expect(await namespaceExists(netns)).toBe(false);
    expect(await stat(root).then(() => true, () => false)).toBe(false);
  });
});
