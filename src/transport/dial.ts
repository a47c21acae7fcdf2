/**
 * Dialling the guest early: `ferry sync` opens the TCP connection as soon as
 * its command line names the guest, so the server starts up (for OpenSSH, a
 * fork and a re-exec for each connection) while ferry still loads ssh2 and
 * checks its own side; the SSH handshake then begins on a socket already
 * connected. Loads nothing but node:net.
 */

import { Socket } from 'node:net';
import type { SshTarget } from './target.js';

/** Dialled is one TCP connection opened ahead of its SSH handshake. */
export class Dialled {
  private socket: Socket | undefined;
  private failed = false;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    const socket = connectTo(host, port);
    // A failure here is left to the handshake's own connection to meet and
    // tell: take() hands over no socket that failed.
    socket.once('error', this.onError);
    this.socket = socket;
  }

  private readonly onError = () => {
    this.failed = true;
  };

  /**
   * take hands the socket over to the handshake that connects to `host` and
   * `port`, once: undefined if it is for somewhere else, already taken, or
   * failed or closed (the caller then dials afresh and meets the error
   * itself).
   */
  take(host: string, port: number): Socket | undefined {
    const socket = this.socket;
    if (socket === undefined || host !== this.host || port !== this.port) return undefined;
    this.socket = undefined;
    socket.off('error', this.onError);
    // RACE: a server that closes the connection after this look fails the
    // handshake as it would have failed a connection made then.
    if (this.failed || socket.destroyed || (socket.readyState !== 'open' && socket.readyState !== 'opening')) {
      socket.destroy();
      return undefined;
    }
    return socket;
  }

  /** drop closes the socket if no handshake took it. */
  drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** connectTo starts a TCP connection for an SSH handshake. */
export function connectTo(host: string, port: number): Socket {
  const socket = new Socket();
  // Requests and replies are small and pipelined: Nagle's algorithm would
  // hold each small write for the peer's delayed ACK (40 ms on Linux).
  socket.setNoDelay(true);
  return socket.connect(port, host);
}

/** dial opens the TCP connection to a target's SSH server, as the handshake will look it up. */
export function dial(target: SshTarget): Dialled {
  return new Dialled(target.hostName ?? target.host, target.port);
}
