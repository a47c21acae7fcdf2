/**
 * The part of OpenSSH's client configuration (~/.ssh/config) that says
 * where a host name leads: HostName, User, Port, IdentityFile, and the
 * proxies ferry cannot follow. `Host` blocks match as ssh_config(5) says
 * (patterns with * and ?, negated with !, the first value of each keyword
 * wins); `Include` is followed; a `Match` block is skipped, except
 * `Match all`, which applies like `Host *`.
 */

import { readFileSync, readdirSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';

/** SshHostConfig is what the configuration says of one host name; unset where it says nothing. */
export interface SshHostConfig {
  readonly hostName?: string;
  readonly user?: string;
  readonly port?: number;
  /** Key files, in order, with ~ and %-tokens expanded. */
  readonly identityFiles: readonly string[];
  /** IdentitiesOnly yes: the keys above and no ssh-agent. */
  readonly identitiesOnly?: boolean;
  /** A ProxyJump or ProxyCommand, which ferry cannot follow. */
  readonly proxy?: string;
}

/** ConfigLine is one `keyword arguments` line of a configuration file. */
interface ConfigLine {
  readonly keyword: string;
  readonly args: readonly string[];
  readonly where: string;
}

/** Includes nest at most this deep (as in OpenSSH). */
const MAX_INCLUDE_DEPTH = 16;

/** sshConfigFor reads what `file` (~/.ssh/config by default) says of `host`; nothing when there is no such file. */
export function sshConfigFor(host: string, file = join(homedir(), '.ssh', 'config')): SshHostConfig {
  const values = new Map<string, string[]>();
  const identityFiles: string[] = [];
  let applies = true;
  for (const line of readConfig(file, 0)) {
    if (line.keyword === 'host') {
      applies = hostMatches(host, line.args);
      continue;
    }
    if (line.keyword === 'match') {
      applies = line.args.length === 1 && line.args[0]?.toLowerCase() === 'all';
      continue;
    }
    if (!applies) continue;
    if (line.keyword === 'identityfile') identityFiles.push(...line.args);
    else if (!values.has(line.keyword)) values.set(line.keyword, [...line.args]);
  }
  const one = (keyword: string) => values.get(keyword)?.[0];
  const user = one('user');
  const given = one('hostname');
  // In HostName itself, %h is the name as given.
  const hostName = given === undefined ? undefined : expandTokens(given, { host, hostName: host, user: user ?? localUser() });
  const tokens = { host, hostName: hostName ?? host, user: user ?? localUser() };
  const port = one('port');
  const portNumber = port === undefined ? undefined : Number(port);
  if (portNumber !== undefined && !(Number.isInteger(portNumber) && portNumber > 0 && portNumber < 65536)) {
    throw new Error(`${file}: Port ${port} for ${host} is not a port number`);
  }
  const jump = one('proxyjump');
  const command = one('proxycommand');
  const proxy = jump !== undefined && jump.toLowerCase() !== 'none' ? `ProxyJump ${jump}` : command !== undefined && command.toLowerCase() !== 'none' ? `ProxyCommand ${values.get('proxycommand')?.join(' ') ?? ''}` : undefined;
  return {
    ...(hostName !== undefined ? { hostName } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(portNumber !== undefined ? { port: portNumber } : {}),
    identityFiles: identityFiles.filter((f) => f.toLowerCase() !== 'none').map((f) => expandPath(expandTokens(f, tokens))),
    ...(one('identitiesonly') !== undefined ? { identitiesOnly: one('identitiesonly')?.toLowerCase() === 'yes' } : {}),
    ...(proxy !== undefined ? { proxy } : {}),
  };
}

// The lines of a configuration file, with its Includes in their place. A
// missing file is empty, as for ssh.
function readConfig(file: string, depth: number): ConfigLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
  const out: ConfigLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const words = splitLine(raw, where);
    const [first, ...args] = words;
    if (first === undefined) return;
    // "Keyword=value" and "Keyword = value" are the same as "Keyword value".
    const eq = first.indexOf('=');
    const keyword = (eq >= 0 ? first.slice(0, eq) : first).toLowerCase();
    const rest = eq >= 0 ? [first.slice(eq + 1), ...args].filter((a) => a !== '') : args[0] === '=' ? args.slice(1) : args;
    if (keyword !== 'include') {
      out.push({ keyword, args: rest, where });
      return;
    }
    if (depth >= MAX_INCLUDE_DEPTH) throw new Error(`${where}: Include nested more than ${MAX_INCLUDE_DEPTH} deep`);
    for (const pattern of rest) {
      const path = expandPath(pattern);
      for (const included of globFiles(isAbsolute(path) ? path : join(homedir(), '.ssh', path))) out.push(...readConfig(included, depth + 1));
    }
  });
  return out;
}

// Splits a line into words: whitespace apart, "double quotes" keep spaces,
// a # starting a word ends the line.
function splitLine(line: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') break;
    if (c === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) throw new Error(`${where}: a quote is not closed`);
      words.push(line.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < line.length && !' \t\r'.includes(line[j] as string)) j++;
    words.push(line.slice(i, j));
    i = j;
  }
  return words;
}

// The files a path with * and ? in its last part names, in name order.
function globFiles(path: string): string[] {
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (!/[*?]/.test(base)) return [path];
  const dir = dirname(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => wildcardMatch(base, name))
    .sort()
    .map((name) => join(dir, name));
}

/** hostMatches applies a Host line's patterns: a negated match excludes, else any match includes. */
export function hostMatches(host: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (!wildcardMatch((negated ? pattern.slice(1) : pattern).toLowerCase(), host.toLowerCase())) continue;
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
