import { connect, type Socket } from 'node:net';

// A minimal client of QEMU's QMP monitor (JSON lines over the node's unix socket): enough to pause,
// resume, ask the run state, quit, and reach the human monitor for savevm/loadvm/delvm. Those are
// synchronous there; QMP's own snapshot-save/-load (QEMU 6.0+) are background jobs to poll.

export class QmpError extends Error {
  constructor(
    readonly socketPath: string,
    detail: string,
  ) {
    super(`QMP ${socketPath}: ${detail}`);
    this.name = 'QmpError';
  }
}

interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
  QMP?: unknown;
}

export interface QmpSession {
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
  /** An HMP command; its text output, which is where HMP reports a failure (the QMP call itself succeeds). */
  human(commandLine: string): Promise<string>;
  close(): void;
}

/**
 * Opens a session (greeting read, capabilities negotiated). `timeoutMs` bounds every command: savevm of
 * a guest under TCG writes its whole RAM, so callers pass a generous one.
 */
export async function qmpConnect(socketPath: string, timeoutMs = 120_000): Promise<QmpSession> {
  const socket: Socket = connect(socketPath);
  let buffer = '';
  const lines: QmpReply[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line) continue;
      try {
        lines.push(JSON.parse(line) as QmpReply);
      } catch {
        failure = new QmpError(socketPath, `not JSON: ${line.slice(0, 200)}`);
      }
    }
    wake?.();
  });
  socket.on('error', (error) => {
    failure = new QmpError(socketPath, error.message);
    wake?.();
  });
  socket.on('close', () => {
    failure ??= new QmpError(socketPath, 'the monitor closed the connection');
    wake?.();
  });

  /** The next line that is not an asynchronous event (events, e.g. STOP/RESUME, are not replies). */
  async function next(what: string): Promise<QmpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = lines.findIndex((line) => line.event === undefined);
      if (index >= 0) return lines.splice(index, 1)[0]!;
      lines.length = 0;
      if (failure) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new QmpError(socketPath, `no answer to ${what} within ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  }

  async function execute<T>(command: string, args?: Record<string, unknown>): Promise<T> {
    socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    const reply = await next(command);
    if (reply.error) throw new QmpError(socketPath, `${command}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return as T;
  }

  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (error) => reject(new QmpError(socketPath, `cannot connect: ${error.message}`)));
    });
    const greeting = await next('the greeting');
    if (!greeting.QMP) throw new QmpError(socketPath, 'no QMP greeting: is this a QMP socket?');
    await execute('qmp_capabilities');
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return {
    execute,
    human: async (commandLine) => String(await execute<string>('human-monitor-command', { 'command-line': commandLine })).trim(),
    close: () => socket.destroy(),
  };
}

/** One command in a session of its own. */
export async function qmp<T = unknown>(socketPath: string, command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
  const session = await qmpConnect(socketPath, timeoutMs);
  try {
    return await session.execute<T>(command, args);
  } finally {
    session.close();
  }
}
