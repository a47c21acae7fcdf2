#!/usr/bin/env node
// ferry against its peers, in one run (`npm run bench`): ferry, rsync -a and
// Unison, locally and over ssh, and cp -a as the floor, on the standard trees
// (initial sync, no-op resync, one file changed; wall time and peak RSS), then
// ferry sync --watch, lsyncd and unison -repeat 1 in watch mode (propagation
// latency, idle CPU). Several repetitions, medians, and a Markdown table, JSON
// and an SVG chart in bench/results/. See bench/README.md.
//
//   npm run bench                  full run (the standard trees, 5 runs)
//   npm run bench -- --quick       smaller trees, 3 runs: about 3 minutes on 2 cores
//   npm run bench -- --smoke       tiny trees, 1 run: checks the suite works (the CI test)
//
// Plain Node ESM, node:* only.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  countFiles,
  diffTrees,
  fail,
  firstLine,
  flush,
  fmtS,
  freshDir,
  genLarge,
  genTree,
  have,
  localDate,
  log,
  machineInfo,
  positiveInt,
  prng,
  quantile,
  rmrf,
  snapshotFerry,
  stats,
  tail,
} from './lib.mjs';
import { SCENARIOS, TREES, markdownReport, ratioChartSvg, ratioRows } from './report.mjs';
import { GUEST_USER, guestCommands, guestUnisonCleanup, sshUnavailable, startSshd } from './sshd.mjs';
import { peerPresence, probeFerryWatch, syncTools, watchTools } from './tools.mjs';
import { MAX_GAP_MS, POLL_MS, WRITE_BYTES, measureWatch, stopAllWatchers } from './watch.mjs';
import { runWatchSsh } from './watch-ssh.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const MKCORPUS = path.resolve(REPO, '..', 'shared', 'bench', 'mkcorpus.py');

// ---------------------------------------------------------------- options

const USAGE = `usage: node bench/run.mjs [--quick | --smoke] [--runs N] [--only PARTS] [--keep]
  --quick         smaller trees, 3 runs, 12 watch writes: about 3 minutes on 2 cores
  --smoke         tiny trees, 1 run, 3 watch writes: checks that the suite runs end to end
  --runs N        runs of each sync figure (default 5; 3 with --quick; 1 with --smoke)
  --only PARTS    comma-separated: sync and/or watch, and/or the trees small, large, huge-tree;
                  the rest is reported as "not run (--only)". watch-ssh (only when named): the
                  watchers with beta over loopback ssh on the huge tree, in a report of its own
  --keep          keep the work trees and logs afterwards
environment:
  BENCH_DIR             where the work trees go (default bench/work)
  BENCH_RESULTS_DIR     where the results go (default bench/results)
  BENCH_PRETEND_MISSING comma-separated peers to treat as not installed (to test the report)`;

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    runs: { type: 'string' },
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (opts.quick && opts.smoke) {
  process.stderr.write(`bench: --quick and --smoke exclude each other\n${USAGE}\n`);
  process.exit(2);
}
const MODE = opts.smoke ? 'smoke' : opts.quick ? 'quick' : 'full';

// Tree specs follow ../shared/bench/mkcorpus.py: DIR/d<i % dirs>/f<i>.dat (dw, fw =
// zero-padded widths) and DIR/big<NN>.bin. A full run uses mkcorpus.py itself.
const smallTree = (files, dirs) => ({ files, dirs, min: 1024, max: 16384, dw: 3, fw: 5 });
const hugeTree = (files, dirs) => ({ files, dirs, min: 1024, max: 1024, dw: 4, fw: 6 });
const PROFILES = {
  full: {
    runs: 5,
    trees: { small: smallTree(10000, 100), large: { files: 16, size: 64 << 20 }, 'huge-tree': hugeTree(100000, 1000) },
    // an initial sync of 100,000 files over ssh takes minutes for some peers: once per tool
    initialOnce: ['huge-tree'],
    warmup: true,
    writes: 200,
    idleSeconds: 60,
  },
  quick: {
    runs: 3,
    trees: { small: smallTree(1000, 100), large: { files: 2, size: 32 << 20 }, 'huge-tree': hugeTree(4000, 1000) },
    initialOnce: ['huge-tree'],
    warmup: true,
    writes: 12,
    idleSeconds: 5,
  },
  smoke: {
    runs: 1,
    trees: { small: smallTree(60, 6), large: { files: 2, size: 1 << 20 }, 'huge-tree': hugeTree(200, 10) },
    initialOnce: [],
    warmup: false,
    writes: 3,
    idleSeconds: 2,
  },
};
const PROFILE = PROFILES[MODE];
const RUNS = positiveInt(opts.runs, '--runs', PROFILE.runs, USAGE);

const PARTS = ['sync', 'watch'];
// watch-ssh runs only when --only names it, and writes a report of its own (bench/watch-ssh.mjs)
const WATCH_SSH = 'watch-ssh';
const ONLY = (opts.only ?? '').split(',').filter(Boolean);
for (const o of ONLY) {
  if (!PARTS.includes(o) && !TREES.includes(o) && o !== WATCH_SSH) {
    process.stderr.write(`bench: --only takes ${[...PARTS, ...TREES, WATCH_SSH].join(', ')}; got ${JSON.stringify(o)}\n${USAGE}\n`);
    process.exit(2);
  }
}
const RUN_WATCH_SSH = ONLY.includes(WATCH_SSH);
const MAIN_ONLY = ONLY.filter((o) => o !== WATCH_SSH);
// the main suite runs unless --only names watch-ssh and nothing else
const RUN_MAIN = ONLY.length === 0 || MAIN_ONLY.length > 0;
const selectedParts = MAIN_ONLY.some((o) => PARTS.includes(o)) ? PARTS.filter((p) => MAIN_ONLY.includes(p)) : PARTS;
const selectedTrees = MAIN_ONLY.some((o) => TREES.includes(o)) ? TREES.filter((t) => MAIN_ONLY.includes(t)) : TREES;

// ---------------------------------------------------------------- cleanup

const cleanups = [];
process.on('exit', (code) => {
  for (const f of cleanups.reverse()) {
    try {
      f(code);
    } catch {
      // best effort on the way out
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping\n`);
    process.exit(130);
  });
}

// ---------------------------------------------------------------- timing

// ssh-agent would change how each tool authenticates: all of them use the bench's key only
const BASE_ENV = { ...process.env };
delete BASE_ENV.SSH_AUTH_SOCK;
delete BASE_ENV.SSH_AGENT_PID;

let LOG_DIR = '';
let HAVE_TIME = false;
let logSeq = 0;

/**
 * timed runs one command as a whole process, its output to a log file, and
 * returns { seconds, status, log, load1, user, sys, maxRssKB }. The clock
 * (process.hrtime) wraps only the spawnSync. With /usr/bin/time the command
 * runs under `time -v`, for its CPU time and "Maximum resident set size"
 * (the largest single process among the command and its children); the
 * wrapper costs a fork and an exec, about a millisecond. An untimed `sync`
 * first, so no command pays for the previous one's writeback.
 */
function timed(label, cmd, args, env) {
  const name = `${String(++logSeq).padStart(4, '0')}-${label.replace(/[^a-z0-9.-]+/gi, '_')}`;
  const logFile = path.join(LOG_DIR, `${name}.log`);
  const timeFile = path.join(LOG_DIR, `${name}.time`);
  const fd = openSync(logFile, 'w');
  writeSync(fd, `$ ${[cmd, ...args].map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
  const [c, a] = HAVE_TIME ? ['/usr/bin/time', ['-v', '-o', timeFile, cmd, ...args]] : [cmd, args];
  flush();
  const load1 = os.loadavg()[0];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c, a, { stdio: ['ignore', fd, fd], env: { ...BASE_ENV, ...env } });
  const t1 = process.hrtime.bigint();
  closeSync(fd);
  const status = r.status ?? (r.signal ? `signal ${r.signal}` : (r.error?.message ?? 'unknown'));
  const out = { seconds: Number(t1 - t0) / 1e9, status, log: logFile, load1 };
  if (HAVE_TIME && existsSync(timeFile)) {
    const text = readFileSync(timeFile, 'utf8');
    const field = (re) => {
      const m = re.exec(text);
      return m ? Number(m[1]) : undefined;
    };
    Object.assign(out, {
      user: field(/User time \(seconds\): ([\d.]+)/),
      sys: field(/System time \(seconds\): ([\d.]+)/),
      maxRssKB: field(/Maximum resident set size \(kbytes\): (\d+)/),
    });
  }
  return out;
}

/** lastLine is the last non-empty line of a log, shortened, for a "failed (…)" cell. */
function lastLine(file) {
  const line = tail(file, 5).split('\n').filter((l) => l.trim() !== '').at(-1) ?? '';
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

// ---------------------------------------------------------------- trees

/** makeCorpus builds one standard tree in dir (mkcorpus.py in a full run, else the JS generator with the same layout). */
function makeCorpus(dir, kind, spec) {
  rmrf(dir);
  const t0 = process.hrtime.bigint();
  let how;
  if (MODE === 'full' && existsSync(MKCORPUS) && have('python3')) {
    const r = spawnSync('python3', [MKCORPUS, dir, kind], { stdio: 'inherit' });
    if (r.status !== 0) fail(`python3 ${MKCORPUS} ${dir} ${kind} exited ${r.status}`);
    how = `../shared/bench/mkcorpus.py ${kind}`;
  } else {
    mkdirSync(dir, { recursive: true });
    if (kind === 'large') genLarge(dir, spec);
    else genTree(dir, spec);
    how = MODE === 'full' ? `built-in generator (${existsSync(MKCORPUS) ? 'python3 missing' : `${MKCORPUS} missing`})` : `built-in generator, mkcorpus.py layout`;
  }
  const c = countFiles(dir);
  if (c.files !== spec.files) fail(`corpus ${kind} has ${c.files} files, expected ${spec.files}`);
  const files = c.files.toLocaleString('en-US');
  const description =
    kind === 'large'
      ? `${files} × ${spec.size >> 20} MiB`
      : `${files} files of ${spec.min === spec.max ? `${spec.min >> 10} KiB` : `${spec.min >> 10}–${spec.max >> 10} KiB`} in ${spec.dirs} dirs (${(c.bytes / 1048576).toFixed(1)} MiB)`;
  log(`tree ${kind}: ${description}, by ${how} in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
  // the file "one file changed" rewrites: the middle one in path order
  const all = readdirSync(dir, { recursive: true }).filter((p) => statSync(path.join(dir, p)).isFile()).sort();
  return { kind, dir, how, description, changeTarget: all[all.length >> 1], ...c };
}

/** changeOneFile writes 4 KiB of new random bytes in place at the middle of the corpus's change target (a 1 KiB file grows to 4.5 KiB). */
function changeOneFile(corpus, seed) {
  const file = path.join(corpus.dir, corpus.changeTarget);
  const rnd = prng(1000 + seed);
  const block = Buffer.alloc(4096);
  for (let o = 0; o < block.length; o += 4) block.writeUInt32LE(rnd(), o);
  const fd = openSync(file, 'r+');
  writeSync(fd, block, 0, block.length, Math.floor(statSync(file).size / 2));
  closeSync(fd);
}

function sameFile(a, b) {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- sync figures

const samples = []; // every timed command, for the JSON

/**
 * measureSyncTree runs the three sync figures of one tree for every tool and
 * returns { [scenario]: { [tool]: cell } }, a cell being { seconds, rssKB }
 * (stats, with a note when some runs failed) or { status } saying why there
 * is no figure.
 *
 * Each run goes scenario by scenario: every tool does its initial sync into
 * a fresh destination (and fresh state: $FERRY_HOME, unison's HOME), then
 * every tool its no-op resync, then one file of the source changes and every
 * tool resyncs. The order of the tools rotates each run, so no tool always
 * goes first or follows the same neighbour (paired ordering on a noisy
 * machine). With initialOnce, the initial syncs run only in the first run
 * and the destinations are kept. A warm-up run (untimed, initial syncs only)
 * loads the page cache and the tools' own files and installs ferry's agent
 * in the guest, as a user's first sync would.
 *
 * A tool that fails (non-zero exit, or a result that differs from the source)
 * sits out the rest of that run, since its destination is suspect; with
 * initialOnce it sits out the rest of the tree. Its other runs still count.
 */
function measureSyncTree(corpus, tools, { runs, initialOnce, warmup }) {
  const tree = corpus.kind;
  const cells = {};
  for (const s of SCENARIOS) {
    cells[s.key] = {};
    for (const t of tools) {
      const cell = { seconds: [], rssKB: [], failures: [] };
      if (t.unavailable) cell.status = t.unavailable;
      else if (t.initialOnly && s.key !== 'initial') Object.assign(cell, { status: `n/a (${t.label} has no resync: it copies everything every time)`, notApplicable: true });
      cells[s.key][t.key] = cell;
    }
  }
  const outOfTree = new Set();
  let outOfRun = new Set();
  const usable = (t) => !outOfTree.has(t.key) && !outOfRun.has(t.key);
  const markFailed = (t, scenario, rep, why) => {
    cells[scenario][t.key].failures.push(`${rep < 0 ? 'warm-up' : `run ${rep + 1}`}: ${why}`);
    log(`  ${t.label}: ${scenario} FAILED in ${rep < 0 ? 'the warm-up' : `run ${rep + 1}`}: ${why}`);
    outOfRun.add(t.key);
    if (initialOnce) outOfTree.add(t.key);
  };
  const targets = new Map();
  const dropTarget = (t) => {
    const target = targets.get(t.key);
    if (target === undefined) return;
    for (const p of [target.dst, target.home]) if (p) rmrf(p);
    targets.delete(t.key);
  };
  const runOne = (t, scenario, rep) => {
    const [cmd, args, env] = t.command(corpus.dir, targets.get(t.key));
    const r = timed(`${tree}-${scenario}-${t.key}-${rep < 0 ? 'warmup' : rep}`, cmd, args, env);
    if (r.status !== 0) {
      markFailed(t, scenario, rep, `exit ${r.status}: ${lastLine(r.log)}`);
      return undefined;
    }
    return r;
  };
  const record = (t, scenario, rep, r) => {
    samples.push({ tree, scenario, tool: t.key, rep, seconds: r.seconds, user: r.user, sys: r.sys, maxRssKB: r.maxRssKB, load1: r.load1 });
    cells[scenario][t.key].seconds.push(r.seconds);
    if (r.maxRssKB !== undefined) cells[scenario][t.key].rssKB.push(r.maxRssKB);
  };

  const active = tools.filter((t) => !t.unavailable);
  const first = warmup ? -1 : 0;
  for (let rep = first; rep < runs; rep++) {
    outOfRun = new Set();
    const order = active.map((_, i) => active[(i + rep - first) % active.length]);
    const line = [];
    if (rep <= 0 || !initialOnce) {
      for (const t of order.filter(usable)) {
        dropTarget(t);
        // a new name each run: unison over ssh keys its guest-side archive by path
        targets.set(t.key, t.target(`${tree}-${t.key}-${rep < 0 ? 'w' : rep}`));
        const r = runOne(t, 'initial', rep);
        if (r === undefined) continue;
        if (rep <= 0) {
          const d = diffTrees(corpus.dir, targets.get(t.key).dst);
          if (d !== undefined) {
            markFailed(t, 'initial', rep, `the result differs from the source: ${d.split('\n')[0]}`);
            continue;
          }
        }
        line.push(`initial ${t.key} ${fmtS(r.seconds)}s`);
        if (rep >= 0) record(t, 'initial', rep, r);
        if (t.initialOnly) dropTarget(t);
      }
    }
    if (rep < 0) {
      for (const t of active) dropTarget(t);
      log(`  warm-up (not counted): ${line.join(', ')}`);
      continue;
    }
    const resyncing = () => order.filter((t) => !t.initialOnly && usable(t));
    for (const t of resyncing()) {
      const r = runOne(t, 'noop', rep);
      if (r === undefined) continue;
      record(t, 'noop', rep, r);
      line.push(`no-op ${t.key} ${fmtS(r.seconds)}s`);
    }
    changeOneFile(corpus, rep);
    for (const t of resyncing()) {
      const r = runOne(t, 'change', rep);
      if (r === undefined) continue;
      if (!sameFile(path.join(corpus.dir, corpus.changeTarget), path.join(targets.get(t.key).dst, corpus.changeTarget))) {
        markFailed(t, 'change', rep, `the changed file did not arrive (log ${path.basename(r.log)})`);
        continue;
      }
      record(t, 'change', rep, r);
      line.push(`change ${t.key} ${fmtS(r.seconds)}s`);
    }
    if (!initialOnce) for (const t of active) dropTarget(t);
    log(`  run ${rep + 1}/${runs}: ${line.join(', ')}`);
  }
  for (const t of active) dropTarget(t);

  for (const s of SCENARIOS) {
    for (const t of tools) {
      const cell = cells[s.key][t.key];
      if (cell.status !== undefined) {
        cells[s.key][t.key] = { status: cell.status, ...(cell.notApplicable ? { notApplicable: true } : {}) };
        continue;
      }
      const once = initialOnce && s.key === 'initial';
      const skipped = (once ? 1 : runs) - cell.seconds.length - cell.failures.filter((f) => !f.startsWith('warm-up')).length;
      if (cell.seconds.length === 0) {
        cells[s.key][t.key] = { status: cell.failures.length ? `failed (${cell.failures[0]})` : 'not run (an earlier step failed)', failures: cell.failures };
        continue;
      }
      const notes = [
        ...(once && runs > 1 ? ['once per tool, too slow to repeat'] : []),
        ...(cell.failures.length ? [`${cell.failures.length} failed: ${cell.failures.join('; ')}`] : []),
        ...(skipped > 0 ? [`${skipped} skipped after an earlier step of the run failed`] : []),
      ];
      cells[s.key][t.key] = {
        seconds: stats(cell.seconds),
        ...(cell.rssKB.length ? { rssKB: stats(cell.rssKB) } : {}),
        ...(notes.length ? { note: notes.join('; ') } : {}),
        ...(cell.failures.length ? { failures: cell.failures } : {}),
      };
    }
  }
  return cells;
}

// ---------------------------------------------------------------- watch figures

/** measureWatchFigures runs each watcher on a copy of the small tree (see measureWatch) and returns { [tool]: cell }. */
async function measureWatchFigures(corpus, tools, work) {
  const cells = {};
  for (const t of tools) {
    if (t.unavailable) {
      cells[t.key] = { status: t.unavailable };
      continue;
    }
    const dir = freshDir(path.join(work, `watch-${t.key}`));
    const alpha = path.join(dir, 'alpha');
    if (spawnSync('cp', ['-a', corpus.dir, alpha]).status !== 0) fail(`cp -a ${corpus.dir} ${alpha} failed`);
    const beta = freshDir(path.join(dir, 'beta'));
    flush();
    log(`  ${t.label}: waiting for the initial sync, then ${PROFILE.writes} writes and ${PROFILE.idleSeconds} s idle`);
    const r = await measureWatch(t, { alpha, beta, dir: freshDir(path.join(dir, 'state')), writes: PROFILE.writes, idleSeconds: PROFILE.idleSeconds, readyTimeoutMs: 600_000 });
    const cell = { readySeconds: r.readySeconds, timeouts: r.timeouts, rawLatencyMs: r.latencyMs };
    if (r.error) {
      cell.status = `failed (${r.error.split('\n')[0]})`;
      log(`  ${t.label}: FAILED: ${r.error}`);
    } else {
      const l = r.latencyMs;
      Object.assign(cell, {
        latencyMs: { n: l.length, p50: quantile(l, 0.5), p99: quantile(l, 0.99), min: Math.min(...l), max: Math.max(...l) },
        idleCpuPercent: r.idleCpuPercent,
        idleSeconds: r.idleSeconds,
        peakRssKB: r.peakRssKB,
      });
      log(`  ${t.label}: ready after ${r.readySeconds.toFixed(1)} s; latency p50 ${cell.latencyMs.p50.toFixed(1)} ms, p99 ${cell.latencyMs.p99.toFixed(1)} ms; idle CPU ${r.idleCpuPercent.toFixed(2)} %`);
    }
    cells[t.key] = cell;
    if (!opts.keep) rmrf(dir);
  }
  return cells;
}

// ---------------------------------------------------------------- main

/** freeKiB returns the space available on the filesystem holding p. */
function freeKiB(p) {
  const line = spawnSync('df', ['-Pk', p], { encoding: 'utf8' }).stdout?.trim().split('\n')[1];
  return line ? Number(line.split(/\s+/)[3]) : undefined;
}

/** unreachableByOthers returns the first directory from p up that others cannot search (the guest user must reach its dirs), or undefined. */
function unreachableByOthers(p) {
  for (let d = p; d !== path.dirname(d); d = path.dirname(d)) if ((statSync(d).mode & 0o001) === 0) return d;
  return undefined;
}

async function main() {
  if (!existsSync(path.join(REPO, 'dist', 'cli', 'main.js')) || !existsSync(path.join(REPO, 'dist', 'agent.mjs'))) fail('ferry is not built: run `npm install` (or `npm run build`) first');
  if (!have('diff')) fail('diff is needed to verify the results');
  const failures = [];
  if (RUN_MAIN) {
    const f = await mainSuite();
    if (f) failures.push(f);
  }
  if (RUN_WATCH_SSH) {
    log(`watch-ssh (${MODE}): ${PROFILE.writes} writes, ${PROFILE.idleSeconds} s idle, the huge-tree layout`);
    const f = await runWatchSsh({
      mode: MODE,
      repo: REPO,
      benchDir: process.env.BENCH_DIR ?? path.join(REPO, 'bench', 'work'),
      resultsDir: path.resolve(process.env.BENCH_RESULTS_DIR ?? path.join(REPO, 'bench', 'results')),
      keep: opts.keep,
      argv: process.argv.slice(2),
      baseEnv: BASE_ENV,
      writes: PROFILE.writes,
      idleSeconds: PROFILE.idleSeconds,
      treeSpec: PROFILE.trees['huge-tree'],
      // Unison's initial sync of 100,000 files over ssh takes minutes; a watcher still short of a full beta after this is reported as failed
      readyTimeoutMs: MODE === 'full' ? 1_800_000 : 600_000,
      makeCorpus,
      onExit: (f) => cleanups.push(f),
    });
    if (f) failures.push(f);
  }
  // a peer that fails is a figure; ferry failing is a bug, and the exit status says so
  if (failures.length) fail(failures.join('; '));
}

/** mainSuite runs the sync and watch parts and writes their report; returns a message when ferry itself failed. */
async function mainSuite() {
  const startedAt = new Date();

  const WORK = path.resolve(process.env.BENCH_DIR ?? path.join(REPO, 'bench', 'work'), 'run');
  freshDir(WORK);
  cleanups.push((code) => {
    if (code === 0 && !opts.keep) spawnSync('rm', ['-rf', WORK], { stdio: 'ignore' });
    else process.stderr.write(`bench: work trees and logs kept in ${WORK} (delete it when done)\n`);
  });
  cleanups.push(stopAllWatchers);
  LOG_DIR = freshDir(path.join(WORK, 'logs'));
  const build = snapshotFerry(REPO, path.join(WORK, 'ferry'));
  const ferryVersion = firstLine(build.bin, ['--version']) ?? 'unknown';

  const present = peerPresence();
  HAVE_TIME = present('/usr/bin/time');
  const rssUnavailable = HAVE_TIME ? undefined : 'missing (/usr/bin/time: apt-get install time)';

  // disk: the trees come one at a time, each with its source and one destination per tool (8 copies)
  const copyBytes = (kind, spec) => (kind === 'large' ? spec.files * spec.size : spec.files * (spec.max + 4096));
  const needKiB = (8 * Math.max(...Object.entries(PROFILE.trees).map(([kind, spec]) => copyBytes(kind, spec)))) / 1024;
  const avail = freeKiB(WORK);
  if (avail !== undefined && avail < needKiB) fail(`not enough disk space under ${WORK}: ${(avail / 1048576).toFixed(1)} GiB available, about ${(needKiB / 1048576).toFixed(1)} GiB needed`);

  // the ssh half: a loopback sshd and the guest user
  let sshd;
  let sshWhy = selectedParts.includes('sync') ? sshUnavailable() : 'not run (--only)';
  const unreachable = sshWhy === undefined ? unreachableByOthers(WORK) : undefined;
  if (unreachable) sshWhy = `not run: ${unreachable} is not searchable by ${GUEST_USER} (set BENCH_DIR elsewhere)`;
  let guestHas = new Set();
  if (sshWhy === undefined) {
    sshd = await startSshd(path.join(WORK, 'sshd'));
    cleanups.push(sshd.stop);
    cleanups.push(guestUnisonCleanup(sshd.guestHome));
    const guest = freshDir(path.join(WORK, 'guest'));
    spawnSync('chown', [`${GUEST_USER}:${GUEST_USER}`, guest]);
    guestHas = guestCommands(sshd, ['node', 'rsync', 'unison'], BASE_ENV);
    log(`sshd on 127.0.0.1:${sshd.port}, logging in as ${GUEST_USER}; in its PATH: ${[...guestHas].join(', ') || 'none of node, rsync, unison'}`);
  } else log(`ssh cells: ${sshWhy}`);

  const sync = syncTools({ work: WORK, ferryBin: build.bin, ferryVersion, present, sshd, sshUnavailable: sshWhy, guestHas });
  const ferryWatchUnavailable = selectedParts.includes('watch') ? await probeFerryWatch(build.bin, path.join(WORK, 'watch-probe')) : 'not run (--only)';
  const watch = watchTools({ ferryBin: build.bin, ferryVersion, ferryWatchUnavailable, present });
  if (!selectedParts.includes('watch')) for (const t of watch) t.unavailable = 'not run (--only)';
  for (const t of [...sync, ...watch]) if (t.unavailable) log(`${t.label}: ${t.unavailable}`);

  const machine = { ...machineInfo(), loadAtStart: os.loadavg() };
  const versions = {
    ferry: ferryVersion,
    rsync: sync.find((t) => t.key === 'rsync').version,
    unison: sync.find((t) => t.key === 'unison').version,
    cp: sync.find((t) => t.key === 'cp').version,
    lsyncd: watch.find((t) => t.key === 'lsyncd').version,
    ssh: present('ssh') ? firstLine('ssh', ['-V']) : 'missing',
    time: HAVE_TIME ? firstLine('/usr/bin/time', ['--version']) : 'missing',
  };
  log(`bench (${MODE}): runs=${RUNS}, trees ${selectedTrees.join(', ')}, parts ${selectedParts.join(', ')}; work dir ${WORK}`);
  log(`machine: ${machine.cpus} cores, ${machine.memGiB} GiB, ${machine.os}, load ${machine.loadAtStart.map((x) => x.toFixed(2)).join(' ')}`);

  // ---------------------------------------------- the figures
  const treeInfo = {};
  const syncCells = {};
  let watchCells;
  let warmupDone = !PROFILE.warmup;
  // the watchers run on the small tree: build it when either part needs it
  const syncTrees = selectedParts.includes('sync') ? selectedTrees : [];
  const trees = TREES.filter((t) => syncTrees.includes(t) || (t === 'small' && selectedParts.includes('watch')));
  for (const kind of trees) {
    const corpus = makeCorpus(path.join(WORK, `tree-${kind}`), kind, PROFILE.trees[kind]);
    treeInfo[kind] = { description: corpus.description, files: corpus.files, dirs: corpus.dirs, bytes: corpus.bytes, how: corpus.how, changed: corpus.changeTarget };
    if (syncTrees.includes(kind)) {
      const initialOnce = PROFILE.initialOnce.includes(kind);
      // the warm-up repeats the initial syncs: not on a tree whose initial syncs are too slow to repeat
      const warmup = !warmupDone && !initialOnce;
      log(`sync figures, ${kind} tree: ${RUNS} run(s)${initialOnce ? ', initial syncs once per tool' : ''}${warmup ? ', after a warm-up' : ''}`);
      syncCells[kind] = measureSyncTree(corpus, sync, { runs: RUNS, initialOnce, warmup });
      warmupDone ||= warmup;
    }
    if (kind === 'small' && selectedParts.includes('watch')) {
      log(`watch figures on the small tree: ${watch.map((t) => t.label).join(', ')}`);
      watchCells = await measureWatchFigures(corpus, watch, WORK);
    }
    if (!opts.keep) rmrf(corpus.dir);
  }
  watchCells ??= Object.fromEntries(watch.map((t) => [t.key, { status: t.unavailable }]));
  for (const kind of TREES) {
    if (syncCells[kind]) continue;
    const why = 'not run (--only)';
    syncCells[kind] = Object.fromEntries(SCENARIOS.map((s) => [s.key, Object.fromEntries(sync.map((t) => [t.key, { status: why }]))]));
  }

  // ---------------------------------------------- the report
  const finishedAt = new Date();
  const wallSeconds = (finishedAt - startedAt) / 1000;
  const loads = samples.map((x) => x.load1);
  const notes = [
    `Machine: ${machine.host}, ${machine.cpus} cores (${machine.cpuModel}), ${machine.memGiB} GiB, ${machine.os}, kernel ${machine.kernel}, node ${machine.node}.`,
    `Versions: ${Object.entries(versions).map(([k, v]) => `${k}: ${v}`).join('; ')}.`,
    `ferry under test: dist/ built ${build.distBuiltAt} from ${build.head}${build.uncommittedSourceFiles ? ` plus ${build.uncommittedSourceFiles} uncommitted source file(s)` : ''}, copied aside at the start so a rebuild during the run cannot change it.`,
    `Run ${startedAt.toISOString()} – ${finishedAt.toISOString()} (${Math.round(wallSeconds)} s), \`node bench/run.mjs${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}\`.`,
    `Commands: \`ferry sync SRC DST --once\` (over ssh: \`ferry sync SRC ssh://${GUEST_USER}@127.0.0.1:PORT/DST --once --key KEY\`); \`rsync -a SRC/ DST/\` (over ssh: \`-e "ssh -p PORT -i KEY … -c aes128-gcm@openssh.com"\`, the cipher ferry's ssh2 negotiates); ` +
      '`unison SRC DST -batch -perms 0 -ui text` (over ssh: `ssh://…//DST -sshargs "…"` with the same ssh options); `cp -a SRC DST`. ' +
      `Each run starts from a fresh empty destination and fresh state ($FERRY_HOME, unison's HOME; a new guest path for unison over ssh).`,
    `Over ssh, the "other machine" is this one: /usr/sbin/sshd on 127.0.0.1 started by the bench (fresh host key, key-only auth), logging in as the unprivileged ${GUEST_USER}; its side runs on the same cores.`,
    `Sync figures: ${RUNS} run(s) per cell${PROFILE.warmup ? ' after one untimed warm-up (initial syncs of the first tree)' : ''}; in each run every tool does its initial sync, then every tool its no-op resync, then 4 KiB in the middle of one file (${Object.entries(treeInfo).map(([k, v]) => `${k}: ${v.changed}`).join(', ')}) are rewritten and every tool resyncs. ` +
      `Tool order rotates each run. ${PROFILE.initialOnce.length ? `For ${PROFILE.initialOnce.join(', ')} the initial syncs run once per tool (n=1; too slow to repeat) and the destinations are kept for the resyncs. ` : ''}` +
      'Every initial sync is checked with `diff -rq` against the source in the first run, and the changed file after every resync.',
    'Timing: process.hrtime around each whole process (start-up included), warm page cache, an untimed `sync` before each command. Peak RSS and CPU from `/usr/bin/time -v`.',
    `Watch figures: each watcher starts on a copy of the small tree and an empty beta; once beta matches (diff -rq), ${PROFILE.writes} times: a random 0–${MAX_GAP_MS} ms pause, then a new ${WRITE_BYTES}-byte file of random bytes on alpha, and beta is polled every ${POLL_MS} ms until it holds that content (the latency). ` +
      `Then, after 2 s of quiet, idle CPU = CPU time (utime + stime, children included, from /proc/PID/stat) of the watcher's process tree over ${PROFILE.idleSeconds} s, as % of one core; peak RSS = the largest VmHWM in that tree at the end. ` +
      'lsyncd: `default.rsync`, delay 0, `rsync = { archive = true }` (one-way); unison: `-batch -perms 0 -repeat 1`.',
    loads.length
      ? `1-minute load average when each timed command started: median ${quantile(loads, 0.5).toFixed(2)}, min ${Math.min(...loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)} on ${machine.cpus} cores (well above 0: something else was running, and wall times are noisier).`
      : 'No timed commands ran.',
  ];

  const tools = Object.fromEntries([...sync, ...watch].map((t) => [t.key, { label: t.label, over: t.over ?? 'local', status: t.unavailable }]));
  const result = {
    mode: MODE,
    date: localDate(startedAt),
    host: machine.host,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallSeconds,
    argv: process.argv.slice(2),
    runs: RUNS,
    writes: PROFILE.writes,
    idleSeconds: PROFILE.idleSeconds,
    machine,
    versions,
    ferryBuild: { head: build.head, distBuiltAt: build.distBuiltAt, uncommittedSourceFiles: build.uncommittedSourceFiles },
    trees: treeInfo,
    tools,
    rssUnavailable,
    sync: syncCells,
    watch: watchCells,
    notes,
  };
  const ratios = ratioRows(result);
  const resultsDir = path.resolve(process.env.BENCH_RESULTS_DIR ?? path.join(REPO, 'bench', 'results'));
  mkdirSync(resultsDir, { recursive: true });
  const suffix = `${MODE === 'full' ? '' : `-${MODE}`}${ONLY.length ? '-partial' : ''}`;
  const base = path.join(resultsDir, `${result.date}-${machine.host.replace(/[^A-Za-z0-9.-]+/g, '_')}${suffix}`);
  const md = markdownReport(result, ratios, `${path.basename(base)}.svg`);
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.svg`, ratioChartSvg(ratios, `ferry and its peers, ${result.date}, ${machine.host}${MODE === 'full' ? '' : ` (--${MODE})`}`));
  writeFileSync(`${base}.json`, `${JSON.stringify({ ...result, ratios, samples }, null, 2)}\n`);
  process.stdout.write(`\n${md}`);
  log(`wrote ${base}.md, .json and .svg in ${Math.round(wallSeconds)} s`);

  const ferryCells = [...Object.values(syncCells).flatMap((byScenario) => Object.values(byScenario).flatMap((c) => [c.ferry, c['ferry-ssh']])), watchCells['ferry-watch']];
  const ferryFailed = ferryCells.filter((c) => c?.failures?.length || c?.status?.startsWith('failed'));
  return ferryFailed.length ? `ferry failed in ${ferryFailed.length} cell(s); see the table` : undefined;
}

main().then(
  () => process.exit(0),
  (error) => fail(error?.stack ?? String(error)),
);
