import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SshError, sshArgs, sshCopy, sshRun, waitForSsh, type SshTarget } from './ssh.ts';

// The success paths (commands, copies, readiness) run against real guests in qemu/provider.slow.test.ts;
// here the real ssh client meets what a booting guest looks like from the host: nothing listening yet,
// or a port that accepts and says nothing useful (QEMU's forward before sshd is up).

const target: SshTarget = { host: '127.0.0.1', port: 22, user: 'vagrant', keyFile: '/nonexistent/key' };

function listen(onConnection: (socket: import('node:net').Socket) => void): Promise<{ server: Server; port: number }> {
  return new Promise((done) => {
    const server = createServer(onConnection);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      done({ server, port: typeof address === 'object' && address ? address.port : 0 });
    });
  });
}

/** A port on 127.0.0.1 with nothing behind it: bound, then closed. */
async function closedPort(): Promise<number> {
  const { server, port } = await listen(() => undefined);
  await new Promise((done) => server.close(done));
  return port;
}

describe('sshArgs', () => {
  it('never prompts, never remembers host keys, uses only the given key', () => {
    const args = sshArgs({ ...target, port: 2222, keyFile: '/k/id' });
    const options = args.flatMap((arg, index) => (args[index - 1] === '-o' ? [arg] : []));
    expect(options).toEqual(
      expect.arrayContaining(['BatchMode=yes', 'StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null', 'IdentitiesOnly=yes', 'ConnectTimeout=5']),
    );
    expect(args.slice(0, 4)).toEqual(['-i', '/k/id', '-p', '2222']);
    expect(args.at(-1)).toBe('vagrant@127.0.0.1');
  });

  it.each([
    [{ port: 0 }, /port must be a TCP port from 1 to 65535, got 0/],
    [{ host: 'a b' }, /host must be a host name or address/],
    [{ user: 'Root;rm' }, /user must be a login name/],
    [{ keyFile: '' }, /keyFile must name a private key file/],
  ])('refuses a bad target %j', (change, message) => {
    expect(() => sshArgs({ ...target, ...change })).toThrow(message);
  });
});

describe('sshRun against a host that is not there yet', () => {
  it('says it could not connect, naming the target', async () => {
    const port = await closedPort();
    const error = await sshRun({ ...target, port }, 'true').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).message).toMatch(new RegExp(`ssh vagrant@127\\.0\\.0\\.1:${port}: could not connect or log in: [\\s\\S]*Connection refused`));
    expect((error as SshError).result?.exitCode).toBe(255);
  });

  it('gives up at its timeout when the far end accepts and stays silent', async () => {
    const sockets: import('node:net').Socket[] = [];
    const { server, port } = await listen((socket) => sockets.push(socket));
    try {
      const started = Date.now();
      await expect(sshRun({ ...target, port }, 'true', { timeoutMs: 1_500 })).rejects.toThrow(/"true" did not finish within 1500 ms/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});

describe('waitForSsh', () => {
  it('retries until its deadline, then reports the attempts and the last error', async () => {
    const port = await closedPort();
    const started = Date.now();
    const error = await waitForSsh({ ...target, port, timeoutMs: 1_500, intervalMs: 300 }).catch((caught: unknown) => caught as Error);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect((error as Error).message).toMatch(new RegExp(`ssh vagrant@127\\.0\\.0\\.1:${port} did not answer within 1500 ms \\(([2-9]|\\d\\d) attempts\\); last error: .*could not connect`));
  });

  it('stops at once when its signal aborts (the node died)', async () => {
    const port = await closedPort();
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('qemu exited')), 300);
    const started = Date.now();
    await expect(waitForSsh({ ...target, port, timeoutMs: 30_000, intervalMs: 200, signal: controller.signal })).rejects.toThrow(/qemu exited/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('sshCopy', () => {
  it('refuses relative paths and odd modes before connecting', async () => {
    await expect(sshCopy(target, Buffer.from('x'), 'etc/x', 0o644)).rejects.toThrow(/remotePath must be an absolute file path, got "etc\/x"/);
    await expect(sshCopy(target, Buffer.from('x'), '/etc/dir/', 0o644)).rejects.toThrow(/absolute file path/);
    await expect(sshCopy(target, Buffer.from('x'), '/etc/x', 0o10000)).rejects.toThrow(/mode must be a file mode such as 0o644, got 4096/);
  });
});
