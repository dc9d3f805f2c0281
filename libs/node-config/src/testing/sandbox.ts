// A throw-away node root for applying plans in tests: a directory that commands see as `/` (chroot), in
// private mount, UTS, network and IPC namespaces, so that `hostname` or a stray path can never touch the
// host. /usr is the host's /usr under an overlay, so Debian's /usr/lib/cni can be given without installing it.
//
// systemctl and networkctl are TEST DOUBLES (there is no systemd running a chroot here), and so is kubectl
// (there is no API server): scripts on the sandbox's PATH that log each call to /test-doubles/calls.log and succeed.

import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Exec } from '../types.ts';

export interface Sandbox {
  /** The directory the commands see as `/`. */
  root: string;
  exec: Exec;
  /** Calls of the systemctl/networkctl/kubectl doubles so far, one `name args...` line each. */
  doubleCalls(): Promise<string[]>;
  remove(): Promise<void>;
}

const ENTER = `
set -euo pipefail
root=$1 upper=$2 work=$3
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$upper,workdir=$work" "$root/usr"
mount --bind /dev/null "$root/dev/null"
exec chroot "$root" /usr/bin/env -i PATH=/test-doubles/bin:/usr/sbin:/usr/bin HOME=/root LC_ALL=C /usr/bin/bash -c "$4"
`;

const DOUBLE = `#!/usr/bin/bash
echo "\${0##*/} $*" >> /test-doubles/calls.log
`;

export interface SandboxOptions {
  /** Relative paths under /usr/lib/cni to create, standing in for Debian's containernetworking-plugins. */
  debianCniPlugins?: string[];
}

export const canSandbox = process.getuid?.() === 0;

export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const base = await mkdtemp(join(tmpdir(), 'boxcar-node-'));
  const root = join(base, 'root');
  const upper = join(base, 'usr-upper');
  const work = join(base, 'usr-work');
  for (const dir of [upper, work, ...['usr', 'etc', 'dev', 'tmp', 'root', 'var/lib', 'test-doubles/bin'].map((d) => join(root, d))]) {
    await mkdir(dir, { recursive: true });
  }
  await chmod(join(root, 'tmp'), 0o1777);
  for (const dir of ['bin', 'sbin', 'lib', 'lib64']) await symlink(`usr/${dir}`, join(root, dir));
  await writeFile(join(root, 'dev/null'), '');
  // bird: the system user Debian's bird2 package adds, which owns the BIRD configuration's group.
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nvagrant:x:1000:1000::/home/vagrant:/bin/bash\nbird:x:120:120::/run/bird:/usr/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nvagrant:x:1000:\nbird:x:120:\n');
  for (const name of ['systemctl', 'networkctl', 'kubectl']) {
    await writeFile(join(root, 'test-doubles/bin', name), DOUBLE, { mode: 0o755 });
  }
  if (options.debianCniPlugins) {
    await mkdir(join(upper, 'lib/cni'), { recursive: true });
    for (const plugin of options.debianCniPlugins) await writeFile(join(upper, 'lib/cni', plugin), `#!/bin/sh\n# stands in for ${plugin}\n`, { mode: 0o755 });
  }

  const exec: Exec = async (command, input) => {
    const result = await execa('unshare', ['--mount', '--uts', '--net', '--ipc', '--fork', 'bash', '-c', ENTER, 'sandbox', root, upper, work, command], {
      input: input ?? '',
      reject: false,
    });
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${command.split('\n')[0]}: ${result.stderr.trim()}`);
    return { stdout: result.stdout };
  };

  return {
    root,
    exec,
    doubleCalls: async () => (await readFile(join(root, 'test-doubles/calls.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean),
    remove: () => rm(base, { recursive: true, force: true }),
  };
}
