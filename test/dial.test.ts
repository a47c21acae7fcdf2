/**
 * The connection `ferry sync` opens ahead of its SSH handshake, on real
 * sockets on 127.0.0.1.
 */

import { type Server, type Socket, createServer } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { Dialled } from '../src/transport/dial.js';

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

// A server on a free port that keeps each connection it accepts.
async function listening(): Promise<{ port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  server = createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, accepted };
}

const until = async (done: () => boolean) => {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('dialling ahead', () => {
  test('the socket is handed over once, to the handshake for the same host and port, and carries what the server sent first', async () => {
    const { port, accepted } = await listening();
    const dialled = new Dialled('127.0.0.1', port);
    await until(() => accepted.length === 1);
    accepted[0]?.write('SSH-2.0-banner\r\n');
    await new Promise((r) => setTimeout(r, 50));
    expect(dialled.take('127.0.0.1', port + 1)).toBeUndefined();
    expect(dialled.take('localhost', port)).toBeUndefined();
    const socket = dialled.take('127.0.0.1', port);
    expect(socket).toBeDefined();
    expect(dialled.take('127.0.0.1', port)).toBeUndefined();
    // What arrived before anyone read is kept for the reader that takes it.
    const first = await new Promise<string>((resolve) => socket?.once('data', (data: Buffer) => resolve(data.toString())));
    expect(first).toBe('SSH-2.0-banner\r\n');
    socket?.destroy();
  });

  test('a connection that failed is not handed over, and one never taken is closed by drop', async () => {
    const { port, accepted } = await listening();
    const unused = new Dialled('127.0.0.1', port);
    await until(() => accepted.length === 1);
    server?.close();
    const refused = new Dialled('127.0.0.1', port);
    await new Promise((r) => setTimeout(r, 100));
    // The first was accepted before the server closed; the second was refused.
    expect(refused.take('127.0.0.1', port)).toBeUndefined();
    let closed = false;
    accepted[0]?.on('close', () => (closed = true));
    accepted[0]?.resume();
    unused.drop();
    await until(() => closed);
    expect(closed).toBe(true);
    expect(unused.take('127.0.0.1', port)).toBeUndefined();
  });
});
