/**
 * The daemon's control socket: a unix socket that only its owner may use
 * (mode 0600 in a 0700 directory, and each peer's uid checked with
 * SO_PEERCRED). Requests and replies are JSON, one per line:
 *
 *   → {"id": 1, "method": "grant", "params": {...}}
 *   ← {"id": 1, "progress": {...}}        (any number, while it works)
 *   ← {"id": 1, "result": {...}}  or  {"id": 1, "error": {"code": "...", "message": "..."}}
 */

import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { FerryError, UsageError } from '../core/errors.js';
import { peerUid } from '../fs/native.js';

/** The longest request or reply line accepted. */
const MAX_LINE = 1 << 20;

/** controlSocketPath: $FERRY_HOME/control.sock when FERRY_HOME is set, else $XDG_RUNTIME_DIR/ferry/control.sock, else in the state directory. */
export function controlSocketPath(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if ((env.FERRY_HOME === undefined || env.FERRY_HOME === '') && runtime !== undefined && runtime !== '') return join(runtime, 'ferry', 'control.sock');
  return join(home, 'control.sock');
}

/** Handler serves one method; `progress` sends interim updates to the caller. */
export type Handler = (params: Record<string, unknown>, progress: (update: unknown) => void) => Promise<unknown>;

/** ControlServer listens on the control socket. */
export class ControlServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
    /** Open connections: closing the server ends them rather than waiting on a caller that never hangs up. */
    private readonly sockets: Set<Socket>,
  ) {}

  static async listen(path: string, handlers: Readonly<Record<string, Handler>>, onRefused: (uid: number) => void): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    chmodSync(dirname(path), 0o700);
    await refuseIfServed(path);
    rmSync(path, { force: true });
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      serveConnection(socket, handlers, onRefused);
    });
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
    return new ControlServer(server, path, sockets);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    rmSync(this.path, { force: true });
  }
}

// A second daemon must not take the socket from a running one.
async function refuseIfServed(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new FerryError('ERUNNING', `a ferry daemon is already running (its socket is ${path})`);
}

function serveConnection(socket: Socket, handlers: Readonly<Record<string, Handler>>, onRefused: (uid: number) => void): void {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  const uid = typeof fd === 'number' && fd >= 0 ? peerUid(fd) : -1;
  const send = (message: unknown) => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
  };
  if (uid !== process.getuid?.()) {
    onRefused(uid);
    send({ id: 0, error: { code: 'EPERM', message: `this ferry daemon belongs to uid ${process.getuid?.() ?? '?'}; uid ${uid} may not use it` } });
    socket.end();
    return;
  }
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('error', () => undefined);
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_LINE) {
      send({ id: 0, error: { code: 'EUSAGE', message: 'request too long' } });
      socket.destroy();
      return;
    }
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      void handle(line, handlers, send);
    }
  });
}

async function handle(line: string, handlers: Readonly<Record<string, Handler>>, send: (message: unknown) => void): Promise<void> {
  let id = 0;
  try {
    const request = JSON.parse(line) as { id?: unknown; method?: unknown; params?: unknown };
    id = typeof request.id === 'number' ? request.id : 0;
    const handler = typeof request.method === 'string' ? handlers[request.method] : undefined;
    if (handler === undefined) throw new UsageError(`the daemon has no method ${JSON.stringify(request.method)}`);
    const params = typeof request.params === 'object' && request.params !== null ? (request.params as Record<string, unknown>) : {};
    const result = await handler(params, (update) => send({ id, progress: update }));
    send({ id, result: result ?? null });
  } catch (error) {
    const code = error instanceof FerryError ? error.code : 'EINTERNAL';
    send({ id, error: { code, message: error instanceof Error ? error.message : String(error) } });
  }
}

/** DaemonError is an error the daemon reported, with its code. */
export class DaemonError extends FerryError {}

/** callDaemon sends one request and waits for its result, passing progress updates on. */
export async function callDaemon(path: string, method: string, params: Record<string, unknown>, onProgress?: (update: unknown) => void): Promise<unknown> {
  const socket = connect(path);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
          reject(new FerryError('ENODAEMON', `the ferry daemon is not running (no daemon at ${path}); start it with \`ferry daemon\` (or \`systemctl --user start ferry\`)`));
        } else if (error.code === 'EACCES') {
          reject(new FerryError('EPERM', `the ferry daemon at ${path} belongs to another user; it only serves its owner`));
        } else reject(new FerryError('ENODAEMON', `cannot reach the ferry daemon at ${path}: ${error.message}`));
      });
    });
    socket.write(`${JSON.stringify({ id: 1, method, params })}\n`);
    return await new Promise<unknown>((resolve, reject) => {
      let buffer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const reply = JSON.parse(buffer.slice(0, newline)) as { progress?: unknown; result?: unknown; error?: { code: string; message: string } };
          buffer = buffer.slice(newline + 1);
          if (reply.error !== undefined) {
            reject(reply.error.code === 'EUSAGE' ? new UsageError(reply.error.message) : new DaemonError(reply.error.code, reply.error.message));
            return;
          }
          if ('result' in reply) {
            resolve(reply.result);
            return;
          }
          onProgress?.(reply.progress);
        }
      });
      socket.once('close', () => reject(new FerryError('ENODAEMON', 'the ferry daemon closed the connection before answering (did it stop?)')));
    });
  } finally {
    socket.destroy();
  }
}
