/**
 * The hostile-guest suite against the powerbox: one real `ferry daemon` with
 * two VMs, each a real sshd on loopback with its own user. VM "good" holds a
 * directory grant for the whole suite; VM "evil" is a compromised guest that
 * has replaced the agent the daemon installed in it (~/.cache/ferry/
 * agent-<hash>.mjs) with support/hostile-agent.mjs, which lies as its
 * hostile.json says, and whose guest user plants links, special files, odd
 * names and odd modes in its copy of a grant, and races the host.
 *
 * Every case proves, beside its own outcome (a grant refused with the reason
 * logged, or what the host got): every host file outside the grant is
 * byte-identical, with the same modes, and nothing new appeared beside it;
 * nothing executable, setuid, setgid or special appeared in the grant on the
 * host; the daemon is alive and still keeps VM good's grant in step both
 * ways (DESIGN: trust model, rules 3-8).
 *
 * Cases marked `test.fails` are bugs this suite found and pins down until
 * they are fixed: each says BUG and what it is; when one starts passing,
 * vitest fails it, and the marker comes off.
 */

import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { AGENT_BUNDLE, installedAgentName } from './support/agent.js';
import { type LogRow, auditLog } from './support/audit-log.js';
import { type CliResult, type Tree, runFerry, tempDir, writeTree } from './support/cli.js';
import { Daemon } from './support/daemon.js';
import { type Snapshot, dangerous, snapshot } from './support/snapshot.js';
import { type Sshd, startSshd, sshdUnavailable } from './support/sshd.js';
import type { GuestDisk } from '../src/protocol/messages.js';
import { eventually, sleep, until } from './support/wait.js';

const skip = sshdUnavailable();
if (skip !== undefined) console.warn(`confinement tests skipped: ${skip}`);

const HOSTILE_AGENT = join(dirname(fileURLToPath(import.meta.url)), 'support', 'hostile-agent.mjs');
/** Seconds an agent may leave requests unanswered (the daemon's FERRY_AGENT_TIMEOUT). */
const AGENT_TIMEOUT_S = 3;
/** The daemon's environment: a guest that leaves requests unanswered is cut off after AGENT_TIMEOUT_S. */
const DAEMON_ENV = { FERRY_AGENT_TIMEOUT: String(AGENT_TIMEOUT_S) };
/** No `ferry grant` may take longer than this against a hostile guest. */
const GRANT_LIMIT_MS = 30_000;
/** How long a grant to a stalled guest may take: the timeout, a watchdog tick and some slack. */
const LORIS_LIMIT_MS = 4 * AGENT_TIMEOUT_S * 1000;
/** What the daemon gives a new file on the host: 0666 less its umask (the daemon inherits ours). */
const NEW_FILE_MODE = 0o666 & ~process.umask();
/** How many entries the agent claims in its endless directory (its listing is then about 2.2 MB). */
const HUGE_ENTRIES = '20000';
const MiB = 2 ** 20;
/** A file a grant starts with, so that the first sync has something to carry to the guest. */
const HOST_TREE: Tree = { 'readme.txt': 'from the host\n', 'sub/notes.txt': 'host notes\n' };

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** mode returns the permission bits of path (not following a link). */
function mode(path: string): number {
  return lstatSync(path).mode & 0o7777;
}

/** peakMemory is the peak resident set of a process, in bytes. */
function peakMemory(pid: number): number {
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kib) * 1024;
}

/** opened waits (polling /proc tightly, up to timeoutMs) until a process of `uid` has `path` open; says whether it saw one. */
async function opened(path: string, uid: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (statSync(`/proc/${pid}`).uid !== uid) continue;
        for (const fd of readdirSync(`/proc/${pid}/fd`)) if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) return true;
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

/** sample reads a file every 5 ms while `during` runs and returns what it found each time (undefined: absent). */
async function sample(path: string, during: () => Promise<void>): Promise<(Buffer | undefined)[]> {
  const seen: (Buffer | undefined)[] = [];
  const timer = setInterval(() => {
    try {
      seen.push(readFileSync(path));
    } catch {
      seen.push(undefined);
    }
  }, 5);
  try {
    await during();
  } finally {
    clearInterval(timer);
  }
  return seen;
}

/** A protocol violation: the grant refused, with the reason on stderr and in the audit log. */
interface Violation {
  /** The hostile agent's mode. */
  readonly mode: string;
  readonly what: string;
  /** The reason, as ferry words it. */
  readonly reason: RegExp;
  /** The kind of the audit entry: a broken protocol, or a limit hit. */
  readonly kind?: 'protocol-violation' | 'limit';
  /** The agent's PARAM, given the host's directory around the grant. */
  readonly param?: (top: string) => string;
  /** More arguments for `ferry grant`. */
  readonly args?: readonly string[];
}

const INVALID_NAME = (problem: string) => new RegExp(`listing entry 0 has an invalid name \\(${problem}\\)`);
const IMPOSSIBLE_NAME = /listing entry 0 has an impossible name/;

/** Lies told during a grant's first sync: each must refuse the grant. */
const VIOLATIONS: Violation[] = [
  // Path traversal, every form.
  { mode: 'name-dotdot', what: 'a listing entry named ".."', reason: INVALID_NAME('component "\\.\\." is not allowed') },
  { mode: 'name-dot', what: 'a listing entry named "."', reason: INVALID_NAME('component "\\." is not allowed') },
  { mode: 'name-traversal', what: 'a listing entry named "../../escaped"', reason: IMPOSSIBLE_NAME },
  { mode: 'name-updown', what: 'a listing entry named "a/../../b"', reason: IMPOSSIBLE_NAME },
  { mode: 'name-slash', what: 'a listing entry named "a/b"', reason: IMPOSSIBLE_NAME },
  { mode: 'name-empty', what: 'a listing entry with an empty name', reason: IMPOSSIBLE_NAME },
  { mode: 'name-abs', what: 'a listing entry named by an absolute host path', reason: IMPOSSIBLE_NAME, param: (top) => join(top, 'planted') },
  { mode: 'changed-dotdot', what: 'a change notice naming "../.."', reason: /changed dir 0: component "\.\." is not allowed/ },
  { mode: 'changed-abs', what: 'a change notice naming the absolute directory /etc', reason: /changed dir 0: empty component/ },
  { mode: 'list-escape', what: 'a listing of a directory that names its parent and a file', reason: INVALID_NAME('component "\\.\\." is not allowed') },
  // Names no path may hold.
  { mode: 'name-nul', what: 'a listing entry with NUL in its name', reason: IMPOSSIBLE_NAME },
  { mode: 'name-ctrl', what: 'a listing entry with \\u0001 in its name', reason: INVALID_NAME('component contains a control character') },
  { mode: 'name-del', what: 'a listing entry with DEL in its name', reason: INVALID_NAME('component contains a control character') },
  { mode: 'name-surrogate', what: 'a listing entry with a lone surrogate (\\udc80) in its name', reason: INVALID_NAME('component is not valid Unicode') },
  { mode: 'name-long', what: 'a listing entry with a 300-byte name', reason: INVALID_NAME('component is longer than 255 bytes') },
  { mode: 'changed-long', what: 'a change notice naming a 4201-byte path', reason: /changed dir 0: path is longer than 4096 bytes/ },
  // Frames.
  { mode: 'bad-utf8', what: 'a frame that is not UTF-8', reason: /a message is not valid UTF-8/ },
  { mode: 'oversize', what: 'a frame over the 16 MiB limit', reason: /frame of 16777217 bytes is outside 1\.\.16777216/ },
  { mode: 'zero-frame', what: 'a frame of length 0', reason: /frame of 0 bytes is outside 1\.\.16777216/ },
  { mode: 'frame-type', what: 'a frame of an unknown type', reason: /unknown frame type 7/ },
  { mode: 'bad-json', what: 'a message that is not JSON', reason: /a message is not valid JSON/ },
  // Replies nobody asked for.
  { mode: 'unknown-id', what: 'a reply to a request never made', reason: /a reply to request 987654, which was never made or is already answered/ },
  { mode: 'duplicate-reply', what: 'a second reply to an answered request', reason: /a reply to request \d+, which was never made or is already answered/ },
  { mode: 'data-unknown', what: 'data for a request that is not a read', reason: /data for request \d+, which is not a read in progress/ },
  { mode: 'wrong-kind', what: 'a reply of the wrong kind', reason: /a "hash" reply to a request that expects ok/ },
  // A directory with no end of entries, against a frame limit.
  {
    mode: 'huge-listing',
    what: 'a directory listing of as many entries as 16 MiB holds, under --max-frame-size 1M',
    reason: /limit hit: a frame of \d+ bytes, more than the 1048576 allowed/,
    kind: 'limit',
    args: ['--max-frame-size', '1M'],
  },
];

describe.skipIf(skip !== undefined)('a compromised guest against the powerbox daemon', () => {
  let evil: Sshd;
  let good: Sshd;
  let home = '';
  let daemon: Daemon;
  /** The evil guest's agent directory, where hostile.json and the honest bundle live. */
  let evilCache = '';
  let honestAgent = '';
  let goodHost = '';
  let goodGuest = '';
  let checks = 0;

  const ferry = (args: string[], timeoutMs = 120_000) => runFerry(home, args, timeoutMs);
  const json = async (...args: string[]): Promise<unknown> => {
    const r = await ferry([...args, '--json']);
    expect(r.status, `ferry ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as unknown;
  };
  // Writes in a guest as root, then hands the file to the guest user.
  const guestWrite = (vm: Sshd, path: string, content: string | Buffer) => {
    writeFileSync(path, content);
    chownSync(path, uid(vm), uid(vm));
  };
  // The guest user's uid: it owns its home.
  const uid = (vm: Sshd): number => statSync(vm.guestHome).uid;

  /** hostile sets what the evil guest's agent does on its next channels. */
  const hostile = (mode: string, param?: string, disk: GuestDisk = 'native') => {
    const file = join(evilCache, 'hostile.json');
    writeFileSync(file, JSON.stringify({ mode, agent: honestAgent, disk, ...(param !== undefined ? { param } : {}) }));
    evil.chownToGuest(file);
    rmSync(join(evilCache, 'hostile.log'), { force: true });
  };

  /** evilGrants returns VM evil's active grants. */
  const evilGrants = async () => ((await json('grants', '--vm', 'evil')) as { id: number; state: string }[]).filter((g) => g.state === 'active');

  /**
   * settle waits until a grant's status and last sync stay the same for
   * three looks in a row: its session is between passes (or stuck waiting
   * on its guest), not in the middle of one. Revoking a grant in the middle
   * of a pass can take the daemon down (see the last cases), so every revoke
   * but that case's waits for this first.
   */
  const settle = async (id: number) => {
    let last = '';
    let steady = 0;
    await until(async () => {
      const status = (await json('status')) as { grants: { id: number; status: string; lastSyncAt: string | null }[] };
      const grant = status.grants.find((g) => g.id === id);
      const now = `${grant?.status ?? 'gone'} ${grant?.lastSyncAt ?? ''}`;
      steady = now === last ? steady + 1 : 0;
      last = now;
      return steady >= 3;
    }, `grant ${id} between passes`);
  };

  /** revokeEvil revokes VM evil's active grants, each once it is between passes. */
  const revokeEvil = async () => {
    for (const grant of await evilGrants()) {
      await settle(grant.id);
      const r = await ferry(['revoke', String(grant.id)]);
      expect(r.status, r.stderr).toBe(0);
    }
  };

  /** restartIfDead starts the daemon again if a case took it down, the guest honest again, and waits for its grants to resume. */
  const restartIfDead = async () => {
    if (daemon.running) return;
    hostile('pass');
    daemon = new Daemon(home, DAEMON_ENV);
    await daemon.ready();
    for (const grant of await evilGrants()) await settle(grant.id);
  };

  /** goodServes proves VM good's grant still flows both ways. */
  const goodServes = async () => {
    const n = ++checks;
    writeFileSync(join(goodHost, `host-${n}.txt`), `from the host, check ${n}\n`);
    guestWrite(good, join(goodGuest, `guest-${n}.txt`), `from the guest, check ${n}\n`);
    await eventually(() => {
      expect(read(join(goodGuest, `host-${n}.txt`))).toBe(`from the host, check ${n}\n`);
      expect(read(join(goodHost, `guest-${n}.txt`))).toBe(`from the guest, check ${n}\n`);
    }, 20_000);
  };

  beforeAll(async () => {
    [evil, good] = await Promise.all([startSshd('ferry-guest4'), startSshd('ferry-guest5')]);
    // A guest copy or agent left by an earlier run would be merged or kept.
    for (const vm of [evil, good]) {
      rmSync(join(vm.guestHome, 'Granted'), { recursive: true, force: true });
      rmSync(join(vm.guestHome, '.cache', 'ferry'), { recursive: true, force: true });
    }
    home = tempDir('ferry-confinement-');
    daemon = new Daemon(home, DAEMON_ENV);
    await daemon.ready();
    await json('vm', 'add', 'evil', '--ssh', `${evil.user}@127.0.0.1:${evil.port}`, '--key', evil.clientKey);
    await json('vm', 'add', 'good', '--ssh', `${good.user}@127.0.0.1:${good.port}`, '--key', good.clientKey);

    goodHost = join(tempDir('ferry-confinement-good-'), 'shared');
    writeTree(goodHost, { 'hello.txt': 'hello, good guest\n' });
    const granted = (await json('grant', 'good', goodHost)) as { guestPath: string };
    goodGuest = join(good.guestHome, granted.guestPath);
    expect(read(join(goodGuest, 'hello.txt'))).toBe('hello, good guest\n');

    // An honest first grant installs the agent in the evil guest; the guest then replaces it.
    const first = join(tempDir('ferry-confinement-first-'), 'first');
    writeTree(first, { 'a.txt': 'a' });
    const honest = (await json('grant', 'evil', first)) as { id: number };
    await json('revoke', String(honest.id));
    evilCache = join(evil.guestHome, '.cache', 'ferry');
    // This build's agent: agents of other builds may lie beside it.
    const installed = join(evilCache, installedAgentName());
    expect(existsSync(installed)).toBe(true);
    honestAgent = join(evilCache, 'honest-agent.mjs');
    copyFileSync(AGENT_BUNDLE, honestAgent);
    copyFileSync(HOSTILE_AGENT, installed);
    hostile('pass');
    evil.chownToGuest(evilCache);
  }, 90_000);

  afterAll(async () => {
    const status = await daemon?.stop();
    await Promise.all([evil?.stop(), good?.stop()]);
    for (const vm of [evil, good]) if (vm !== undefined) rmSync(join(vm.guestHome, 'Granted'), { recursive: true, force: true });
    expect(status).toBe(0);
  });

  // A case that failed half-way leaves no grant behind for the next one.
  afterEach(async () => {
    await restartIfDead();
    await revokeEvil();
  });

  /**
   * Scene is one case's host material: `top` (mode 0755) holds the granted
   * directory and, around it, what must never change: a sibling file, a
   * decoy etc/ with passwd and shadow, and decoy/, a directory the evil
   * guest user owns and may write (so a write that escaped through a guest
   * link would show here, on the host).
   */
  class Scene {
    readonly top = tempDir('ferry-confine-');
    readonly host: string;
    readonly decoy: string;
    readonly before: Snapshot;
    /** The grant as the host made it: its own executable files are not the guest's doing. */
    readonly hostOwn: Snapshot;
    readonly logMark = auditLog(home).length;
    guestPath = '';
    grantId = 0;

    constructor(tree: Tree = HOST_TREE) {
      chmodSync(this.top, 0o755);
      this.host = join(this.top, `granted-${basename(this.top)}`);
      mkdirSync(this.host);
      writeTree(this.host, tree);
      writeTree(this.top, { 'sibling.txt': 'beside the grant\n', 'etc/passwd': 'root:x:0:0:decoy:/root:/bin/sh\n', 'etc/shadow': 'root:*:0:0:::::\n', 'decoy/target.txt': 'the guest user owns me\n' });
      chmodSync(join(this.top, 'etc', 'shadow'), 0o600);
      this.decoy = join(this.top, 'decoy');
      evil.chownToGuest(this.decoy);
      this.before = snapshot(this.top, new Set([basename(this.host)]));
      this.hostOwn = snapshot(this.host);
    }

    /** guest is the grant's guest copy (once granted). */
    get guest(): string {
      return join(evil.guestHome, this.guestPath);
    }

    /** The disk the real agent behind the hostile one works on: the native shims the daemon uploads, unless a case says otherwise. */
    agentDisk: GuestDisk = 'native';

    /** grant runs `ferry grant evil` with the agent in `mode`; one still running after limitMs is killed (status null). */
    async grant(mode: string, param?: string, args: readonly string[] = [], limitMs = GRANT_LIMIT_MS + 30_000): Promise<CliResult & { ms: number }> {
      hostile(mode, param, this.agentDisk);
      const started = Date.now();
      const r = await ferry(['grant', 'evil', this.host, '--json', ...args], limitMs).catch((error: unknown) => ({ status: null, stdout: '', stderr: (error as Error).message }));
      const ms = Date.now() - started;
      if (r.status === 0) {
        const granted = JSON.parse(r.stdout) as { id: number; guestPath: string };
        this.grantId = granted.id;
        this.guestPath = granted.guestPath;
      }
      return { ...r, ms };
    }

    /** granted grants with the agent in `mode` and expects the first sync to succeed. */
    async granted(mode = 'pass', param?: string): Promise<void> {
      const r = await this.grant(mode, param);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(read(join(this.guest, 'readme.txt'))).toBe('from the host\n');
    }

    /** log returns the audit entries written since the case began. */
    log(): LogRow[] {
      return auditLog(home).slice(this.logMark);
    }

    /** violations returns this case's entries of `kind` about VM evil. */
    violations(kind: 'protocol-violation' | 'limit' = 'protocol-violation'): string[] {
      return this.log()
        .filter((e) => e.kind === kind && /^VM evil, grant \d+: /.test(e.detail))
        .map((e) => e.detail);
    }

    /** plant runs `make` in the guest copy as root, then hands what it made to the guest user. */
    plant(name: string | Buffer, make: (path: string | Buffer) => void): void {
      const path = typeof name === 'string' ? join(this.guest, name) : Buffer.concat([Buffer.from(`${this.guest}/`), name]);
      make(path);
      lchownSync(path, uid(evil), uid(evil));
    }

    /**
     * whileRead puts `content` in the guest copy as `name` all at once
     * (written beside it, then renamed in), waits until the guest agent is
     * reading it, then runs `meanwhile` on it; returns the host's copy as
     * seen every 5 ms all along (undefined: absent).
     */
    async whileRead(name: string, content: Buffer, meanwhile: (path: string) => Promise<void>): Promise<(Buffer | undefined)[]> {
      const path = join(this.guest, name);
      const staged = join(this.guest, '..', `${name}-${basename(this.top)}`);
      writeFileSync(staged, content);
      chownSync(staged, uid(evil), uid(evil));
      return sample(join(this.host, name), async () => {
        renameSync(staged, path);
        expect(await opened(path, uid(evil)), `the guest agent caught reading ${name}`).toBe(true);
        await meanwhile(path);
      });
    }

    /** marker writes a file in the guest copy and waits for it on the host: whatever was planted before it has been seen. */
    async marker(name = 'marker.txt'): Promise<void> {
      guestWrite(evil, join(this.guest, name), `marker ${name}\n`);
      await eventually(() => expect(read(join(this.host, name))).toBe(`marker ${name}\n`), 20_000);
    }

    /**
     * verify checks what every case must leave true: the host outside the
     * grant byte-identical (but for the directories named, which the guest
     * user may write), nothing dangerous in the grant that the host did not
     * put there itself, VM good served and never accused, the daemon alive.
     */
    async verify(guestWritable: readonly string[] = []): Promise<void> {
      await revokeEvil();
      const outside = (snap: Snapshot) => Object.fromEntries(Object.entries(snap).filter(([path]) => !guestWritable.some((dir) => path === dir || path.startsWith(`${dir}/`))));
      expect(outside(snapshot(this.top, new Set([basename(this.host)])))).toEqual(outside(this.before));
      const now = snapshot(this.host);
      const untouched = Object.keys(now).filter((path) => now[path] === this.hostOwn[path] && now[path]?.startsWith('file') === true);
      expect(dangerous(this.host, new Set(untouched))).toEqual([]);
      expect(daemon.running).toBe(true);
      await goodServes();
      expect(this.log().filter((e) => /^VM good, grant /.test(e.detail))).toEqual([]);
    }
  }

  /** hostileCase is one case: its own body on a fresh scene, then the checks every case makes. */
  const hostileCase = (name: string, body: (s: Scene) => Promise<void>, timeoutMs = 60_000) =>
    test(
      name,
      async () => {
        const s = new Scene();
        await body(s);
        await s.verify();
      },
      timeoutMs,
    );

  for (const c of VIOLATIONS) {
    test(`${c.what}: the grant is refused and logged`, async () => {
      const s = new Scene();
      const r = await s.grant(c.mode, c.param?.(s.top), c.args);
      expect(r.ms).toBeLessThan(GRANT_LIMIT_MS);
      expect(r.status, r.stdout).toBe(1);
      expect(r.stderr).toMatch(/^ferry: /);
      expect(r.stderr).toMatch(c.reason);
      expect(r.stderr).not.toMatch(/unexpected error/);
      const logged = s.violations(c.kind);
      expect(logged.length, JSON.stringify(s.log())).toBeGreaterThan(0);
      expect(logged[0]).toMatch(c.reason);
      expect(s.log().some((e) => e.kind === 'grant-failed')).toBe(true);
      await s.verify();
    }, GRANT_LIMIT_MS + 60_000);
  }

  // ---- the file system of a compromised guest, with an honest agent -------

  hostileCase('a guest file named "..\\..\\escaped" (backslashes are just a name) lands inside the grant, under that name', async (s) => {
    await s.granted();
    s.plant('..\\..\\escaped', (path) => writeFileSync(path, 'a name, not a path\n'));
    await s.marker();
    expect(read(join(s.host, '..\\..\\escaped'))).toBe('a name, not a path\n');
    expect(existsSync(join(s.top, 'escaped'))).toBe(false);
  });

  hostileCase('guest names that are not valid UTF-8, or hold control characters, are not synced; the agent is not cut off for them', async (s) => {
    await s.granted();
    s.plant(Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]), (path) => writeFileSync(path, 'not UTF-8\n'));
    s.plant('ctl\u0001name', (path) => writeFileSync(path, 'control character\n'));
    s.plant('del\u007fname', (path) => writeFileSync(path, 'DEL\n'));
    await s.marker();
    expect(readdirSync(s.host).sort()).toEqual(['marker.txt', 'readme.txt', 'sub']);
    expect(s.violations()).toEqual([]);
  });

  hostileCase('symlinks planted in the guest copy are not synced, and a host file of the same name is not written through them', async (s) => {
    await s.granted();
    s.plant('etc-link', (path) => symlinkSync(join(s.top, 'etc'), path));
    s.plant('passwd-link', (path) => symlinkSync(join(s.top, 'etc', 'passwd'), path));
    s.plant('decoy-link', (path) => symlinkSync(s.decoy, path));
    await s.marker();
    for (const name of ['etc-link', 'passwd-link', 'decoy-link']) expect(existsSync(join(s.host, name))).toBe(false);
    // The host makes files of those names: the guest's links stand, nothing is written through them.
    writeFileSync(join(s.host, 'passwd-link'), 'evil::0:0::/:/bin/sh\n');
    writeTree(s.host, { 'decoy-link/target.txt': 'through the link?\n', 'etc-link/passwd': 'through the link?\n' });
    writeFileSync(join(s.host, 'after.txt'), 'after\n');
    await eventually(() => expect(read(join(s.guest, 'after.txt'))).toBe('after\n'), 20_000);
    expect(lstatSync(join(s.guest, 'passwd-link')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(s.guest, 'decoy-link')).isSymbolicLink()).toBe(true);
  });

  hostileCase('a fifo and a device planted in the guest copy are not synced, and do not stall the agent', async (s) => {
    await s.granted();
    s.plant('pipe', (path) => execFileSync('mkfifo', [path.toString()]));
    s.plant('null', (path) => execFileSync('mknod', [path.toString(), 'c', '1', '3']));
    await s.marker();
    expect(existsSync(join(s.host, 'pipe'))).toBe(false);
    expect(existsSync(join(s.host, 'null'))).toBe(false);
    expect(lstatSync(join(s.guest, 'pipe')).isFIFO()).toBe(true);
    expect(s.violations()).toEqual([]);
  });

  hostileCase('a hard link to a guest file outside the grant arrives as a plain copy, and a host edit never reaches the outside file', async (s) => {
    await s.granted();
    s.plant('linked.txt', (path) => linkSync(join(s.decoy, 'target.txt'), path));
    await s.marker();
    expect(read(join(s.host, 'linked.txt'))).toBe('the guest user owns me\n');
    expect(statSync(join(s.host, 'linked.txt')).nlink).toBe(1);
    writeFileSync(join(s.host, 'linked.txt'), 'edited on the host\n');
    await eventually(() => expect(read(join(s.guest, 'linked.txt'))).toBe('edited on the host\n'), 20_000);
    expect(read(join(s.decoy, 'target.txt'))).toBe('the guest user owns me\n');
  });

  for (const [bits, what] of [
    [0o4755, 'setuid'],
    [0o2755, 'setgid'],
    [0o777, 'world-writable and executable'],
  ] as const) {
    hostileCase(`a ${bits.toString(8)} (${what}) guest file arrives as a plain ${NEW_FILE_MODE.toString(8)} file`, async (s) => {
      await s.granted();
      s.plant('tool', (path) => writeFileSync(path, '#!/bin/sh\necho owned\n'));
      chmodSync(join(s.guest, 'tool'), bits);
      expect(mode(join(s.guest, 'tool'))).toBe(bits);
      await s.marker();
      expect(read(join(s.host, 'tool'))).toBe('#!/bin/sh\necho owned\n');
      expect(mode(join(s.host, 'tool'))).toBe(NEW_FILE_MODE);
    });
  }

  test('a host script replaced by guest content loses its exec bits, and the audit log says so', async () => {
    const s = new Scene({ ...HOST_TREE, 'run.sh': '#!/bin/sh\necho host\n' });
    chmodSync(join(s.host, 'run.sh'), 0o755);
    await s.granted();
    s.plant('run.sh.new', (path) => writeFileSync(path, '#!/bin/sh\necho guest\n'));
    renameSync(join(s.guest, 'run.sh.new'), join(s.guest, 'run.sh'));
    chmodSync(join(s.guest, 'run.sh'), 0o6777);
    await eventually(() => expect(read(join(s.host, 'run.sh'))).toBe('#!/bin/sh\necho guest\n'), 20_000);
    expect(mode(join(s.host, 'run.sh'))).toBe(0o644);
    expect(s.log().filter((e) => e.kind === 'exec-stripped').map((e) => e.path)).toEqual(['run.sh']);
    await s.verify();
  });

  // ---- races ---------------------------------------------------------------

  // The guest swaps its copy of a granted subdirectory for a symlink to
  // decoy/ (a directory it may write) and back, 200 times, while the host
  // writes files into that subdirectory. Where the guest agent then writes
  // is the guest's business, and what it lets happen is the next case's:
  // here decoy/ is left out, and the rest must hold.
  test('a subdirectory swapped for a symlink 200 times while the host writes into it: the host outside the grant and VM good are untouched', async () => {
    const s = new Scene();
    await s.granted('noting');
    const sub = join(s.guest, 'sub');
    const aside = join(s.guest, 'sub.real');
    expect(read(join(sub, 'notes.txt'))).toBe('host notes\n');
    let swaps = 0;
    let hostWrites = 0;
    let racing = true;
    const sentIntoSub = () => (read(join(evilCache, 'hostile.log')) ?? '').split('\n').filter((line) => /^stage sub\/h\d+\.txt$/.test(line));
    const swapping = (async () => {
      // 200 swaps at least, and on (up to 2,000) until the host has sent a
      // file into sub meanwhile: on a busy machine its first sync of them
      // can come after 200.
      for (; swaps < 200 || (swaps < 2000 && sentIntoSub().length === 0); swaps++) {
        renameSync(sub, aside);
        symlinkSync(s.decoy, sub);
        lchownSync(sub, uid(evil), uid(evil));
        await sleep(4);
        unlinkSync(sub);
        renameSync(aside, sub);
        await sleep(4);
      }
      racing = false;
    })();
    const writing = (async () => {
      for (; racing; hostWrites++) {
        writeFileSync(join(s.host, 'sub', `h${hostWrites}.txt`), `host write ${hostWrites}\n`);
        await sleep(5);
      }
    })();
    await Promise.all([swapping, writing]);
    // The host sent files into sub while the guest swapped it: the race was run, not waited out.
    expect(sentIntoSub().length).toBeGreaterThan(0);
    expect(lstatSync(sub).isDirectory()).toBe(true);
    expect(read(join(s.decoy, 'target.txt'))).toBe('the guest user owns me\n');
    await s.verify(['decoy']);
  }, 90_000);

  // The guest swaps sub/ for a link to decoy/ just as the host's file for
  // it reaches the agent, with the agent on `disk`.
  const swapJustAsSent = async (disk: GuestDisk) => {
    const s = new Scene();
    s.agentDisk = disk;
    await s.granted('swap-on-stage', s.decoy);
    writeFileSync(join(s.host, 'sub', 'sent.txt'), 'sent by the host\n');
    await eventually(() => expect(read(join(evilCache, 'hostile.log'))).toMatch(/^swapped sub back$/m), 20_000);
    await settle(s.grantId);
    expect(readdirSync(s.decoy)).toEqual(['target.txt']);
    expect(read(join(s.host, 'sub', 'sent.txt'))).toBe('sent by the host\n');
    await eventually(() => expect(read(join(s.guest, 'sub', 'sent.txt'))).toBe('sent by the host\n'), 20_000);
    await s.verify();
  };

  // The guest's agent works on the native shims the daemon uploaded: openat2
  // beneath the guest copy refuses the link. On plain Node (a guest of
  // another platform) it follows it: the case below.
  test('a subdirectory swapped for a symlink just as the host sends a file into it: nothing lands outside the guest copy and the host keeps its file', () => swapJustAsSent('native'), 90_000);

  test.fails('the same swap with the guest agent on plain Node: nothing lands outside the guest copy (BUG: the portable agent follows the symlink)', () => swapJustAsSent('portable'), 90_000);

  test('a guest file that grows while the host reads it: the host has no file or a version the guest had, never a torn one', async () => {
    const s = new Scene();
    await s.granted();
    // Every MiB is different, so a mix of versions or a hole shows.
    const chunk = (i: number) => Buffer.alloc(MiB, `chunk ${i};`);
    const final = Buffer.concat(Array.from({ length: 48 }, (_, i) => chunk(i)));
    const seen = await s.whileRead('growing.bin', final.subarray(0, 16 * MiB), async (path) => {
      for (let i = 16; i < 48; i++) {
        writeFileSync(path, chunk(i), { flag: 'a' });
        await sleep(10);
      }
      await eventually(() => expect(readFileSync(join(s.host, 'growing.bin')).equals(final)).toBe(true), 30_000);
    });
    const torn = seen.filter((now) => now !== undefined && !now.equals(final.subarray(0, now.length)));
    expect(torn.map((now) => now?.length)).toEqual([]);
    expect(mode(join(s.host, 'growing.bin'))).toBe(NEW_FILE_MODE);
    await s.verify();
  }, 90_000);

  test('a guest file truncated while the host reads it: the host has no file, the whole old one or the new one, never a mix', async () => {
    const s = new Scene();
    await s.granted();
    const old = Buffer.concat(Array.from({ length: 32 }, (_, i) => Buffer.alloc(MiB, `old ${i};`)));
    const seen = await s.whileRead('shrinking.bin', old, async (path) => {
      truncateSync(path, MiB);
      await eventually(() => expect(read(join(s.host, 'shrinking.bin'))).toBe(old.subarray(0, MiB).toString()), 30_000);
    });
    const states = seen.map((now) => (now === undefined ? 'absent' : now.equals(old) ? 'old' : now.equals(old.subarray(0, MiB)) ? 'new' : `torn (${now.length} bytes)`));
    expect(states.filter((state) => !['absent', 'old', 'new'].includes(state))).toEqual([]);
    await s.verify();
  }, 90_000);

  // ---- lies after the first sync -------------------------------------------

  for (const lie of [
    { mode: 'mutate-data', what: 'content that does not match the hash it announced', reason: /it sent content for from-guest\.txt that does not match the hash it announced/ },
    { mode: 'lie-hash', what: 'a hash that does not match the content it sends', reason: /it sent content for from-guest\.txt that does not match the hash it announced/ },
    { mode: 'extra-data', what: 'more data than the read asked for (a file that grows)', reason: /more data than the \d+ bytes asked for/ },
  ]) {
    hostileCase(`${lie.what}: the guest is cut off, logged, and nothing of it lands on the host`, async (s) => {
      await s.granted(lie.mode);
      guestWrite(evil, join(s.guest, 'from-guest.txt'), 'made in the guest\n');
      await until(() => Promise.resolve(s.violations().length > 0), 'a protocol violation of VM evil in the audit log');
      expect(s.violations()[0]).toMatch(lie.reason);
      expect(existsSync(join(s.host, 'from-guest.txt'))).toBe(false);
      expect(readdirSync(s.host).filter((name) => name.startsWith('.ferry-tmp-'))).toEqual([]);
    });
  }

  hostileCase('less data than the read asked for (a file that shrinks): nothing short lands on the host', async (s) => {
    await s.granted('short-data');
    guestWrite(evil, join(s.guest, 'from-guest.txt'), 'made in the guest, sent by half\n');
    // The host reads it and gets half; it takes that for a file that changed under it, as it would for a real one.
    await eventually(() => expect(read(join(evilCache, 'hostile.log'))).toMatch(/^short-data: 16 of 32 bytes of from-guest\.txt$/m), 20_000);
    // A change from the host after that shows the pass is over.
    writeFileSync(join(s.host, 'host-side.txt'), 'host\n');
    await eventually(() => expect(read(join(s.guest, 'host-side.txt'))).toBe('host\n'), 20_000);
    expect(existsSync(join(s.host, 'from-guest.txt'))).toBe(false);
    expect(readdirSync(s.host).filter((name) => name.startsWith('.ferry-tmp-'))).toEqual([]);
  });

  hostileCase('a claimed directory of no end of entries, under --max-entries 1000: the host takes 1000, logs the rest, and VM good is served meanwhile', async (s) => {
    const granting = s.grant('huge-listing', HUGE_ENTRIES, ['--max-entries', '1000']);
    // Once the host has made the directory, the daemon is busy with its entries: VM good is served meanwhile.
    await eventually(() => expect(existsSync(join(s.host, 'huge'))).toBe(true), GRANT_LIMIT_MS);
    const busy = goodServes();
    const r = await granting;
    await busy;
    expect(r.ms).toBeLessThan(GRANT_LIMIT_MS);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The directory itself is one of the 1000 entries from the guest.
    expect(readdirSync(join(s.host, 'huge'))).toHaveLength(999);
    const limits = s.log().filter((e) => e.kind === 'limit');
    expect(limits.length).toBeGreaterThan(0);
    expect(limits[0]).toMatchObject({ path: 'huge/f000000999', detail: 'limit hit: huge/f000000999 would bring the grant past its 1000 entries; not applied on the host' });
    expect(peakMemory(daemon.pid)).toBeLessThan(1024 * MiB);
  }, 120_000);

  // A slow loris holds a grant's channel open without ever finishing an
  // answer: silent after hello, or one byte of an endless frame a second.
  // It must be cut off (and logged) within the agent timeout, while the host
  // and VM good carry on; and `ferry grant` must then fail, not wait.
  for (const loris of [
    { mode: 'stall', param: undefined, what: 'an agent that says hello and then nothing' },
    { mode: 'trickle', param: '1000', what: 'an agent that trickles one byte of an endless frame a second' },
  ]) {
    let outcome: (CliResult & { ms: number }) | undefined;
    let cutOff: string[] = [];

    hostileCase(`${loris.what}: the host and VM good carry on while it holds its channel`, async (s) => {
      const granting = s.grant(loris.mode, loris.param, [], LORIS_LIMIT_MS);
      await goodServes();
      expect(snapshot(s.top, new Set([basename(s.host)]))).toEqual(s.before);
      outcome = await granting;
      cutOff = s.violations().filter((v) => new RegExp(`unanswered for ${AGENT_TIMEOUT_S} s`).test(v));
    }, LORIS_LIMIT_MS + 60_000);

    test(`${loris.what}: it is cut off and \`ferry grant\` fails within ${LORIS_LIMIT_MS / 1000} s`, () => {
      expect(cutOff.length).toBeGreaterThan(0);
      expect(outcome?.status).toBe(1);
      expect(outcome?.stderr).toMatch(new RegExp(`unanswered for ${AGENT_TIMEOUT_S} s`));
    });
  }

  hostileCase('replies, data and change notices for every request id from 1 to 2000 (aimed at any grant): only evil is cut off', async (s) => {
    const r = await s.grant('spray', '2000');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/a reply to request \d+, which was never made or is already answered|data for request \d+, which is not a read in progress|a change notice under id \d+, which is not an accepted watch/);
    expect(s.violations().length).toBeGreaterThan(0);
  });

  hostileCase('after `ferry revoke` returns, a guest that goes on sending change notices, replies and data, and writing files, changes nothing on the host', async (s) => {
    await s.granted('spray-on-eof');
    await s.marker();
    await settle(s.grantId);
    const revoked = (await json('revoke', String(s.grantId), '--keep-guest-copy')) as { guestCopy: string };
    expect(revoked.guestCopy).toBe('kept');
    const atRevoke = snapshot(s.host);
    const violationsAtRevoke = s.violations().length;
    for (let i = 0; i < 20; i++) guestWrite(evil, join(s.guest, `after-${i}.txt`), `written after the revoke ${i}\n`);
    guestWrite(evil, join(s.guest, 'marker.txt'), 'changed after the revoke\n');
    await eventually(() => expect(read(join(evilCache, 'hostile.log'))).toMatch(/^spray-on-eof: \d+ rounds after the host closed the channel$/m), 20_000);
    expect(snapshot(s.host)).toEqual(atRevoke);
    // The revoke shut the grant's channel on the host's side: what the guest
    // sent after it was not even read.
    expect(s.violations()).toHaveLength(violationsAtRevoke);
    rmSync(s.guest, { recursive: true, force: true });
  });

  // The last cases take the daemon down (unhandled rejections when a
  // channel ends while the host is sending on it); it is started again
  // after each, with the guest honest again.
  test('a guest that hangs up in the middle of a file from the host does not take the daemon down', async () => {
    const s = new Scene({ ...HOST_TREE, 'big.bin': 'x'.repeat(16 * MiB) });
    try {
      await s.grant('hangup-on-stage', undefined, [], LORIS_LIMIT_MS);
      expect(daemon.running).toBe(true);
      await s.verify();
    } finally {
      await daemon.exitsWithin(2_000);
      await restartIfDead();
    }
  }, LORIS_LIMIT_MS + 60_000);

  test('`ferry revoke` in the middle of a file sent to the guest does not take the daemon down', async () => {
    const s = new Scene();
    try {
      await s.granted('slow-reader');
      writeFileSync(join(s.host, 'big.bin'), Buffer.alloc(32 * MiB, 'big;'));
      // The guest reads slowly: the host is still sending when it revokes.
      await eventually(() => expect(read(join(evilCache, 'hostile.log'))).toMatch(/^stage big\.bin$/m), 20_000);
      const r = await ferry(['revoke', String(s.grantId)]);
      expect(r.stderr).toBe('');
      expect(daemon.running).toBe(true);
      await s.verify();
    } finally {
      await daemon.exitsWithin(2_000);
      await restartIfDead();
    }
  }, 90_000);

  test('through it all, VM good was never cut off by the agent timeout, and the daemon said nothing alarming', async () => {
    expect(auditLog(home).filter((e) => /^VM good, grant /.test(e.detail))).toEqual([]);
    expect(daemon.stderr).not.toMatch(/unexpected|uncaught|unhandled/i);
    await goodServes();
  });
});
