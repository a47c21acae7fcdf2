/**
 * Crash test: the built CLI is killed with SIGKILL at random moments while it
 * syncs a few hundred files both ways, and after every kill the two trees are
 * checked against everything the test ever wrote:
 *
 *   - nothing torn: every file at a user-visible name holds one of the
 *     versions the test wrote at that path (never a partial or foreign one);
 *   - nothing lost: every path the test created still holds, on the side that
 *     writes it, the latest version the test wrote there;
 *   - no rollback: the copy on the other side only ever moves forward through
 *     the versions written at that path;
 *   - temporaries (`.ferry-tmp-<pid>-<hex>`) belong only to killed runs.
 *
 * Each path is only ever written by the test on one side (its owner), and a
 * path whose copy a killed run may have left unrecorded is not edited again
 * until a run finishes (see `unsettled`), so no conflict can arise. At the end, uninterrupted syncs must
 * converge: exit 0, byte-identical trees, no temporaries, no lock left.
 *
 * The scenario (tree, kill delays, mutations) comes from a seeded PRNG; the
 * seed is printed, and FERRY_CRASH_SEED=<seed> replays it (kill timing relative
 * to the child's progress still varies from run to run).
 */

import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FERRY_BIN, runFerry } from './support/cli.js';

const TEMP_PREFIX = '.ferry-tmp-';
const KILLS = 24;
const MAX_ITERATIONS = 80;
const RUN_TIMEOUT_MS = 60_000;

type Side = 'alpha' | 'beta';

// ---- seeded randomness -------------------------------------------------------

/** Rng is mulberry32: small, fast and good enough to pick sizes, paths and delays. */
class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** int returns an integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  bytes(n: number): Buffer {
    const buf = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) buf.writeUInt32LE(this.u32(), i);
    for (; i < n; i++) buf[i] = this.u32() & 0xff;
    return buf;
  }
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---- the model: every version the test wrote ----------------------------------

interface Tracked {
  /** The only side the test writes this path on. */
  readonly owner: Side;
  /** Every version written, oldest first (sha256 hex). */
  readonly versions: string[];
  /** The index (into versions) last seen on the other side, or -1. */
  seenOther: number;
}

class Model {
  readonly files = new Map<string, Tracked>();
  readonly dirs: Record<Side, Set<string>> = { alpha: new Set(), beta: new Set() };
  private created = 0;

  constructor(
    readonly roots: Record<Side, string>,
    private readonly rng: Rng,
  ) {}

  /** write puts new random content at rel on its owner side and records the version. */
  write(owner: Side, rel: string, size: number): void {
    const tracked = this.files.get(rel);
    if (tracked !== undefined && tracked.owner !== owner) throw new Error(`${rel} is owned by ${tracked.owner}`);
    const abs = path.join(this.roots[owner], rel);
    const dir = path.posix.dirname(rel);
    if (dir !== '.') {
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      this.dirs[owner].add(dir);
    }
    const content = this.rng.bytes(size);
    fs.writeFileSync(abs, content);
    const hash = sha256(content);
    if (tracked === undefined) this.files.set(rel, { owner, versions: [hash], seenOther: -1 });
    else tracked.versions.push(hash);
  }

  randomSize(): number {
    return this.rng.int(1024, 64 * 1024);
  }

  /** modify rewrites n random paths owned by side, except those in avoid (sometimes keeping the size). */
  modify(side: Side, n: number, avoid: ReadonlySet<string>): number {
    const owned = [...this.files].filter(([rel, t]) => t.owner === side && !avoid.has(rel)).map(([rel]) => rel);
    let done = 0;
    for (let i = 0; i < n && owned.length > 0; i++) {
      const rel = this.rng.pick(owned);
      const keepSize = this.rng.chance(0.3);
      const size = keepSize ? fs.statSync(path.join(this.roots[side], rel)).size : this.randomSize();
      this.write(side, rel, size);
      done++;
    }
    return done;
  }

  /** create adds n new files on side, in an existing directory of that side or in a new one. */
  create(side: Side, n: number): void {
    for (let i = 0; i < n; i++) {
      const dirs = [...this.dirs[side]];
      const dir = dirs.length === 0 || this.rng.chance(0.2) ? `${side === 'alpha' ? 'na' : 'nb'}${this.created}/x` : this.rng.pick(dirs);
      this.write(side, `${dir}/${side === 'alpha' ? 'new-a' : 'new-b'}${this.created++}.bin`, this.randomSize());
    }
  }
}

// ---- reading the trees back ----------------------------------------------------

interface Snapshot {
  /** Regular files at user-visible names: relative path -> sha256. */
  readonly files: Map<string, string>;
  readonly dirs: Set<string>;
  /** Relative paths of staged temporaries. */
  readonly temps: string[];
  /** Anything else (links, specials) at a user-visible name. */
  readonly others: string[];
}

function snapshot(root: string): Snapshot {
  const snap: Snapshot = { files: new Map(), dirs: new Set(), temps: [], others: [] };
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(rel === '' ? root : path.join(root, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.name.startsWith(TEMP_PREFIX)) snap.temps.push(child);
      else if (entry.isDirectory()) {
        snap.dirs.add(child);
        walk(child);
      } else if (entry.isFile()) snap.files.set(child, sha256(fs.readFileSync(path.join(root, child))));
      else snap.others.push(child);
    }
  };
  walk('');
  return snap;
}

/** tempPid is the pid a temporary's name says staged it. */
function tempPid(rel: string): number {
  return Number.parseInt(path.posix.basename(rel).slice(TEMP_PREFIX.length), 10);
}

interface Check {
  /** Every way the trees break the invariants (empty when they hold). */
  readonly problems: string[];
  /** Paths whose copy on the non-owner side moved forward since the last check. */
  readonly advanced: string[];
  /** Paths whose copy on the non-owner side is missing or not the latest version. */
  readonly pending: number;
  readonly temps: number;
}

/** checkTrees reads both trees and checks them against the model (and records how far each copy got). */
function checkTrees(model: Model, killedPids: ReadonlySet<number>): Check {
  const snaps: Record<Side, Snapshot> = { alpha: snapshot(model.roots.alpha), beta: snapshot(model.roots.beta) };
  const problems: string[] = [];
  const advanced: string[] = [];
  let pending = 0;
  for (const side of ['alpha', 'beta'] as const) {
    const snap = snaps[side];
    for (const other of snap.others) problems.push(`${side}:${other}: not a regular file or directory`);
    for (const temp of snap.temps) {
      if (!killedPids.has(tempPid(temp))) problems.push(`${side}:${temp}: temporary of a ferry that was not killed`);
    }
    for (const [rel, hash] of snap.files) {
      const tracked = model.files.get(rel);
      if (tracked === undefined) problems.push(`${side}:${rel}: a file the test never wrote`);
      else if (!tracked.versions.includes(hash)) problems.push(`${side}:${rel}: torn or foreign content (sha256 ${hash.slice(0, 12)}, ${tracked.versions.length} versions written)`);
    }
  }
  for (const [rel, tracked] of model.files) {
    const other: Side = tracked.owner === 'alpha' ? 'beta' : 'alpha';
    const latest = tracked.versions.length - 1;
    const onOwner = snaps[tracked.owner].files.get(rel);
    const onOther = snaps[other].files.get(rel);
    if (onOwner === undefined && onOther === undefined) problems.push(`${rel}: lost on both sides`);
    else if (onOwner !== tracked.versions[latest]) {
      const index = onOwner === undefined ? -1 : tracked.versions.indexOf(onOwner);
      problems.push(`${tracked.owner}:${rel}: the latest write (version ${latest}) was lost; holds ${index < 0 ? 'nothing' : `version ${index}`}`);
    }
    const index = onOther === undefined ? -1 : tracked.versions.indexOf(onOther);
    if (onOther !== undefined && index >= 0 && index < tracked.seenOther) problems.push(`${other}:${rel}: rolled back from version ${tracked.seenOther} to ${index}`);
    if (index > tracked.seenOther) {
      advanced.push(rel);
      tracked.seenOther = index;
    }
    if (index !== latest) pending++;
  }
  return { problems, advanced, pending, temps: snaps.alpha.temps.length + snaps.beta.temps.length };
}

/** pendingCopies counts the paths whose copy on the non-owner side is not (known to be) the latest version. */
function pendingCopies(model: Model): number {
  let pending = 0;
  for (const tracked of model.files.values()) if (tracked.seenOther !== tracked.versions.length - 1) pending++;
  return pending;
}

// ---- running ferry -------------------------------------------------------------

interface KilledRun {
  readonly pid: number;
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * When is a run killed: `afterMs` after it starts, or `afterRenameMs` after
 * the first file is renamed into place in one of the watched directories
 * (`watch`: absolute directory -> its relative path; `isFile` tells a synced
 * file from a directory ferry creates), which aims at the renames and the
 * archive commit that follows them.
 */
type KillPlan = { readonly afterMs: number } | { readonly afterRenameMs: number; readonly watch: ReadonlyMap<string, string>; readonly isFile: (rel: string) => boolean };

/** runAndKill runs `ferry args...` and sends it SIGKILL as planned unless it has exited by then. */
function runAndKill(home: string, args: string[], plan: KillPlan): Promise<KilledRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [FERRY_BIN, ...args], {
      env: { ...process.env, FERRY_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid === undefined) {
      child.on('error', reject);
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let kill: NodeJS.Timeout | undefined;
    const watchers: fs.FSWatcher[] = [];
    if ('afterMs' in plan) kill = setTimeout(() => child.kill('SIGKILL'), plan.afterMs);
    else {
      for (const [abs, rel] of plan.watch) {
        const watcher = fs.watch(abs, (_event, name) => {
          if (kill !== undefined || name === null || name.startsWith(TEMP_PREFIX) || !plan.isFile(rel === '' ? name : `${rel}/${name}`)) return;
          kill = setTimeout(() => child.kill('SIGKILL'), plan.afterRenameMs);
        });
        watcher.on('error', () => undefined); // a directory may go; the run is then simply not killed by it
        watchers.push(watcher);
      }
    }
    const guard = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(kill);
      clearTimeout(guard);
      for (const watcher of watchers) watcher.close();
    };
    child.on('error', (error) => {
      done();
      reject(error);
    });
    child.on('close', (status, signal) => {
      done();
      if (timedOut) reject(new Error(`ferry ${args.join(' ')} (pid ${pid}) did not finish in ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`));
      else resolve({ pid, status, signal, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
}

/** directories lists every directory below root (and root itself): absolute path -> relative path. */
function directories(root: string): Map<string, string> {
  const dirs = new Map<string, string>([[root, '']]);
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(rel === '' ? root : path.join(root, rel), { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(TEMP_PREFIX)) continue;
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      dirs.set(path.join(root, child), child);
      walk(child);
    }
  };
  walk('');
  return dirs;
}

interface SyncJson {
  status: string;
  copied: { alpha: number; beta: number };
  retried: number;
  passes: number;
  failures: unknown[];
  conflicts: unknown[];
}

function parseSummary(stdout: string): SyncJson | undefined {
  try {
    return JSON.parse(stdout) as SyncJson;
  } catch {
    return undefined;
  }
}

function sameTrees(a: Snapshot, b: Snapshot): boolean {
  if (a.files.size !== b.files.size || a.dirs.size !== b.dirs.size) return false;
  for (const [rel, hash] of a.files) if (b.files.get(rel) !== hash) return false;
  for (const dir of a.dirs) if (!b.dirs.has(dir)) return false;
  return true;
}

// ---- the test ------------------------------------------------------------------

describe('ferry sync killed with SIGKILL at random moments', () => {
  test('never tears or loses a file, and converges afterwards', async () => {
    const envSeed = process.env.FERRY_CRASH_SEED;
    const seed = envSeed !== undefined && envSeed !== '' ? Number.parseInt(envSeed, 10) >>> 0 : randomInt(0, 0x1_0000_0000);
    console.log(`crash test seed ${seed} (replay with FERRY_CRASH_SEED=${seed})`);
    const rng = new Rng(seed);
    const started = performance.now();
    const trace: string[] = [];

    const top = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-crash-'));
    const roots: Record<Side, string> = { alpha: path.join(top, 'alpha'), beta: path.join(top, 'beta') };
    const home = path.join(top, 'home');
    fs.mkdirSync(roots.alpha);
    fs.mkdirSync(roots.beta);
    const syncArgs = ['sync', roots.alpha, roots.beta, '--once', '--json'];
    const model = new Model(roots, rng);
    let passed = false;

    try {
      // alpha: 300 files in 20 directories, some nested; beta: 100 files, in
      // directories of its own and in some of alpha's (created on both sides).
      const alphaDirs = Array.from({ length: 20 }, (_, i) => (i % 4 === 1 ? `d${i}/sub` : i % 4 === 2 ? `d${i}/sub/deeper` : `d${i}`));
      for (let i = 0; i < 300; i++) model.write('alpha', `${alphaDirs[i % alphaDirs.length]}/a${i}.bin`, model.randomSize());
      const betaDirs = ['d0', 'd1/sub', 'd4', 'e0', 'e1/x', 'e2', 'e3/y/z'];
      for (let i = 0; i < 100; i++) model.write('beta', `${betaDirs[i % betaDirs.length]}/b${i}.bin`, model.randomSize());
      console.log(`created ${model.files.size} files in ${Math.round(performance.now() - started)} ms`);

      const killedPids = new Set<number>();
      const phases = { idle: 0, 'before renames': 0, 'mid-renames': 0, 'after renames': 0 };
      let kills = 0;
      let completions = 0;
      let iterations = 0;
      let maxTemps = 0;
      // Kill delays are a seeded fraction of a window that follows how long a
      // whole run takes now: it shrinks to 1.3x a run that finished and grows
      // after a kill that came before any rename, so kills land in every phase
      // (scan and staging, the renames, the archive commit) and runs still
      // finish now and then.
      let window = 1000;
      // A copy renamed into place by a run killed before its archive commit is
      // not recorded yet; ferry's intents let the next run record it, so
      // editing its source again must not make a (spurious) conflict. Set
      // FERRY_CRASH_EDIT_UNSETTLED=0 to leave such paths alone until a run
      // finishes.
      const editUnsettled = process.env.FERRY_CRASH_EDIT_UNSETTLED !== '0';
      const unsettled = new Set<string>();
      const deadline = performance.now() + 100_000;

      while (kills < KILLS && iterations < MAX_ITERATIONS && performance.now() < deadline) {
        iterations++;
        const pendingBefore = pendingCopies(model);
        // Two kills in three come after a random delay; the third comes a
        // random 0-200 ms after the first rename into place.
        const byRename = rng.int(0, 2) === 0;
        const delay = byRename ? rng.int(0, 200) : 5 + Math.floor((rng.u32() / 0x1_0000_0000) * window);
        const when = byRename ? `${delay} ms after the first rename` : `after ${delay} ms`;
        const plan: KillPlan = byRename
          ? { afterRenameMs: delay, watch: new Map([...directories(roots.alpha), ...directories(roots.beta)]), isFile: (rel) => model.files.has(rel) }
          : { afterMs: delay };
        const run = await runAndKill(home, syncArgs, plan);
        if (run.signal === 'SIGKILL') killedPids.add(run.pid);
        const checked = checkTrees(model, killedPids);
        expect(checked.problems, `after iteration ${iterations}, kill ${when} (seed ${seed})`).toEqual([]);
        maxTemps = Math.max(maxTemps, checked.temps);
        let outcome: string;
        if (run.signal === 'SIGKILL') {
          kills++;
          const phase = pendingBefore === 0 ? 'idle' : checked.advanced.length === 0 ? 'before renames' : checked.pending > 0 ? 'mid-renames' : 'after renames';
          phases[phase]++;
          if (!editUnsettled) for (const rel of checked.advanced) unsettled.add(rel);
          if (phase === 'before renames' && !byRename) window = Math.min(2000, Math.round(window * 1.15));
          outcome = `killed ${phase}: ${checked.advanced.length} of ${pendingBefore} copies done, ${checked.temps} temporaries on disk`;
        } else {
          completions++;
          // With one writer per path and nothing changing during a run, a run that finishes is in sync.
          expect({ status: run.status, signal: run.signal, stderr: run.stderr }, `iteration ${iterations}: a run that finished (seed ${seed}); it printed ${run.stdout}`).toEqual({
            status: 0,
            signal: null,
            stderr: '',
          });
          expect(checked.pending, `iteration ${iterations}: copies still missing after a finished run (seed ${seed})`).toBe(0);
          window = Math.max(300, Math.round(run.ms * 1.3));
          unsettled.clear();
          outcome = `finished (exit 0): ${checked.advanced.length} of ${pendingBefore} copies done, ${checked.temps} temporaries on disk`;
        }

        // Keep work flowing both ways: a burst of changes after the first
        // partial run, then changes most of the time, and a big burst now and then.
        let mutated = '';
        if (iterations === 1 || rng.chance(0.1)) {
          const a = model.modify('alpha', rng.int(40, 80), unsettled);
          const b = model.modify('beta', rng.int(20, 40), unsettled);
          model.create('alpha', 10);
          model.create('beta', 10);
          mutated = `; then modified ${a} on alpha and ${b} on beta, created 10 on each`;
        } else if (rng.chance(0.75)) {
          const side: Side = rng.chance(0.5) ? 'alpha' : 'beta';
          const n = model.modify(side, rng.int(5, 40), unsettled);
          const created = rng.chance(0.3) ? rng.int(1, 3) : 0;
          model.create(side, created);
          mutated = `; then modified ${n}${created > 0 ? ` and created ${created}` : ''} on ${side}`;
        }
        // One line a kill: kept, and printed only when the test fails (or FERRY_CRASH_VERBOSE=1).
        trace.push(`#${iterations}: kill ${when}: ran ${run.ms} ms, ${outcome}${mutated}`);
        if (process.env.FERRY_CRASH_VERBOSE === '1') console.log(trace[trace.length - 1]);
      }
      expect(kills, `SIGKILLs delivered in ${iterations} iterations (seed ${seed})`).toBeGreaterThanOrEqual(20);

      // Uninterrupted syncs now: the first must converge (a second is allowed
      // but reported), and one more must find nothing to do.
      let converged = false;
      let finals = 0;
      let last: { status: number | null; stdout: string; stderr: string } | undefined;
      while (!converged && finals < 3) {
        finals++;
        const t0 = performance.now();
        last = await runFerry(home, syncArgs, RUN_TIMEOUT_MS);
        const ms = Math.round(performance.now() - t0);
        const checked = checkTrees(model, killedPids);
        expect(checked.problems, `after final sync ${finals} (seed ${seed})`).toEqual([]);
        converged = last.status === 0 && checked.pending === 0 && checked.temps === 0 && sameTrees(snapshot(roots.alpha), snapshot(roots.beta));
        const summary = parseSummary(last.stdout);
        console.log(
          `final sync ${finals}: ${ms} ms, exit ${last.status}, copied ${summary?.copied.beta ?? '?'} to beta and ${summary?.copied.alpha ?? '?'} to alpha, ` +
            `${summary?.passes ?? '?'} passes, ${summary?.retried ?? '?'} retried${converged ? ', converged' : ', NOT converged'}`,
        );
        if (!converged) console.log(`final sync ${finals} output: ${last.stdout}${last.stderr}`);
      }
      expect(converged, `converged within 2 uninterrupted syncs (seed ${seed}); last output: ${last?.stdout ?? ''}${last?.stderr ?? ''}`).toBe(true);
      expect(finals, `uninterrupted syncs needed to converge (seed ${seed})`).toBeLessThanOrEqual(2);

      const idle = await runFerry(home, syncArgs, RUN_TIMEOUT_MS);
      expect(idle.status, `idle sync exit status (seed ${seed}): ${idle.stderr}`).toBe(0);
      expect(parseSummary(idle.stdout)?.copied, `idle sync copies nothing (seed ${seed})`).toEqual({ alpha: 0, beta: 0 });

      // Both trees are byte-identical, hold the latest version of every path
      // the test wrote, and nothing else; no temporary and no lock is left.
      const alpha = snapshot(roots.alpha);
      const beta = snapshot(roots.beta);
      expect(alpha.temps, 'temporaries left on alpha').toEqual([]);
      expect(beta.temps, 'temporaries left on beta').toEqual([]);
      expect([...beta.dirs].sort(), 'directories').toEqual([...alpha.dirs].sort());
      expect([...beta.files].sort(), 'files on beta vs alpha').toEqual([...alpha.files].sort());
      const expected = [...model.files].map(([rel, t]) => [rel, t.versions[t.versions.length - 1]] as const).sort();
      expect([...alpha.files].sort(), 'every path holds its latest version').toEqual(expected);
      expect(fs.readdirSync(path.join(home, 'locks')), 'session locks left').toEqual([]);

      console.log(
        `${kills} kills (${Object.entries(phases).map(([phase, n]) => `${n} ${phase}`).join(', ')}), ${completions} runs finished before their kill, ` +
          `at most ${maxTemps} temporaries on disk after a kill, ` +
          `${model.files.size} files, ${finals} final sync(s); ${Math.round(performance.now() - started)} ms in all`,
      );
      passed = true;
    } finally {
      if (passed) fs.rmSync(top, { recursive: true, force: true });
      else console.log(`${trace.join('\n')}\ncrash test trees kept in ${top} (seed ${seed})`);
    }
  }, 240_000);
});
