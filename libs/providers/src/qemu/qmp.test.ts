import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qmp, qmpConnect } from './qmp.ts';

// The QMP client against a stand-in monitor: greeting, capabilities, events between replies, errors.

let dir: string;
let server: Server;
let socket: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'boxcar-qmp-'));
  socket = join(dir, 'qmp.sock');
  server = createServer((connection) => {
    connection.write('{"QMP": {"version": {}, "capabilities": []}}\n');
    let buffer = '';
    connection.on('data', (chunk) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const request = JSON.parse(buffer.slice(0, newline)) as { execute: string; arguments?: Record<string, string> };
        buffer = buffer.slice(newline + 1);
        if (request.execute === 'qmp_capabilities') connection.write('{"return": {}}\n');
        // An event comes before the reply, as QEMU sends STOP before answering `stop`.
        else if (request.execute === 'stop') connection.write('{"event": "STOP", "timestamp": {}}\n{"return": {}}\n');
        else if (request.execute === 'human-monitor-command') connection.write(`${JSON.stringify({ return: `ran ${request.arguments!['command-line']}\r\n` })}\n`);
        else if (request.execute === 'hang') continue;
        else connection.write(`${JSON.stringify({ error: { class: 'CommandNotFound', desc: `The command ${request.execute} has not been found` } })}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('qmp', () => {
  it('negotiates, skips events, returns replies and HMP output', async () => {
    const session = await qmpConnect(socket);
    try {
      expect(await session.execute('stop')).toEqual({});
      expect(await session.human('savevm x')).toBe('ran savevm x');
    } finally {
      session.close();
    }
  });

  it('names the socket and the error QEMU gave, and gives up on a command that gets no answer', async () => {
    await expect(qmp(socket, 'nonsense')).rejects.toThrow(`QMP ${socket}: nonsense: CommandNotFound: The command nonsense has not been found`);
    await expect(qmp(socket, 'hang', undefined, 300)).rejects.toThrow(`QMP ${socket}: no answer to hang within 0.3 s`);
    await expect(qmp(join(dir, 'absent.sock'), 'stop')).rejects.toThrow(/QMP .*absent\.sock: cannot connect: .*ENOENT/);
  });
});
