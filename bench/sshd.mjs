// The "other machine" of the SSH benchmarks: a real /usr/sbin/sshd on a free
// 127.0.0.1 port, set up as test/support/sshd.ts does (fresh ed25519 host key,
// key-only auth, UsePAM no) and letting in only the unprivileged user
// ferry-guest. Needs root. Plain Node ESM, node:* only.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { freshDir, have, tail } from './lib.mjs';

/** GUEST_USER is the user the benchmarks log in as, standing in for the VM. */
export const GUEST_USER = 'ferry-guest';

/** sshUnavailable says why the SSH cells cannot run here, or undefined when they can. */
export function sshUnavailable() {
  if (process.getuid?.() !== 0) return 'not run: needs root (to start sshd and act as ferry-guest)';
  for (const [cmd, pkg] of [
    ['/usr/sbin/sshd', 'openssh-server'],
    ['ssh', 'openssh-client'],
    ['ssh-keygen', 'openssh-client'],
  ]) {
    if (!have(cmd)) return `missing (${cmd}: apt-get install ${pkg})`;
  }
  return undefined;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || r.error?.message || '').trim()}`);
  return r.stdout;
}

/** chownToGuest gives a tree to the guest user, as the guest's own files would be. */
export function chownToGuest(p) {
  run('chown', ['-R', `${GUEST_USER}:${GUEST_USER}`, p]);
}

/** ensureGuestUser makes sure ferry-guest exists and can log in with a key; returns its home. */
function ensureGuestUser() {
  if (spawnSync('id', [GUEST_USER], { stdio: 'ignore' }).status !== 0) run('useradd', ['-m', '-s', '/bin/sh', GUEST_USER]);
  // A locked account cannot log in even with a key (UsePAM no): unlock it without a password.
  run('usermod', ['-p', '*', GUEST_USER]);
  const home = run('sh', ['-c', `getent passwd ${GUEST_USER} | cut -d: -f6`]).trim();
  mkdirSync(home, { recursive: true });
  run('chown', [`${GUEST_USER}:${GUEST_USER}`, home]);
  return home;
}

function freePort() {
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

function waitForPort(port, timeoutMs) {
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

/**
 * startSshd starts the server with its files in dir and returns
 * { port, pid, guestHome, clientKey, knownHostsLine, knownHosts, sshOptions, stop }.
 * sshOptions are the OpenSSH client options every peer uses (key, pinned
 * host key, no agent, no prompts). sshd's stderr goes to a file, not a pipe:
 * the bench blocks in spawnSync, and a full pipe would stall sshd.
 */
export async function startSshd(dir) {
  const guestHome = ensureGuestUser();
  freshDir(dir);
  chmodSync(dir, 0o755);
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-bench-host', '-f', hostKey]);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-bench-client', '-f', clientKey]);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`));
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'UsePAM no',
      'StrictModes no',
      `AllowUsers ${GUEST_USER}`,
      'PermitRootLogin no',
      'MaxStartups 100',
      'MaxSessions 100',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const logFile = path.join(dir, 'sshd.log');
  const errFd = openSync(logFile, 'w');
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', errFd] });
  closeSync(errFd);
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  try {
    await waitForPort(port, 10_000);
  } catch (error) {
    stop();
    throw new Error(`${error.message}: ${tail(logFile)}`);
  }
  const [type, blob] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
  const knownHostsLine = `[127.0.0.1]:${port} ${type} ${blob}`;
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${knownHostsLine}\n`);
  const sshOptions = ['-i', clientKey, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes'];
  return { port, pid: child.pid, guestHome, clientKey, knownHostsLine, knownHosts, sshOptions, logFile, stop };
}

/** guestCommands returns which of `commands` the guest user finds in its PATH over ssh (by name). */
export function guestCommands(sshd, commands, env) {
  const probe = commands.map((c) => `command -v ${c}`).join('; ');
  const r = spawnSync('ssh', ['-p', String(sshd.port), ...sshd.sshOptions, `${GUEST_USER}@127.0.0.1`, `${probe}; true`], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`ssh ${GUEST_USER}@127.0.0.1 -p ${sshd.port} does not work (exit ${r.status}): ${r.stderr.trim()}\nsshd log: ${tail(sshd.logFile)}`);
  const found = r.stdout.split('\n').filter(Boolean);
  return new Set(commands.filter((c) => found.some((l) => l.endsWith(`/${c}`))));
}

/** guestUnisonCleanup returns a function that removes the archives unison leaves in ~ferry-guest/.unison from now on. */
export function guestUnisonCleanup(guestHome) {
  const dir = path.join(guestHome, '.unison');
  const existed = existsSync(dir);
  const before = new Set(existed ? readdirSync(dir) : []);
  return () => {
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      // unison's archive, fingerprint, lock and temp files are named <prefix><hash>
      if (!before.has(f) && /^(ar|fp|lk|sc|tm)[0-9a-f]/.test(f)) spawnSync('rm', ['-rf', path.join(dir, f)], { stdio: 'ignore' });
    }
    if (!existed) spawnSync('rmdir', [dir], { stdio: 'ignore' });
  };
}
