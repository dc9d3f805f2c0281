import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { unlessMissing } from '@boxcar/kit';
export { stopProcess } from '@boxcar/kit';

// Processes and small shared files of the qemu provider: pid files checked against the command line
// (a recycled pid must never be killed), free ports on 127.0.0.1.

export async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw ? raw.split('\0').filter(Boolean) : undefined;
  } catch {
    return undefined;
  }
}

/** The pid in the pid file when that process is alive and its command line contains `marker`. */
export async function livePid(pidFile: string, marker: string): Promise<number | undefined> {
  const text = await unlessMissing(pidFile, readFile(pidFile, 'utf8'), '');
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const argv = await commandLine(pid);
  return argv?.some((arg) => arg.includes(marker)) ? pid : undefined;
}

/** Every process whose command line mentions `path` (a state directory), e.g. to prove nothing is left. */
export async function processesMentioning(path: string): Promise<{ pid: number; command: string }[]> {
  const found: { pid: number; command: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const argv = await commandLine(pid);
    if (argv?.some((arg) => arg === path || arg.includes(`${path}/`) || arg.includes(`=${path}`))) found.push({ pid, command: argv.join(' ') });
  }
  return found;
}

/** A port on 127.0.0.1 that nothing listens on right now, preferring `preferred`. */
export async function freePort(preferred?: number, avoid: ReadonlySet<number> = new Set()): Promise<number> {
  if (preferred !== undefined && !avoid.has(preferred) && (await canListen(preferred))) return preferred;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const port = await listenAndClose(0);
    if (!avoid.has(port)) return port;
  }
  throw new Error('no free TCP port on 127.0.0.1');
}

/** Whether a listener on 127.0.0.1:`port` could be opened now (nothing holds the port). */
export async function canListen(port: number): Promise<boolean> {
  try {
    await listenAndClose(port);
    return true;
  } catch {
    return false;
  }
}

function listenAndClose(port: number): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const address = server.address();
      const chosen = typeof address === 'object' && address ? address.port : port;
      server.close(() => done(chosen));
    });
  });
}
