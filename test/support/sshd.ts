/**
 * Test support: a real OpenSSH server on 127.0.0.1, started by the tests,
 * with its own host key, key authentication only, and an unprivileged user
 * (`ferry-guest`) standing in for the VM. It needs root (to run sshd and to
 * act as that user's machine); .ci/run creates the user.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** GUEST_USER is the unprivileged user the tests log in as. */
export const GUEST_USER = 'ferry-guest';

/** Sshd is a running test server. */
export interface Sshd {
  readonly port: number;
  /** The guest user it lets in. */
  readonly user: string;
  /** The authorized_keys file it reads for that user. */
  readonly authorizedKeys: string;
  /** The client's private key file. */
  readonly clientKey: string;
  /** A known_hosts line for this server. */
  readonly knownHostsLine: string;
  /** The guest user's home directory. */
  readonly guestHome: string;
  /** guestDir makes a fresh directory owned by the guest user and returns its path. */
  guestDir(prefix?: string): string;
  /** chownToGuest gives a tree to the guest user (after the test wrote into it as root). */
  chownToGuest(path: string): void;
  /** url returns the ssh:// URL of a guest path. */
  url(path: string): string;
  /** dropConnections kills the per-connection sshd processes, keeping the listener. */
  dropConnections(): void;
  /** killAgents kills the ferry agents running under this server (SIGKILL), leaving the connections. */
  killAgents(): void;
  /** freezeAgents stops the ferry agents running under this server (SIGSTOP), or lets those go on (SIGCONT). */
  freezeAgents(freeze: boolean): void;
  /** vanish stops the server and every connection through it, as a VM that went away. */
  vanish(): Promise<void>;
  /** restart starts it again, same port and host key. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** sshdUnavailable says why the SSH tests cannot run here, or undefined. */
export function sshdUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the SSH tests need root (to run sshd and own the guest user)';
  if (!existsSync('/usr/sbin/sshd')) return 'no /usr/sbin/sshd: apt-get install openssh-server';
  return undefined;
}

function ensureGuestUser(user: string): string {
  try {
    execFileSync('id', [user], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', user]);
  }
  // A locked account cannot log in even with a key (UsePAM no): unlock it without a password.
  execFileSync('usermod', ['-p', '*', user]);
  const home = execFileSync('sh', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
  mkdirSync(home, { recursive: true });
  execFileSync('chown', [`${user}:${user}`, home]);
  return home;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`sshd did not listen on port ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

// The processes below `root` (not root itself) whose command name starts with `comm`, from /proc.
function descendants(root: number, comm: string): number[] {
  const children = new Map<number, { pid: number; comm: string }[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone already
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push({ pid: Number(name), comm });
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      if (c.comm.startsWith(comm)) out.push(c.pid);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

// The guest directories `guestDir` made in this process, for removeGuestDirs.
const guestDirs: string[] = [];

/** removeGuestDirs removes every guest directory `guestDir` made in this process (test/support/cleanup.ts). */
export function removeGuestDirs(): void {
  for (const dir of guestDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * startSshd starts a real sshd that lets `user` (created if missing) log in;
 * `extraConfig` lines are added to its sshd_config (e.g. SetEnv). Stop it when done.
 */
export async function startSshd(user = GUEST_USER, extraConfig: readonly string[] = []): Promise<Sshd> {
  const guestHome = ensureGuestUser(user);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sshd-'));
  chmodSync(dir, 0o755);
  const hostKey = join(dir, 'host_ed25519');
  const clientKey = join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'UsePAM no',
      'StrictModes no',
      `AllowUsers ${user}`,
      'PermitRootLogin no',
      'MaxStartups 100',
      'MaxSessions 100',
      'LogLevel ERROR',
      ...extraConfig,
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  let log = '';
  const launch = async (): Promise<ChildProcess> => {
    const started: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    started.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    try {
      await waitForPort(port, 10_000);
    } catch (error) {
      started.kill();
      throw new Error(`${(error as Error).message}: ${log}`);
    }
    return started;
  };
  let child = await launch();
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) {
        resolve();
        return;
      }
      child.once('exit', () => resolve());
      child.kill();
    });
  const [type, blob] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  let counter = 0;
  const frozen: number[] = [];
  return {
    port,
    user,
    authorizedKeys: join(dir, 'authorized_keys'),
    clientKey,
    knownHostsLine: `[127.0.0.1]:${port} ${type ?? ''} ${blob ?? ''}`,
    guestHome,
    guestDir(prefix = 'test') {
      const base = join(guestHome, 'ferry-tests');
      mkdirSync(base, { recursive: true });
      const path = join(base, `${prefix}-${process.pid}-${Date.now()}-${counter++}`);
      mkdirSync(path);
      guestDirs.push(path);
      // Not -R: that would touch (and change the ctime of) every file of the
      // tests running meanwhile, making their guests rehash.
      execFileSync('chown', [`${user}:${user}`, base, path]);
      return path;
    },
    chownToGuest(path: string) {
      // Only what is not the guest's yet: a chown changes ctime, and so the
      // stamp of every file it touches, which would make each run rehash
      // (and never record a listing as unchanged) on the guest.
      execFileSync('find', [path, '(', '!', '-user', user, '-o', '!', '-group', user, ')', '-exec', 'chown', '-h', `${user}:${user}`, '{}', '+']);
    },
    url(path: string) {
      return `ssh://${user}@127.0.0.1:${port}${path}`;
    },
    dropConnections() {
      // The listener is `sshd -D` (child.pid). Each connection is a privileged
      // monitor below it ("sshd: user [priv]") and, below that, the
      // unprivileged process that holds the socket ("sshd: user@notty").
      // Killing the monitor alone leaves the connection up (its child is
      // reparented and keeps serving), so kill every sshd below the listener.
      if (child.pid !== undefined) for (const pid of descendants(child.pid, 'sshd')) killQuietly(pid);
    },
    killAgents() {
      // Only the agents this server started: other tests' agents run as the same user.
      if (child.pid !== undefined) for (const pid of descendants(child.pid, 'node')) killQuietly(pid);
    },
    freezeAgents(freeze) {
      // The very processes stopped are let go: once their connection ends they are no longer below the server.
      if (!freeze) for (const pid of frozen.splice(0)) killQuietly(pid, 'SIGCONT');
      else if (child.pid !== undefined) {
        for (const pid of descendants(child.pid, 'node')) {
          frozen.push(pid);
          killQuietly(pid, 'SIGSTOP');
        }
      }
    },
    stop,
    async vanish() {
      if (child.pid !== undefined) for (const pid of descendants(child.pid, 'sshd')) killQuietly(pid);
      await stop();
    },
    async restart() {
      child = await launch();
    },
  };
}
