/**
 * The connection `ferry sync` opens ahead of its SSH handshake, on real
 * sockets on 127.0.0.1.
 */

import { writeFileSync } from 'node:fs';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { Dialled, dial } from '../src/transport/dial.js';
import type * as Ssh from '../src/transport/ssh.js';
import { parseTarget } from '../src/transport/target.js';
import { tempDir } from './support/cli.js';
import { sshdUnavailable, startSshd } from './support/sshd.js';
import { eventually, sleep } from './support/wait.js';

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

describe('dialling ahead', () => {
  test('the socket is handed over once, to the handshake for the same host and port, and carries what the server sent first', async () => {
    const { port, accepted } = await listening();
    const dialled = new Dialled('127.0.0.1', port);
    await eventually(() => expect(accepted).toHaveLength(1));
    accepted[0]?.write('SSH-2.0-banner\r\n');
    await sleep(50);
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
    await eventually(() => expect(accepted).toHaveLength(1));
    server?.close();
    const refused = new Dialled('127.0.0.1', port);
    // A connection made after it, refused too: once it has heard, so has `refused`.
    await new Promise((resolve) => createConnection(port, '127.0.0.1').once('error', resolve));
    // The first was accepted before the server closed; the second was refused.
    expect(refused.take('127.0.0.1', port)).toBeUndefined();
    let closed = false;
    accepted[0]?.on('close', () => (closed = true));
    accepted[0]?.resume();
    unused.drop();
    await eventually(() => expect(closed).toBe(true));
    expect(unused.take('127.0.0.1', port)).toBeUndefined();
  });
});

// As root a missing sshd fails this rather than skipping it.
describe.skipIf(process.getuid?.() !== 0)('dialling ahead to a real sshd', () => {
  test('the handshake takes the connection dialled ahead, and the guest is reached over it', async () => {
    const unavailable = sshdUnavailable();
    if (unavailable !== undefined) throw new Error(`needs a real sshd: ${unavailable}`);
    const sshd = await startSshd();
    try {
      const home = tempDir('ferry-dial-');
      writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
      const target = parseTarget(sshd.url(sshd.guestDir('dial')));
      const dialled = dial(target);
      // The built module: it finds the built agent beside it, to install in the guest.
      const { connectGuest } = (await import(new URL('../dist/transport/ssh.js', import.meta.url).href)) as typeof Ssh;
      const guest = await connectGuest(target, 'beta', { acceptNewHostKey: false, home, key: sshd.clientKey, dialled });
      try {
        expect(await guest.endpoint.exists('')).toBe(true);
        // Taken by the handshake: not there to take again.
        expect(dialled.take(target.hostName ?? target.host, target.port)).toBeUndefined();
      } finally {
        guest.close();
      }
    } finally {
      await sshd.stop();
    }
  }, 60_000);
});
