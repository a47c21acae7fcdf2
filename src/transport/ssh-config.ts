/**
 * The part of OpenSSH's client configuration (~/.ssh/config) that says
 * where a host name leads: HostName, User, Port, IdentityFile, and the
 * proxies ferry cannot follow. `Host` blocks match as ssh_config(5) says
 * (patterns with * and ?, negated with !, the first value of each keyword
 * wins); `Include` is followed; a `Match` block is skipped, except
 * `Match all`, which applies like `Host *`. Also UserKnownHostsFile and
 * HostKeyAlias, for the host key check. IdentitiesOnly is not read: the
 * host's IdentityFiles are tried before ssh-agent's keys anyway.
 */

import { readFileSync, readdirSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { UsageError } from '../core/errors.js';

/** SshHostConfig is what the configuration says of one host name; unset where it says nothing. */
export interface SshHostConfig {
  readonly hostName?: string;
  readonly user?: string;
  readonly port?: number;
  /** Key files, in order and without repeats, with ~ and %-tokens expanded. */
  readonly identityFiles: readonly string[];
  /** A ProxyJump or ProxyCommand, which ferry cannot follow. */
  readonly proxy?: string;
  /** UserKnownHostsFile: the known_hosts files to read instead of ~/.ssh/known_hosts (none for `none`). */
  readonly knownHostsFiles?: readonly string[];
  /** HostKeyAlias: the name the host's key is looked up under. */
  readonly hostKeyAlias?: string;
}

/** A keyword's first value, and where it was given. */
interface Setting {
  readonly args: readonly string[];
  readonly where: string;
}

/** Includes nest at most this deep (as in OpenSSH). */
const MAX_INCLUDE_DEPTH = 16;

/**
 * sshConfigFor reads what `file` (~/.ssh/config by default) says of `host`,
 * for a login as `user` when the command line names one; nothing when there
 * is no such file. Throws, naming file and line, where it cannot be read.
 */
export function sshConfigFor(host: string, user?: string, file = join(homedir(), '.ssh', 'config')): SshHostConfig {
  // ssh matches the host name in lower case, the patterns as written.
  const name = host.toLowerCase();
  const settings = new Map<string, Setting>();
  const identityFiles: string[] = [];
  readConfig(file, 0, true, (keyword, args, where) => {
    if (keyword === 'identityfile') identityFiles.push(...args);
    // ProxyJump and ProxyCommand are one setting: the first of them wins.
    else if (keyword === 'proxyjump' || keyword === 'proxycommand') {
      if (!settings.has('proxy')) settings.set('proxy', { args: [keyword === 'proxyjump' ? 'ProxyJump' : 'ProxyCommand', ...args], where });
    } else if (!settings.has(keyword)) settings.set(keyword, { args, where });
  }, name);
  const one = (keyword: string) => settings.get(keyword)?.args[0];
  const login = user ?? one('user') ?? localUser();
  const given = one('hostname');
  // In HostName itself, %h is the name as given.
  const hostName = given === undefined ? undefined : expandTokens(given, { host, hostName: host, user: login });
  const tokens = { host, hostName: hostName ?? host, user: login };
  const port = settings.get('port');
  const portNumber = port === undefined ? undefined : Number(port.args[0]);
  if (port !== undefined && !(Number.isInteger(portNumber) && (portNumber as number) > 0 && (portNumber as number) < 65536)) {
    throw new Error(`${port.where}: Port ${port.args.join(' ')} is not a port number`);
  }
  const proxy = settings.get('proxy')?.args;
  const userSetting = one('user');
  const knownHosts = settings.get('userknownhostsfile')?.args;
  const alias = one('hostkeyalias');
  return {
    ...(hostName !== undefined ? { hostName } : {}),
    ...(userSetting !== undefined ? { user: userSetting } : {}),
    ...(portNumber !== undefined ? { port: portNumber } : {}),
    identityFiles: [...new Set(identityFiles.filter((f) => f.toLowerCase() !== 'none').map((f) => expandPath(expandTokens(f, tokens))))],
    ...(proxy !== undefined && proxy[1]?.toLowerCase() !== 'none' ? { proxy: proxy.join(' ') } : {}),
    ...(knownHosts !== undefined ? { knownHostsFiles: knownHosts.filter((f) => f.toLowerCase() !== 'none').map((f) => expandPath(expandTokens(f, tokens))) } : {}),
    ...(alias !== undefined && alias.toLowerCase() !== 'none' ? { hostKeyAlias: alias } : {}),
  };
}

/**
 * hostConfig is sshConfigFor for a target the user gave as `given`: an
 * unreadable configuration, or a proxy ferry cannot follow, is a UsageError.
 */
export function hostConfig(host: string, user: string | undefined, given: string): SshHostConfig {
  let config: SshHostConfig;
  try {
    config = sshConfigFor(host, user);
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; fix the SSH configuration (ssh -G ${host} shows what ssh makes of it)`);
  }
  if (config.proxy !== undefined) {
    throw new UsageError(`${given}: ~/.ssh/config reaches ${host} through ${config.proxy}, which ferry cannot follow; give the guest's own address, or forward a port to it (ssh -L) and give ferry that port`);
  }
  return config;
}

// Reads a configuration file, giving each line that applies to `name` to
// `use`, with its Includes in their place. A Host or Match line changes what
// applies only until the end of its file; a file included where nothing
// applies applies nowhere (as in OpenSSH). A missing file is empty.
function readConfig(file: string, depth: number, active: boolean, use: (keyword: string, args: string[], where: string) => void, name: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
  let applies = active;
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const line = parseLine(raw, where);
    if (line === undefined) return;
    const { keyword, args } = line;
    if (keyword === 'host') applies = active && hostMatches(name, args);
    else if (keyword === 'match') applies = active && args.length === 1 && args[0]?.toLowerCase() === 'all';
    else if (keyword === 'include') {
      if (depth >= MAX_INCLUDE_DEPTH) throw new Error(`${where}: Include nested more than ${MAX_INCLUDE_DEPTH} deep`);
      for (const pattern of args) {
        const path = expandPath(pattern);
        for (const included of globFiles(isAbsolute(path) ? path : join(homedir(), '.ssh', path))) readConfig(included, depth + 1, applies, use, name);
      }
    } else if (applies) use(keyword, args, where);
  });
}

// Splits a line into its keyword (lower case) and arguments as ssh does:
// "Keyword value", "Keyword=value" and "Keyword = value" are the same;
// "double quotes" keep spaces; a # where a word starts ends the line.
function parseLine(raw: string, where: string): { keyword: string; args: string[] } | undefined {
  const m = /^[ \t]*([^ \t\r=#]+)[ \t]*(?:=[ \t]*)?(.*)$/.exec(raw);
  if (m === null) return undefined;
  const [, keyword, rest] = m as unknown as [string, string, string];
  const args: string[] = [];
  let i = 0;
  while (i < rest.length) {
    const c = rest[i] as string;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') break;
    let word = '';
    while (i < rest.length && !' \t\r'.includes(rest[i] as string)) {
      if (rest[i] === '"') {
        const end = rest.indexOf('"', i + 1);
        if (end < 0) throw new Error(`${where}: a quote is not closed`);
        word += rest.slice(i + 1, end);
        i = end + 1;
      } else word += rest[i++] as string;
    }
    args.push(word);
  }
  return { keyword: keyword.toLowerCase(), args };
}

// The files a path with * and ? in it names, in name order, as glob(3):
// a wildcard does not match a leading dot.
function globFiles(path: string): string[] {
  const parts = path.split('/');
  let found = [parts[0] === '' ? '/' : (parts[0] as string)];
  for (const part of parts.slice(1)) {
    if (part === '') continue;
    if (!/[*?]/.test(part)) {
      found = found.map((dir) => join(dir, part));
      continue;
    }
    found = found.flatMap((dir) => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return [];
      }
      return names
        .filter((name) => (!name.startsWith('.') || part.startsWith('.')) && wildcardMatch(part, name))
        .sort()
        .map((name) => join(dir, name));
    });
  }
  return found;
}

/** hostMatches applies a Host line's patterns to a host name: a negated match excludes, else any match includes. */
export function hostMatches(host: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (!wildcardMatch(negated ? pattern.slice(1) : pattern, host)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

// ssh's patterns: * any run of characters, ? any one character.
function wildcardMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(text);
}

// %h the host name, %n the name as given, %r the remote user, %u the local
// user, %d the local home, %% a percent sign; others are left as they are.
function expandTokens(text: string, t: { host: string; hostName: string; user: string }): string {
  return text.replace(/%([hnrud%])/g, (_, token: string) => {
    switch (token) {
      case 'h':
        return t.hostName;
      case 'n':
        return t.host;
      case 'r':
        return t.user;
      case 'u':
        return localUser();
      case 'd':
        return homedir();
      default:
        return '%';
    }
  });
}

function expandPath(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

function localUser(): string {
  return process.env.USER ?? userInfo().username;
}
