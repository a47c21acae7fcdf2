/**
 * Connecting to a guest over SSH: host keys, authentication, the agent's
 * installation by content hash. Against a real sshd on 127.0.0.1.
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FERRY_BIN, type CliResult, readTree, tempDir, writeTree } from './support/cli.js';
import { type Sshd, sshdUnavailable, startSshd } from './support/sshd.js';
import { shimsPath } from '../src/fs/native.js';
import { generateKeyPair } from '../src/transport/ssh.js';
import ssh2 from 'ssh2';

const ssh2utils = ssh2.utils;

function ferry(home: string, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], { env: { ...process.env, SSH_AUTH_SOCK: undefined, FERRY_HOME: home, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

// Needs root (sshd, the guest user); as root a missing sshd fails rather than skips.
describe.skipIf(process.getuid?.() !== 0)('ferry sync over SSH: connection', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    const unavailable = sshdUnavailable();
    if (unavailable !== undefined) throw new Error(unavailable);
    // A user of its own: this file empties the guest's agent cache, which
    // would pull it from under other test files running at the same time.
    sshd = await startSshd('ferry-guest3');
  });
  afterAll(async () => {
    await sshd.stop();
  });

  function setup(): { alpha: string; beta: string; home: string; url: string } {
    const top = tempDir('ferry-sshopt-');
    const alpha = join(top, 'alpha');
    const home = join(top, 'home');
    mkdirSync(alpha);
    mkdirSync(home);
    writeTree(alpha, { 'a.txt': 'a', 'd/b.txt': 'b' });
    const beta = sshd.guestDir('opt');
    return { alpha, beta, home, url: sshd.url(beta) };
  }

  test('an unknown host key is refused with its fingerprint, and nothing is touched', async () => {
    const { alpha, beta, home, url } = setup();
    const r = await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/host key of \[127\.0\.0\.1\]:\d+ is not known \(ssh-ed25519 SHA256:[A-Za-z0-9+/]+\); .*--accept-new-host-key/);
    expect(readTree(beta)).toEqual({});
  });

  test('--accept-new-host-key trusts and records the key; a changed key is refused', async () => {
    const { alpha, beta, home, url } = setup();
    const first = await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey, '--accept-new-host-key']);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(readTree(beta)).toEqual(readTree(alpha));
    const known = readFileSync(join(home, 'known_hosts'), 'utf8');
    expect(known).toContain(sshd.knownHostsLine.split(' ')[2]);
    // The same host:port presenting another key: refused.
    const other = join(tempDir('ferry-otherkey-'), 'k');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const [type, blob] = readFileSync(`${other}.pub`, 'utf8').split(' ');
    writeFileSync(join(home, 'known_hosts'), `[127.0.0.1]:${sshd.port} ${type ?? ''} ${blob ?? ''}\n`);
    writeFileSync(join(alpha, 'a.txt'), 'changed');
    const r = await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/NOT the one recorded in known_hosts/);
    expect(readFileSync(join(beta, 'a.txt'), 'utf8')).toBe('a');
  });

  test('authenticates through ssh-agent, and says what to do when no key works', async () => {
    const { alpha, beta, home, url } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const noKey = await ferry(home, ['sync', alpha, url, '--once'], { HOME: tempDir('ferry-nohome-') });
    expect(noKey.status).toBe(1);
    expect(noKey.stderr).toMatch(/SSH authentication as ferry-guest3@127\.0\.0\.1 failed; give --key FILE, or load the key into ssh-agent/);
    await withSshAgent(async (sock) => {
      const r = await ferry(home, ['sync', alpha, url, '--once'], { SSH_AUTH_SOCK: sock, HOME: tempDir('ferry-nohome-') });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(readTree(beta)).toEqual(readTree(alpha));
    });
  });

  // Runs `fn` with a real ssh-agent holding the guest's client key.
  async function withSshAgent(fn: (sock: string) => Promise<void>): Promise<void> {
    const sock = join(tempDir('ferry-agent-'), 'agent.sock');
    const agent = spawnSync('ssh-agent', ['-a', sock], { encoding: 'utf8' });
    expect(agent.status).toBe(0);
    const pid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1];
    try {
      execFileSync('ssh-add', ['-q', sshd.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      await fn(sock);
    } finally {
      if (pid !== undefined) process.kill(Number(pid));
    }
  }

  // A home whose ~/.ssh holds `keys`: name to the key file to copy there.
  function sshHome(keys: Record<string, string>): string {
    const home = tempDir('ferry-userhome-');
    mkdirSync(join(home, '.ssh'), { mode: 0o700 });
    for (const [name, from] of Object.entries(keys)) writeFileSync(join(home, '.ssh', name), readFileSync(from), { mode: 0o600 });
    return home;
  }

  function encryptedKey(): string {
    const file = join(tempDir('ferry-enckey-'), 'k');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', file]);
    return file;
  }

  test('a key file protected by a passphrase is left to ssh-agent, and the failure says how to load it', async () => {
    const { alpha, beta, home, url } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const source = encryptedKey();
    const userHome = sshHome({ id_ed25519: source });
    const locked = join(userHome, '.ssh', 'id_ed25519');
    const noAgent = await ferry(home, ['sync', alpha, url, '--once'], { HOME: userHome });
    expect(noAgent.status).toBe(1);
    expect(noAgent.stderr).toContain(`Not tried: ${locked} (protected by a passphrase, which ferry does not ask for: load it into ssh-agent with \`ssh-add ${locked}\`)`);
    const given = await ferry(home, ['sync', alpha, url, '--once', '--key', locked], { HOME: userHome });
    expect(given.status).toBe(2);
    expect(given.stderr).toContain(`--key ${locked} is protected by a passphrase`);
    const pub = await ferry(home, ['sync', alpha, url, '--once', '--key', `${source}.pub`], { HOME: userHome });
    expect(pub.status).toBe(2);
    expect(pub.stderr).toContain('not a private key (a public key, perhaps');
    expect(readTree(beta)).toEqual({});

    // The usual desktop: the locked key in ~/.ssh, the working one in ssh-agent.
    await withSshAgent(async (sock) => {
      const r = await ferry(home, ['sync', alpha, url, '--once'], { SSH_AUTH_SOCK: sock, HOME: userHome });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(readTree(beta)).toEqual(readTree(alpha));
    });
  });

  test('an ssh-agent that cannot be reached is skipped: the key files are tried, and the failure names it', async () => {
    const { alpha, beta, home, url } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const stale = join(tempDir('ferry-agent-'), 'gone.sock');
    const nothing = await ferry(home, ['sync', alpha, url, '--once'], { SSH_AUTH_SOCK: stale, HOME: sshHome({}) });
    expect(nothing.status).toBe(1);
    expect(nothing.stderr).toContain(`Tried: ssh-agent. Errors: ssh-agent (SSH_AUTH_SOCK=${stale}): Failed to connect to agent.`);
    // The second default name, after an unusable first one.
    const r = await ferry(home, ['sync', alpha, url, '--once'], { SSH_AUTH_SOCK: stale, HOME: sshHome({ id_ed25519: encryptedKey(), id_rsa: sshd.clientKey }) });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readTree(beta)).toEqual(readTree(alpha));
  });

  test('a Host alias of ~/.ssh/config leads where ssh would take it: its HostName, User, Port and IdentityFile', async () => {
    const { alpha, beta, home, url } = setup();
    // known_hosts names the machine's address, not the alias, as for ssh.
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const userHome = sshHome({});
    const key = join(tempDir('ferry-keys-'), 'guest key');
    writeFileSync(key, readFileSync(sshd.clientKey), { mode: 0o600 });
    writeFileSync(
      join(userHome, '.ssh', 'config'),
      `Host myguest\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile "${key}"\nHost hidden\n  ProxyJump myguest\nHost *\n  Port 1\n`,
    );
    const path = url.slice(url.indexOf('/', 'ssh://'.length));
    const r = await ferry(home, ['sync', alpha, `myguest:${path}`, '--once', '--json'], { HOME: userHome });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { beta: string }).beta).toBe(`ssh://${sshd.user}@myguest:${sshd.port}${path}`);
    expect(readTree(beta)).toEqual(readTree(alpha));
    // A key that --accept-new-host-key recorded under the alias still counts.
    const aliasHome = tempDir('ferry-aliashome-');
    writeFileSync(join(aliasHome, 'known_hosts'), `${sshd.knownHostsLine.replace('[127.0.0.1]', '[myguest]')}\n`);
    const byAlias = await ferry(aliasHome, ['sync', alpha, `myguest:${path}`, '--once'], { HOME: userHome });
    expect(byAlias.stderr).toBe('');
    expect(byAlias.status).toBe(0);
    const proxied = await ferry(home, ['sync', alpha, `hidden:${path}`, '--once'], { HOME: userHome });
    expect(proxied.status).toBe(2);
    expect(proxied.stderr).toContain('~/.ssh/config reaches hidden through ProxyJump myguest, which ferry cannot follow');
  });

  test("~/.ssh/config's UserKnownHostsFile and HostKeyAlias say where the host key is known and under which name", async () => {
    const { alpha, beta, home, url } = setup();
    const userHome = sshHome({});
    const keyLine = sshd.knownHostsLine.slice(sshd.knownHostsLine.indexOf(' ') + 1);
    writeFileSync(join(userHome, '.ssh', 'vms_known'), `myvm-key ${keyLine}\n`);
    // ~/.ssh/known_hosts says otherwise of the address: it is not read for this host.
    writeFileSync(join(userHome, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    writeFileSync(
      join(userHome, '.ssh', 'config'),
      `Host myvm\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.clientKey}\n  UserKnownHostsFile ~/.ssh/vms_known\n  HostKeyAlias myvm-key\n`,
    );
    const path = url.slice(url.indexOf('/', 'ssh://'.length));
    const r = await ferry(home, ['sync', alpha, `myvm:${path}`, '--once'], { HOME: userHome });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readTree(beta)).toEqual(readTree(alpha));
    // Unknown under its alias, the key is recorded under the alias.
    writeFileSync(join(userHome, '.ssh', 'vms_known'), '');
    const fresh = tempDir('ferry-aliashome-');
    const refused = await ferry(fresh, ['sync', alpha, `myvm:${path}`, '--once'], { HOME: userHome });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`the host key of myvm-key is not known (ssh-ed25519 SHA256:`);
    expect(refused.stderr).toContain(`ferry looked in ${join(userHome, '.ssh', 'vms_known')} and ${join(fresh, 'known_hosts')};`);
    const accepted = await ferry(fresh, ['sync', alpha, `myvm:${path}`, '--once', '--accept-new-host-key'], { HOME: userHome });
    expect(accepted.status, accepted.stderr).toBe(0);
    expect(readFileSync(join(fresh, 'known_hosts'), 'utf8')).toBe(`myvm-key ${keyLine}\n`);
  });

  test('the agent, the native shims and the watcher binding are installed once per build, by content hash, under ~/.cache/ferry', async () => {
    const { alpha, home, url } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const cache = join(sshd.guestHome, '.cache', 'ferry');
    rmSync(cache, { recursive: true, force: true });
    expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
    const installed = readdirSync(cache).sort();
    expect(installed).toHaveLength(3);
    expect(installed[0]).toMatch(/^agent-[0-9a-f]{16}\.mjs$/);
    expect(installed[1]).toMatch(/^shims-[0-9a-f]{16}\.node$/);
    expect(installed[2]).toMatch(/^watcher-[0-9a-f]{16}\.node$/);
    // The guest runs this machine's platform: it gets the shims built here.
    expect(readFileSync(join(cache, installed[1] ?? '')).equals(readFileSync(shimsPath()))).toBe(true);
    const file = join(cache, installed[0] ?? '');
    expect(statSync(file).uid).not.toBe(0);
    const before = statSync(file).mtimeMs;
    writeFileSync(join(alpha, 'a.txt'), 'again');
    expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
    expect(readdirSync(cache).sort()).toEqual(installed);
    expect(statSync(file).mtimeMs).toBe(before);
    // The agent is there but not its shims, or not its watcher: the quick
    // start falls back to the probe, which installs the missing one again.
    for (const [n, part] of [installed[1], installed[2]].entries()) {
      rmSync(join(cache, part ?? ''));
      writeFileSync(join(alpha, 'a.txt'), `and again ${n}`);
      expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
      expect(readdirSync(cache).sort()).toEqual(installed);
      expect(statSync(file).mtimeMs).toBe(before);
    }
  });

  test('installing a build sweeps the builds of other versions installed more than a week ago, and nothing else', async () => {
    const { alpha, home, url } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const cache = join(sshd.guestHome, '.cache', 'ferry');
    expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
    const current = readdirSync(cache).sort();
    const agent = current.find((name) => name.startsWith('agent-')) ?? '';
    const old = new Date(Date.now() - 30 * 86_400_000);
    const recent = new Date(Date.now() - 86_400_000);
    const plant = (name: string, when: Date) => {
      writeFileSync(join(cache, name), 'x');
      utimesSync(join(cache, name), when, when);
    };
    plant('agent-0123456789abcdef.mjs', old);
    plant('watcher-0123456789abcdef.node', old);
    plant('shims-0123456789abcdef.node.tmp.77', old);
    plant('agent-fedcba9876543210.mjs', recent);
    plant('notes.txt', old);
    // This build's native files are as old, and still in use: they stay.
    for (const name of current) utimesSync(join(cache, name), old, old);
    // Nothing is installed, nothing is swept.
    writeFileSync(join(alpha, 'a.txt'), 'quick start');
    expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
    expect(readdirSync(cache)).toContain('agent-0123456789abcdef.mjs');
    rmSync(join(cache, agent));
    writeFileSync(join(alpha, 'a.txt'), 'installed again');
    expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
    expect(readdirSync(cache).sort()).toEqual([...current, 'agent-fedcba9876543210.mjs', 'notes.txt'].sort());
  });

  test('FERRY_GUEST_DISK=portable keeps the native shims out of the guest; the agent then works on plain Node', async () => {
    const { alpha, beta, home, url } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const cache = join(sshd.guestHome, '.cache', 'ferry');
    rmSync(cache, { recursive: true, force: true });
    const run = async (env: Record<string, string>) => {
      const r = await ferry(home, ['sync', alpha, url, '--once', '--json', '--key', sshd.clientKey], env);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return (JSON.parse(r.stdout) as { agent?: { disk: string; node: string } }).agent;
    };
    expect(await run({ FERRY_GUEST_DISK: 'portable' })).toEqual({ disk: 'portable', node: process.versions.node });
    expect(readdirSync(cache).some((name) => name.startsWith('shims-'))).toBe(false);
    expect(readTree(beta)).toEqual(readTree(alpha));
    writeFileSync(join(alpha, 'a.txt'), 'natively');
    expect(await run({})).toEqual({ disk: 'native', node: process.versions.node });
    expect(readdirSync(cache).some((name) => name.startsWith('shims-'))).toBe(true);
    expect(readTree(beta)).toEqual(readTree(alpha));
  });

  test('a guest without Node.js: a clear error naming what to install, with its agent installed or not', async () => {
    // The guest's PATH holds a shell and the tools the installer uses, but no node.
    const bin = tempDir('ferry-nonode-');
    for (const tool of ['sh', 'mkdir', 'cat', 'mv', 'ls', 'test', '[', 'echo']) {
      const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (found.startsWith('/')) execFileSync('ln', ['-s', found, join(bin, tool)]);
    }
    execFileSync('chmod', ['755', bin]);
    const bare = await startSshd('ferry-guest3', [`SetEnv PATH=${bin}`]);
    try {
      const top = tempDir('ferry-nonode-top-');
      const alpha = join(top, 'alpha');
      const home = join(top, 'home');
      mkdirSync(alpha);
      mkdirSync(home);
      writeTree(alpha, { 'a.txt': 'a' });
      writeFileSync(join(home, 'known_hosts'), `${bare.knownHostsLine}\n`);
      const beta = bare.guestDir('nonode');
      for (const cached of ['with the agent in its cache', 'with an empty cache']) {
        const r = await ferry(home, ['sync', alpha, bare.url(beta), '--once', '--key', bare.clientKey]);
        expect(r.status, cached).toBe(1);
        expect(r.stderr, cached).toMatch(/Node\.js is not installed in \S+; ferry's guest agent needs Node\.js 18 or newer there \(for example `apt-get install nodejs`\)/);
        expect(readdirSync(beta), cached).toEqual([]);
        rmSync(join(bare.guestHome, '.cache', 'ferry'), { recursive: true, force: true });
      }
    } finally {
      await bare.stop();
    }
  });

  test('a guest directory that does not exist is a usage error, and so is a file or a link in its place; one that cannot be opened says so; one that vanished halts', async () => {
    const { alpha, beta, home } = setup();
    writeFileSync(join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const missing = sshd.url(`${beta}-missing`);
    const r = await ferry(home, ['sync', alpha, missing, '--once', '--key', sshd.clientKey, '--json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no such directory in the guest/);
    const doc = JSON.parse(r.stdout) as { status: string; exit: number; message: string };
    expect([doc.status, doc.exit]).toEqual(['error', 2]);
    expect(doc.message).toMatch(/no such directory in the guest/);
    // A link to the directory, and a file: there, but nothing ferry syncs into.
    const holder = sshd.guestDir('opt-links');
    symlinkSync(beta, join(holder, 'link'));
    writeFileSync(join(holder, 'file'), 'not a directory');
    sshd.chownToGuest(holder);
    for (const [name, leadsTo] of [
      ['link', realpathSync(beta)],
      ['file', join(realpathSync(holder), 'file')],
    ] as const) {
      const there = await ferry(home, ['sync', alpha, sshd.url(join(holder, name)), '--once', '--key', sshd.clientKey]);
      expect(there.status, name).toBe(2);
      expect(there.stderr, name).toContain(`not a directory in the guest but a file or a symbolic link (leading to ${leadsTo}); ferry follows no links`);
    }
    expect(readdirSync(beta)).toEqual([]);
    expect(readFileSync(join(holder, 'file'), 'utf8')).toBe('not a directory');
    const url = sshd.url(beta);
    expect((await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey])).status).toBe(0);
    chmodSync(beta, 0o000);
    const locked = await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey]);
    chmodSync(beta, 0o755);
    expect(locked.status).toBe(1);
    expect(locked.stderr).toMatch(/unable to open the beta root .*: EACCES/);
    rmSync(beta, { recursive: true });
    const gone = await ferry(home, ['sync', alpha, url, '--once', '--key', sshd.clientKey]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/has vanished since the last sync; nothing was changed/);
    expect(readTree(alpha)).toEqual({ 'a.txt': 'a', d: null, 'd/b.txt': 'b' });
  });
});

// The key `ferry vm add` makes when given none.
describe('generateKeyPair', () => {
  const publicBytes = (line: string) => Buffer.from(line.split(' ')[1] ?? '', 'base64').subarray(-32);

  test('every key it makes reads back, in ssh2 and in ssh-keygen, with a public key that starts with a zero byte too', () => {
    const pairs: { private: string; public: string }[] = [];
    // Until one public key starts with a zero byte (one in 256), and 300 at least.
    for (let i = 0; i < 20_000 && (pairs.length < 300 || !pairs.some((p) => publicBytes(p.public)[0] === 0)); i++) pairs.push(generateKeyPair(`ferry-vm-t${i}`));
    const zeroLed = pairs.filter((p) => publicBytes(p.public)[0] === 0);
    expect(zeroLed.length).toBeGreaterThan(0);
    for (const pair of pairs) {
      const priv = ssh2utils.parseKey(pair.private);
      const pub = ssh2utils.parseKey(pair.public);
      if (priv instanceof Error) throw priv;
      if (pub instanceof Error) throw pub;
      expect(priv.type).toBe('ssh-ed25519');
      expect(priv.getPublicSSH().equals(pub.getPublicSSH())).toBe(true);
      const data = Buffer.from(pair.public);
      expect(pub.verify(data, priv.sign(data))).toBe(true);
    }
    // OpenSSH derives the same public key from the private one.
    const dir = tempDir('ferry-keygen-');
    for (const [i, pair] of [pairs[0], zeroLed[0]].entries()) {
      const file = join(dir, `k${i}`);
      writeFileSync(file, pair?.private ?? '', { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
      expect(derived.split(' ').slice(0, 2)).toEqual(pair?.public.split(' ').slice(0, 2));
    }
  });
});
