import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

// A libvirt of its own for an end-to-end test: a network namespace that the test creates, with
// libvirtd and virtlogd running inside it. Every bridge, dnsmasq, iptables rule and guest address
// libvirt makes lives in that namespace, so nothing the guests do reaches the host's network, and
// the test may talk to the guests' addresses from inside it. The daemons also get private copies of
// the directories libvirt keeps its state in (bound over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
// /var/cache/libvirt, /var/log/libvirt in a mount namespace of their own): they neither clash with a
// host libvirtd nor leave domains, networks or pools behind once the directory is removed.

/** The directories a privileged libvirtd and virtlogd use, and their names under the private root. */
export const PRIVATE_DIRS: readonly { path: string; name: string }[] = [
  { path: '/etc/libvirt', name: 'etc' },
  { path: '/run/libvirt', name: 'run' },
  { path: '/var/lib/libvirt', name: 'lib' },
  { path: '/var/cache/libvirt', name: 'cache' },
  { path: '/var/log/libvirt', name: 'log' },
];

export const NETNS_PREFIX = 'boxcar-e2e-';

export interface LibvirtNetns {
  /** The network namespace (`ip netns list` shows it). */
  netns: string;
  /** The private root; `<root>/run` is the daemons' /run/libvirt. */
  root: string;
  /** The libvirt URI of this libvirtd, usable from any namespace (a unix socket is a file). */
  uri: string;
  libvirtdPid: number;
  virtlogdPid: number;
  /** A command line that runs `command args` inside the namespace. */
  wrap(command: string, args: readonly string[]): [string, string[]];
  /** Runs `virsh -c <uri> args` and returns its stdout; throws with stderr on failure. */
  virsh(args: readonly string[]): Promise<string>;
  /** Destroys what libvirt still runs, stops every process in the namespace, deletes it and the root. */
  teardown(): Promise<TeardownReport>;
}

export interface TeardownReport {
  /** Processes that were still in the namespace after libvirt's own cleanup and got SIGTERM/SIGKILL. */
  killed: number[];
  netnsRemoved: boolean;
  seconds: number;
}

export interface StartLibvirtNetnsOptions {
  /**
   * Hide /dev/kvm from the daemons (pass true where detectAccelerator chose TCG). On a host whose
   * /dev/kvm opens for root but not for libvirt's QEMU user, libvirt probes QEMU with KVM, then finds
   * KVM "not available now" for that user, throws its capabilities away and probes again: every
   * domain definition took ~48 s here instead of ~40 ms. A file nobody may open, bound over
   * /dev/kvm in the daemons' mount namespace, makes the probe and the check agree on "no KVM".
   */
  hideKvm?: boolean;
  /** Parent of the private root; default the OS temp dir (the socket path must stay under 108 bytes). */
  parentDir?: string;
  /** How long to wait for libvirtd to answer. */
  readyTimeoutMs?: number;
}

/** What a Vagrant + libvirt run in a namespace needs on this host, missing ones named (empty: all there). */
export async function missingLibvirtPrerequisites(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (ip netns, mount, libvirtd)');
  for (const tool of ['vagrant', 'libvirtd', 'virtlogd', 'virsh', 'dnsmasq', 'unshare', 'qemu-system-x86_64', 'qemu-img']) {
    if ((await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode !== 0) missing.push(tool);
  }
  const plugins = await execa('vagrant', ['plugin', 'list'], { reject: false, env: { VAGRANT_CHECKPOINT_DISABLE: '1' } });
  if (!String(plugins.stdout).includes('vagrant-libvirt')) missing.push('vagrant-libvirt');
  return missing;
}

/** `ip netns exec <netns> command args` (pure). */
export function netnsCommand(netns: string, command: string, args: readonly string[]): [string, string[]] {
  if (!/^[\w.-]{1,64}$/.test(netns)) throw new Error(`netns: must be 1-64 characters of letters, digits and _.-, got ${JSON.stringify(netns)}`);
  return ['ip', ['netns', 'exec', netns, command, ...args]];
}

/** The URI of a privileged libvirtd whose /run/libvirt is `runDir` (pure). */
export function libvirtUri(runDir: string): string {
  const socket = join(runDir, 'libvirt-sock');
  if (Buffer.byteLength(socket) > 107) throw new Error(`libvirt socket path ${socket} is longer than a unix socket path may be (107 bytes)`);
  return `qemu+unix:///system?socket=${socket}`;
}

// Runs in a fresh mount namespace (unshare --mount): binds the private dirs over libvirt's (and the
// unopenable file over /dev/kvm when asked), then starts virtlogd (libvirtd hands it the QEMU logs) and
// libvirtd, both daemonizing. Arguments: root, "hide-kvm" or "keep-kvm", then path/name pairs.
const START_DAEMONS = `set -euo pipefail
root="$1"
kvm="$2"
shift 2
while [[ $# -gt 0 ]]; do
  mkdir -p "$1"
  mount --bind "$root/$2" "$1"
  shift 2
done
if [[ "$kvm" == hide-kvm && -e /dev/kvm ]]; then
  mount --bind "$root/no-kvm" /dev/kvm
fi
virtlogd -d -p "$root/virtlogd.pid"
libvirtd -d -p "$root/libvirtd.pid"
`;

/** Creates the namespace, the private root and the two daemons, and waits until libvirtd answers. */
export async function startLibvirtNetns(options: StartLibvirtNetnsOptions = {}): Promise<LibvirtNetns> {
  if (process.getuid?.() !== 0) throw new Error('startLibvirtNetns: must run as root (ip netns, mount, libvirtd)');
  for (const tool of ['libvirtd', 'virtlogd', 'virsh', 'unshare']) {
    const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (found.exitCode !== 0) {
      throw new Error(`startLibvirtNetns: ${tool} is missing; install the Debian packages libvirt-daemon-system libvirt-clients dnsmasq-base util-linux`);
    }
  }
  const netns = `${NETNS_PREFIX}${randomBytes(4).toString('hex')}`;
  const root = await mkdtemp(join(options.parentDir ?? tmpdir(), 'boxcar-libvirt-'));
  const uri = libvirtUri(join(root, 'run'));
  await execa('ip', ['netns', 'add', netns]);

  let libvirtdPid = 0;
  let virtlogdPid = 0;
  const wrap = (command: string, args: readonly string[]) => netnsCommand(netns, command, args);
  const virsh = async (args: readonly string[]) => {
    const result = await execa('virsh', ['-c', uri, ...args], { reject: false, stdin: 'ignore' });
    if (result.exitCode !== 0) throw new Error(`virsh ${args.join(' ')}: ${String(result.stderr).trim() || `exit ${result.exitCode}`}`);
    return String(result.stdout);
  };
  const teardown = () => teardownNamespace(netns, root, virsh);

  try {
    await run(wrap('ip', ['link', 'set', 'lo', 'up']));
    await preparePrivateRoot(root, options.hideKvm ?? false);
    const pairs = PRIVATE_DIRS.flatMap((dir) => [dir.path, dir.name]);
    const kvm = options.hideKvm ? 'hide-kvm' : 'keep-kvm';
    await run(wrap('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', START_DAEMONS, 'start-daemons', root, kvm, ...pairs]));
    libvirtdPid = await readPid(join(root, 'libvirtd.pid'));
    virtlogdPid = await readPid(join(root, 'virtlogd.pid'));
    await waitUntil(async () => (await virsh(['version']), true), options.readyTimeoutMs ?? 30_000, 'libvirtd to answer on its socket');
  } catch (error) {
    await teardown().catch(() => undefined);
    throw error;
  }
  return { netns, root, uri, libvirtdPid, virtlogdPid, wrap, virsh, teardown };
}

/**
 * The daemons' configuration is the host's (so that packaging defaults such as the QEMU user apply)
 * without the networks the package marks for autostart: the `default` NAT network has no business in a
 * test namespace.
 */
async function preparePrivateRoot(root: string, hideKvm: boolean): Promise<void> {
  for (const dir of PRIVATE_DIRS) await mkdir(join(root, dir.name), { recursive: true, mode: 0o755 });
  await cp('/etc/libvirt', join(root, 'etc'), { recursive: true, verbatimSymlinks: true });
  await rm(join(root, 'etc', 'qemu', 'networks', 'autostart'), { recursive: true, force: true });
  await rm(join(root, 'etc', 'qemu', 'networks', 'default.xml'), { force: true });
  if (hideKvm) {
    await writeFile(join(root, 'no-kvm'), '', { mode: 0o000 });
    // libvirt gives each QEMU a private /dev and moves the mounts found under /dev into it; a file
    // bound over /dev/kvm cannot be moved ("Invalid argument"), so QEMU keeps the daemons' /dev.
    await appendFile(join(root, 'etc', 'qemu.conf'), '\n# boxcar e2e harness: /dev/kvm is hidden by a bind mount\nnamespaces = []\n');
  }
}

async function teardownNamespace(netns: string, root: string, virsh: (args: readonly string[]) => Promise<string>): Promise<TeardownReport> {
  const started = Date.now();
  // libvirt first, while it runs: it stops QEMU and dnsmasq cleanly. Each step may fail when the
  // daemon is already gone; what is left is killed below.
  const domains = (await virsh(['list', '--all', '--name']).catch(() => '')).split('\n').map((line) => line.trim()).filter(Boolean);
  for (const domain of domains) {
    await virsh(['destroy', domain]).catch(() => undefined);
    await virsh(['undefine', domain, '--remove-all-storage']).catch(() => undefined);
  }
  const networks = (await virsh(['net-list', '--all', '--name']).catch(() => '')).split('\n').map((line) => line.trim()).filter(Boolean);
  for (const network of networks) await virsh(['net-destroy', network]).catch(() => undefined);

  // Every process in the namespace was started by this harness (the daemons and their children).
  const killed = await stopNamespaceProcesses(netns);
  let netnsRemoved = false;
  if (await namespaceExists(netns)) {
    const result = await execa('ip', ['netns', 'delete', netns], { reject: false });
    netnsRemoved = result.exitCode === 0;
  }
  await rm(root, { recursive: true, force: true });
  return { killed, netnsRemoved, seconds: (Date.now() - started) / 1000 };
}

async function stopNamespaceProcesses(netns: string): Promise<number[]> {
  const pids = async () => {
    if (!(await namespaceExists(netns))) return [];
    const result = await execa('ip', ['netns', 'pids', netns], { reject: false });
    return String(result.stdout).split('\n').map((line) => Number(line.trim())).filter((pid) => pid > 0);
  };
  const first = await pids();
  for (const pid of first) signal(pid, 'SIGTERM');
  try {
    await waitUntil(async () => (await pids()).length === 0, 15_000, 'the namespace processes to exit');
  } catch {
    for (const pid of await pids()) signal(pid, 'SIGKILL');
    await waitUntil(async () => (await pids()).length === 0, 5_000, 'the namespace processes to die');
  }
  return first;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export async function namespaceExists(netns: string): Promise<boolean> {
  try {
    await stat(join('/run/netns', netns));
    return true;
  } catch {
    return false;
  }
}

/** Namespaces this harness left behind (a killed test run); for cleanup by hand or by a test. */
export async function leftoverNamespaces(): Promise<string[]> {
  const names = await readdir('/run/netns').catch(() => [] as string[]);
  return names.filter((name) => name.startsWith(NETNS_PREFIX)).sort();
}

async function run([command, args]: [string, string[]]): Promise<void> {
  const result = await execa(command, args, { reject: false, stdin: 'ignore', all: true });
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${result.exitCode}\n${String(result.all ?? '').trim()}`);
}

async function readPid(file: string): Promise<number> {
  let text = '';
  await waitUntil(async () => {
    text = await readFile(file, 'utf8').catch(() => '');
    return /^\d+\s*$/.test(text);
  }, 10_000, `${file} to hold a pid`);
  return Number(text.trim());
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await new Promise((done) => setTimeout(done, 200));
  }
}
