/**
 * SSH targets as the user writes them: ssh://[user@]host[:port]/path or the
 * scp-like [user@]host:path, read with ~/.ssh/config as ssh would. No
 * connection is made here, so the command line can tell a remote argument
 * without loading ssh2.
 */

import { userInfo } from 'node:os';
import { UsageError } from '../core/errors.js';
import { hostConfig } from './ssh-config.js';

/** SshTarget is a directory on a machine reached over SSH. */
export interface SshTarget {
  readonly user: string;
  /** The host as the user names it (perhaps a Host alias of ~/.ssh/config). */
  readonly host: string;
  readonly port: number;
  /** The directory in the guest: absolute, or relative to the user's home. */
  readonly path: string;
  /** Where ~/.ssh/config says `host` leads (its HostName), if it says so. */
  readonly hostName?: string;
  /** The key files ~/.ssh/config gives for `host`, tried instead of the default ones. */
  readonly identityFiles?: readonly string[];
  /** ~/.ssh/config's UserKnownHostsFile for `host`: read instead of ~/.ssh/known_hosts. */
  readonly knownHostsFiles?: readonly string[];
  /** ~/.ssh/config's HostKeyAlias for `host`: the name its key is known by. */
  readonly hostKeyAlias?: string;
}

/** looksRemote reports whether a sync argument names an SSH target. */
export function looksRemote(arg: string): boolean {
  return arg.startsWith('ssh://') || /^[^/:]+:/.test(arg);
}

/**
 * parseTarget parses ssh://[user@]host[:port]/path or the scp-like
 * [user@]host:path. What ~/.ssh/config says of the host fills in the user
 * and port not given, and where it leads (HostName, IdentityFile), as for ssh.
 */
export function parseTarget(arg: string): SshTarget {
  let user: string | undefined;
  let host: string;
  let port: number | undefined;
  let path: string;
  if (arg.startsWith('ssh://')) {
    let url: URL;
    try {
      url = new URL(arg);
    } catch {
      throw new UsageError(`${arg}: not a valid ssh:// URL; write ssh://[user@]host[:port]/path`);
    }
    if (url.hostname === '') throw new UsageError(`${arg}: give the guest's host, as in ssh://user@host/home/user/dir`);
    path = guestPath(decodeURIComponent(url.pathname), arg);
    if (url.port !== '') port = Number(url.port);
    if (url.username !== '') user = decodeURIComponent(url.username);
    host = url.hostname.replace(/^\[|\]$/g, '');
  } else {
    // ftp://host/dir would read as the scp-like host "ftp" and path "//host/dir".
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(arg)?.[1];
    if (scheme !== undefined) throw new UsageError(`${arg}: ferry reaches another machine over SSH only, not ${scheme}://; write ssh://[user@]host[:port]/path or [user@]host:path`);
    const m = /^(?:([^@/:]+)@)?([^@/:]+):(.*)$/.exec(arg);
    if (m === null) throw new UsageError(`${arg}: not an SSH target; write user@host:/path or ssh://user@host[:port]/path`);
    let given: string;
    [, user, host, given] = m as unknown as [string, string | undefined, string, string];
    path = guestPath(given, arg);
  }
  const config = hostConfig(host, user, arg);
  return {
    user: user ?? config.user ?? process.env.USER ?? userInfo().username,
    host,
    port: port ?? config.port ?? 22,
    path,
    ...(config.hostName !== undefined && config.hostName !== host ? { hostName: config.hostName } : {}),
    ...(config.identityFiles.length > 0 ? { identityFiles: config.identityFiles } : {}),
    ...(config.knownHostsFiles !== undefined ? { knownHostsFiles: config.knownHostsFiles } : {}),
    ...(config.hostKeyAlias !== undefined ? { hostKeyAlias: config.hostKeyAlias } : {}),
  };
}

// The directory in the guest as the agent is to be given it: ~/dir (and
// /~/dir, the form of ferry's own labels) relative to the guest user's
// home, as scp and rsync read it; doubled and trailing slashes and .
// components dropped, so that one directory is one pair however written.
function guestPath(given: string, arg: string): string {
  let path = given;
  if (path.startsWith('~/')) path = path.slice(2);
  else if (path.startsWith('/~/')) path = path.slice(3);
  else if (path === '/~' || path.startsWith('~')) {
    throw new UsageError(`${arg}: give a directory inside the guest user's home (~/dir) or an absolute path; not ~user, and not the home itself`);
  }
  const absolute = path.startsWith('/');
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0) throw new UsageError(`${arg}: give the directory in the guest, as in user@host:shared or ssh://user@host/home/user/shared`);
  return `${absolute ? '/' : ''}${parts.join('/')}`;
}

/** targetLabel is the canonical name of a target: ssh://user@host:port/path. */
export function targetLabel(t: SshTarget): string {
  return `ssh://${t.user}@${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${t.path.startsWith('/') ? '' : '/~/'}${t.path}`;
}

