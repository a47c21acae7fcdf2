/**
 * SSH targets as the user writes them: ssh://[user@]host[:port]/path or the
 * scp-like [user@]host:path. Parsing only: no connection is made here, so
 * the command line can tell a remote argument without loading ssh2.
 */

import { userInfo } from 'node:os';
import { UsageError } from '../core/errors.js';

/** SshTarget is a directory on a machine reached over SSH. */
export interface SshTarget {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  /** The directory in the guest: absolute, or relative to the user's home. */
  readonly path: string;
}

/** looksRemote reports whether a sync argument names an SSH target. */
export function looksRemote(arg: string): boolean {
  return arg.startsWith('ssh://') || /^[^/:]+:/.test(arg);
}

/** parseTarget parses ssh://[user@]host[:port]/path or the scp-like [user@]host:path. */
export function parseTarget(arg: string): SshTarget {
  const defaultUser = process.env.USER ?? userInfo().username;
  if (arg.startsWith('ssh://')) {
    let url: URL;
    try {
      url = new URL(arg);
    } catch {
      throw new UsageError(`${arg}: not a valid ssh:// URL; write ssh://[user@]host[:port]/path`);
    }
    const path = decodeURIComponent(url.pathname);
    if (url.hostname === '' || path === '' || path === '/') throw new UsageError(`${arg}: give the directory in the guest, as in ssh://user@host/home/user/dir`);
    const port = url.port === '' ? 22 : Number(url.port);
    return { user: url.username === '' ? defaultUser : decodeURIComponent(url.username), host: url.hostname.replace(/^\[|\]$/g, ''), port, path };
  }
  const m = /^(?:([^@/:]+)@)?([^@/:]+):(.*)$/.exec(arg);
  if (m === null) throw new UsageError(`${arg}: not an SSH target; write user@host:/path or ssh://user@host[:port]/path`);
  const [, user, host, path] = m as unknown as [string, string | undefined, string, string];
  if (path === '') throw new UsageError(`${arg}: give the directory in the guest after the colon`);
  return { user: user ?? defaultUser, host, port: 22, path };
}

/** targetLabel is the canonical name of a target: ssh://user@host:port/path. */
export function targetLabel(t: SshTarget): string {
  return `ssh://${t.user}@${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${t.path.startsWith('/') ? '' : '/~/'}${t.path}`;
}

