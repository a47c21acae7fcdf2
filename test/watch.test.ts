/**
 * `ferry sync A B --watch`, through the built CLI, with beta a local
 * directory and with beta in a guest behind a real sshd: changes propagate
 * while watching, conflicts halt only their path and `ferry resolve`
 * releases it, a lost connection is reconnected, a deleted root halts
 * without deleting anything on the other side.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FERRY_BIN, type Pair, makePair, readTree, runFerry } from './support/cli.js';
import { type Sshd, startSshd, sshdUnavailable } from './support/sshd.js';
import { eventually, sleep } from './support/wait.js';

interface Event {
  readonly event: string;
  readonly [key: string]: unknown;
}

/** A running `ferry sync --watch --json`, its events as they come. */
class Watching {
  readonly events: Event[] = [];
  stderr = '';
  private buffer = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.buffer += d;
      let newline;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (line.trim() !== '') this.events.push(JSON.parse(line) as Event);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('close', (status) => resolve(status)));
  }

  static start(pair: Pair, extra: string[] = [], env: Record<string, string> = {}): Watching {
    const child = spawn(process.execPath, [FERRY_BIN, ...pair.syncArgs, '--watch', '--json', ...extra], {
      env: { ...process.env, ...env, FERRY_HOME: pair.home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Watching(child);
  }

  count(kind: string): number {
    return this.events.filter((e) => e.event === kind).length;
  }

  /** until waits for an event matching `match`, failing with what was seen after timeoutMs. */
  async until(match: (e: Event) => boolean, timeoutMs = 15_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no such event within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr}`);
      await sleep(20);
    }
  }

  /** signal sends `sig` to ferry. */
  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Whether ferry is still running. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** stop sends SIGTERM and returns the exit status. */
  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exit();
  }

  /** exit waits for the process to end by itself. */
  async exit(timeoutMs = 20_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

function write(root: string, path: string, content: string): void {
  mkdirSync(join(root, path, '..'), { recursive: true });
  writeFileSync(join(root, path), content);
}

function read(root: string, path: string): string | undefined {
  try {
    return readFileSync(join(root, path), 'utf8');
  } catch {
    return undefined;
  }
}

const sshSkip = sshdUnavailable();
const modes = [{ name: 'local beta', remote: false }, ...(sshSkip === undefined ? [{ name: 'beta over SSH', remote: true }] : [])];
if (sshSkip !== undefined) console.warn(`watch over SSH skipped: ${sshSkip}`);

describe.each(modes)('ferry sync --watch, $name', ({ remote }) => {
  let sshd: Sshd | undefined;
  beforeAll(async () => {
    if (remote) sshd = await startSshd();
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
  });

  const pair = (alpha: Record<string, string | null> = {}, beta: Record<string, string | null> = {}) => {
    const p = makePair(alpha, beta, sshd);
    p.giveToGuest();
    return p;
  };
  // Writes into beta, handing it to the guest user when beta is in the guest.
  const writeBeta = (p: Pair, path: string, content: string) => {
    write(p.beta, path, content);
    p.giveToGuest();
  };

  test('edits on both sides propagate while watching', async () => {
    const p = pair({ 'a.txt': 'alpha 1', 'dir/inner.txt': 'inner' }, { 'b.txt': 'beta 1' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      expect(read(p.beta, 'a.txt')).toBe('alpha 1');
      expect(read(p.alpha, 'b.txt')).toBe('beta 1');

      write(p.alpha, 'a.txt', 'alpha 2');
      write(p.alpha, 'new/deep/file.txt', 'made on alpha');
      writeBeta(p, 'b.txt', 'beta 2');
      rmSync(join(p.alpha, 'dir'), { recursive: true });
      await eventually(() => {
        expect(read(p.beta, 'a.txt')).toBe('alpha 2');
        expect(read(p.beta, 'new/deep/file.txt')).toBe('made on alpha');
        expect(read(p.alpha, 'b.txt')).toBe('beta 2');
        expect(existsSync(join(p.beta, 'dir'))).toBe(false);
      });
      rmSync(join(p.beta, 'b.txt'));
      await eventually(() => expect(existsSync(join(p.alpha, 'b.txt'))).toBe(false));
      expect(readTree(p.alpha)).toEqual(readTree(p.beta));
      expect(await w.stop()).toBe(0);
      expect(w.events.at(-1)?.event).toBe('stopped');
    } finally {
      await w.stop();
    }
  }, 60_000);

  test("rapid successive writes to one file end with the final content on both sides, and ferry's own writes do not keep it busy", async () => {
    const p = pair({ 'busy.txt': 'start' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      for (let i = 0; i < 200; i++) writeFileSync(join(p.alpha, 'busy.txt'), `version ${i}`);
      await eventually(() => expect(read(p.beta, 'busy.txt')).toBe('version 199'));
      expect(read(p.alpha, 'busy.txt')).toBe('version 199');
      // The echo of ferry's own rename comes within the watcher's latency;
      // after that, a quiet tree means no passes at all.
      await sleep(800);
      const passes = w.count('scanning');
      await sleep(1500);
      expect(w.count('scanning')).toBe(passes);
    } finally {
      await w.stop();
    }
  }, 60_000);

  // The writer is on the guest's side when beta is in the guest.
  test('a file written without pause is copied once it settles, not at every write, while other files go at once', async () => {
    const p = pair({ 'seed.txt': 'seed' });
    const side = remote ? p.beta : p.alpha;
    const other = remote ? p.alpha : p.beta;
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      const started = w.events.length;
      // 60 appends of 64 KiB, one every 50 ms: a download of 3.75 MiB over 3 s.
      const chunk = Buffer.alloc(64 << 10, 'x');
      writeFileSync(join(side, 'download.bin'), '');
      p.giveToGuest();
      let written = 0;
      let noteSeenWhileWriting = false;
      while (written < 60) {
        appendFileSync(join(side, 'download.bin'), chunk);
        written++;
        if (written === 10) write(side, 'note.txt', 'saved meanwhile');
        if (written > 10 && read(other, 'note.txt') === 'saved meanwhile') noteSeenWhileWriting = true;
        await sleep(50);
      }
      await eventually(() => expect(read(other, 'download.bin')?.length).toBe(60 * chunk.length), 15_000);
      expect(noteSeenWhileWriting).toBe(true);
      // The empty file, perhaps a few writes that came before the watch saw
      // it busy, the final version, and the note: far fewer than 60 copies.
      const copies = w.events
        .slice(started)
        .filter((e) => e.event === 'synced')
        .reduce((n, e) => n + (e.copied as { alpha: number; beta: number })[remote ? 'alpha' : 'beta'], 0);
      expect(copies).toBeGreaterThanOrEqual(2);
      expect(copies).toBeLessThanOrEqual(5);
      const held = w.events.slice(started).filter((e) => e.event === 'held');
      expect(held.map((e) => [e.path, e.side])).toEqual([['download.bin', remote ? 'beta' : 'alpha']]);
      expect(readTree(p.alpha)).toEqual(readTree(p.beta));
    } finally {
      await w.stop();
    }
  }, 60_000);

  test('stopping the watch syncs a file that was held while it changed, as it is then', async () => {
    const p = pair({ 'seed.txt': 'seed' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      writeFileSync(join(p.alpha, 'draft.txt'), 'version 0');
      await eventually(() => expect(read(p.beta, 'draft.txt')).toBe('version 0'));
      for (let i = 1; !w.events.some((e) => e.event === 'held'); i++) {
        writeFileSync(join(p.alpha, 'draft.txt'), `version ${i}`);
        await sleep(100);
        if (i > 100) throw new Error(`never held; events: ${JSON.stringify(w.events)}`);
      }
      writeFileSync(join(p.alpha, 'draft.txt'), 'the last version');
      await sleep(200);
      expect(read(p.beta, 'draft.txt')).not.toBe('the last version');
      expect(await w.stop()).toBe(0);
      expect(read(p.beta, 'draft.txt')).toBe('the last version');
      expect(w.events.some((e) => e.event === 'scanning' && /^stopping: syncing what was held/.test(String(e.reason)))).toBe(true);
    } finally {
      await w.stop();
    }
  }, 60_000);

  test('stopping while a held file is still rewritten without pause exits 1 and says it was not synced; the next sync copies it', async () => {
    const p = pair({ 'seed.txt': 'seed' });
    const busy = join(p.alpha, 'busy.bin');
    // 32 MiB: every read of it spans clock ticks in which it was written.
    writeFileSync(busy, Buffer.alloc(32 << 20, 'a'));
    const w = Watching.start(p);
    // Rewrites the file in place, 64 KiB at a time, until killed.
    const writer = spawn(process.execPath, ['-e', `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(busy)}, 'r+'); const chunk = Buffer.alloc(65536); for (let i = 0; ; i++) { chunk.fill(97 + (i % 26)); fs.writeSync(fd, chunk, 0, chunk.length, (i % 512) * 65536); }`], { stdio: 'ignore' });
    try {
      await w.until((e) => e.event === 'held' && e.path === 'busy.bin', 30_000);
      const status = await w.stop();
      const stopped = await w.until((e) => e.event === 'stopped');
      expect(stopped.unsynced).toBe(1);
      expect(w.events.some((e) => e.event === 'error' && e.path === 'busy.bin')).toBe(true);
      expect(status).toBe(1);
    } finally {
      writer.kill('SIGKILL');
      await w.stop();
    }
    if (writer.exitCode === null && writer.signalCode === null) await new Promise((resolve) => writer.once('close', resolve));
    const again = await runFerry(p.home, [...p.syncArgs, '--once']);
    expect(again.status).toBe(0);
    expect(readFileSync(join(p.beta, 'busy.bin')).equals(readFileSync(busy))).toBe(true);
  }, 60_000);

  test.runIf(!remote)('a file written without pause for longer than a hold is still copied while it is written', async () => {
    const p = pair({ 'seed.txt': 'seed' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      const line = 'a line of the log\n';
      let lines = 0;
      let grewWhileWriting = false;
      // 13.5 s of appends, one every 100 ms: longer than the 10 s a file is held at most.
      const until = Date.now() + 13_500;
      while (Date.now() < until) {
        appendFileSync(join(p.alpha, 'app.log'), line);
        lines++;
        if (!grewWhileWriting && lines > 40 && (read(p.beta, 'app.log')?.length ?? 0) > 20 * line.length) grewWhileWriting = true;
        await sleep(100);
      }
      expect(w.count('held')).toBeGreaterThanOrEqual(1);
      expect(grewWhileWriting).toBe(true);
      await eventually(() => expect(read(p.beta, 'app.log')?.length).toBe(lines * line.length), 15_000);
    } finally {
      await w.stop();
    }
  }, 60_000);

  test('a conflict halts only its file while others keep flowing, and `ferry resolve` releases it at once', async () => {
    const p = pair({ 'shared.txt': 'base' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      await eventually(() => expect(read(p.beta, 'shared.txt')).toBe('base'));
      // Both sides change it before either change can travel.
      writeFileSync(join(p.alpha, 'shared.txt'), 'alpha edit');
      writeFileSync(join(p.beta, 'shared.txt'), 'beta edit');
      const conflict = await w.until((e) => e.event === 'conflict' && e.path === 'shared.txt');
      write(p.alpha, 'other.txt', 'still flowing');
      await eventually(() => expect(read(p.beta, 'other.txt')).toBe('still flowing'));
      expect(read(p.alpha, 'shared.txt')).toBe('alpha edit');
      expect(read(p.beta, 'shared.txt')).toBe('beta edit');

      const resolved = await runFerry(p.home, ['resolve', String(conflict.id), '--keep', 'beta']);
      expect(resolved.status, resolved.stderr).toBe(0);
      await w.until((e) => e.event === 'resolved' && e.id === conflict.id, 10_000);
      await eventually(() => expect(read(p.alpha, 'shared.txt')).toBe('beta edit'));
      expect(read(p.beta, 'shared.txt')).toBe('beta edit');
      const list = await runFerry(p.home, ['conflicts', '--json']);
      expect(JSON.parse(list.stdout)).toEqual([]);
    } finally {
      await w.stop();
    }
  }, 60_000);

  test('a conflict left open by an earlier sync is said at the first pass, and stopping with it open exits 3', async () => {
    const p = pair({ 'shared.txt': 'base' });
    expect((await runFerry(p.home, ['sync', p.alpha, p.beta, '--once'])).status).toBe(0);
    writeFileSync(join(p.alpha, 'shared.txt'), 'alpha edit');
    writeFileSync(join(p.beta, 'shared.txt'), 'beta edit');
    expect((await runFerry(p.home, ['sync', p.alpha, p.beta, '--once'])).status).toBe(3);
    const w = Watching.start(p);
    let status: number | null = null;
    try {
      const conflict = await w.until((e) => e.event === 'conflict' && e.path === 'shared.txt');
      const synced = await w.until((e) => e.event === 'synced' && e.scope === 'full');
      expect(synced.conflicts).toBe(1);
      write(p.alpha, 'other.txt', 'still flowing');
      await eventually(() => expect(read(p.beta, 'other.txt')).toBe('still flowing'));
      // Said once, not at every pass.
      expect(w.count('conflict')).toBe(1);
      expect(conflict.id).toBeGreaterThan(0);
    } finally {
      status = await w.stop();
    }
    expect(status).toBe(3);
  }, 60_000);

  test('deleting a watched root halts without deleting anything on the other side', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`d${i % 6}/f${i}.txt`] = `file ${i}`;
    const p = pair(files);
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      const survivor = readTree(remote ? p.alpha : p.beta);
      expect(Object.keys(survivor).length).toBe(66);
      rmSync(remote ? p.beta : p.alpha, { recursive: true });
      expect(await w.exit()).toBe(1);
      expect(w.stderr).toMatch(/halted: the (alpha|beta) root .* (is gone|cannot be used|has vanished)|root .* was emptied/);
      expect(readTree(remote ? p.alpha : p.beta)).toEqual(survivor);
    } finally {
      await w.stop();
    }
  }, 60_000);

  test('more changed directories than a hint may name fall back to a full rescan, and say so', async () => {
    const p = pair({ 'seed.txt': 'seed' });
    const w = Watching.start(p, [], { FERRY_WATCH_MAX_DIRS: '20' });
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      for (let i = 0; i < 80; i++) write(p.alpha, `many/d${i}/f.txt`, `dir ${i}`);
      await w.until((e) => e.event === 'scanning' && e.scope === 'full' && /more than 20 directories changed at once/.test(String(e.reason)));
      await eventually(() => expect(read(p.beta, 'many/d79/f.txt')).toBe('dir 79'));
      expect(readTree(p.alpha)).toEqual(readTree(p.beta));
    } finally {
      await w.stop();
    }
  }, 60_000);

  test('a periodic verification scan runs at the interval asked for', async () => {
    const p = pair({ 'x.txt': 'x' });
    const w = Watching.start(p, ['--verify-every', '1s']);
    try {
      await w.until((e) => e.event === 'scanning' && e.reason === 'periodic verification', 10_000);
    } finally {
      await w.stop();
    }
  }, 30_000);

  test.runIf(remote)('a second Ctrl-C while the stop waits on a guest that does not answer exits at once, and says so', async () => {
    const p = pair({ 'before.txt': 'before' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      sshd?.freezeAgents(true);
      const started = w.events.length;
      write(p.alpha, 'stuck.txt', 'the pass that copies this waits on the guest');
      await w.until((e) => w.events.indexOf(e) >= started && e.event === 'scanning');
      w.signal('SIGINT');
      await sleep(300);
      // The first asks for a stop after the current batch, which waits on the guest.
      expect(w.running).toBe(true);
      w.signal('SIGINT');
      expect(await w.exit()).toBe(1);
      expect(w.events.at(-1)).toMatchObject({ event: 'error', message: expect.stringMatching(/^stopped at once by a second signal/) as unknown });
    } finally {
      sshd?.freezeAgents(false);
      await w.stop();
    }
  }, 60_000);

  test.runIf(remote)('a lost connection or a killed agent is reconnected, then everything converges', async () => {
    const p = pair({ 'before.txt': 'before' });
    const w = Watching.start(p);
    try {
      await w.until((e) => e.event === 'synced' && e.scope === 'full');
      sshd?.dropConnections();
      await w.until((e) => e.event === 'reconnecting');
      write(p.alpha, 'during.txt', 'written while disconnected');
      await eventually(() => expect(read(p.beta, 'during.txt')).toBe('written while disconnected'), 20_000);
      expect(w.count('connected')).toBeGreaterThanOrEqual(2);

      sshd?.killAgents();
      await eventually(() => expect(w.count('reconnecting')).toBeGreaterThanOrEqual(2), 20_000);
      writeBeta(p, 'after.txt', 'written after the agent died');
      await eventually(() => expect(read(p.alpha, 'after.txt')).toBe('written after the agent died'), 20_000);
      expect(readTree(p.alpha)).toEqual(readTree(p.beta));
    } finally {
      await w.stop();
    }
  }, 90_000);
});
