#!/usr/bin/env node
// Local sync benchmark: times ferry against cp, rsync and unison on the
// standard trees, several repetitions, and reports median [min–max].
//
//   npm run bench                     full run (10,000-file and 100,000-file trees)
//   npm run bench -- --quick          2,000 / 10,000 files, fewer reps (~3 minutes)
//   npm run bench -- --runs 7         repetitions for figures 1 and 2 and idle RSS
//   npm run bench -- --rss-runs 3     repetitions of ferry's initial sync of the huge tree (figure 3)
//   npm run bench -- --keep           keep the work trees afterwards
//
// Work trees go under $BENCH_DIR or bench/work/ (gitignored); results go to
// bench/results/local-<date>[-quick].{md,json}. See bench/README.md.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countFiles, diffTrees, fail, firstLine, flush, fmtS, fmtStat, freshDir, genTree, have, log, median, positiveInt, rmrf, snapshotFerry, stats, tail, waitAfterDeletions } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
// ferry under test: a snapshot of bin/ and dist/ taken at the start (see snapshotFerry)
let FERRY_BIN = path.join(REPO, 'bin', 'ferry.js');
const MKCORPUS = path.resolve(REPO, '..', 'shared', 'bench', 'mkcorpus.py');

// ---------------------------------------------------------------- options

const USAGE = `usage: node bench/sync-local.mjs [--quick] [--runs N] [--rss-runs N] [--keep]
  --quick       2,000-file small tree and 10,000-file huge tree, fewer reps (about 2-3 minutes)
  --runs N      repetitions for figures 1, 2 and idle RSS (default 5; 3 with --quick)
  --rss-runs N  repetitions of ferry's initial sync of the huge tree for figure 3 (default 3; 2 with --quick)
  --keep        keep the work trees under $BENCH_DIR or bench/work/ afterwards`;

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    'rss-runs': { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const QUICK = opts.quick;
const RUNS = positiveInt(opts.runs, '--runs', QUICK ? 3 : 5, USAGE);
const RSS_RUNS = positiveInt(opts['rss-runs'], '--rss-runs', QUICK ? 2 : 3, USAGE);

// the layouts of ../shared/bench/mkcorpus.py: DIR/d<i % dirs>/f<i>.dat (dw, fw = zero-padded widths)
const SMALL = { files: QUICK ? 2000 : 10000, dirs: 100, min: 1024, max: 16384, dw: 3, fw: 5 };
const HUGE = { files: QUICK ? 10000 : 100000, dirs: 1000, min: 1024, max: 1024, dw: 4, fw: 6 };

const TARGETS = { initialRatio: 2.0, noopRatio: 0.5, bytesPerFile: 200 };

// ---------------------------------------------------------------- helpers

let logSeq = 0;
let LOG_DIR = '';
let HAVE_TIME = false;

/**
 * timed runs one command as a whole process, output to a log file, and
 * returns { seconds, status, log, user, sys, maxRssKB, load1 }. The clock
 * (process.hrtime) wraps only the spawnSync. When /usr/bin/time exists the
 * command runs under `/usr/bin/time -f '%e %U %S %M'` for its CPU time and
 * max RSS (its own cost is a fork and exec, about a millisecond).
 */
function timed(label, cmd, args, env = {}) {
  const name = `${String(++logSeq).padStart(4, '0')}-${label.replace(/[^a-z0-9.-]+/gi, '_')}`;
  const logFile = path.join(LOG_DIR, `${name}.log`);
  const timeFile = path.join(LOG_DIR, `${name}.time`);
  const fd = openSync(logFile, 'w');
  writeSync(fd, `$ ${[cmd, ...args].join(' ')}\n`);
  const [c, a] = HAVE_TIME ? ['/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  flush();
  const load1 = os.loadavg()[0];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c, a, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  const t1 = process.hrtime.bigint();
  closeSync(fd);
  const status = r.status ?? (r.signal ? `signal ${r.signal}` : r.error ? String(r.error.message) : 'unknown');
  const out = { seconds: Number(t1 - t0) / 1e9, status, log: logFile, load1 };
  if (HAVE_TIME && existsSync(timeFile)) {
    // on failure /usr/bin/time puts "Command exited with non-zero status N" first
    const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/m.exec(readFileSync(timeFile, 'utf8'));
    if (m) Object.assign(out, { timeSeconds: Number(m[1]), user: Number(m[2]), sys: Number(m[3]), maxRssKB: Number(m[4]) });
  }
  return out;
}

const fmtMiB = (kb) => `${(kb / 1024).toFixed(1)}`;

// ---------------------------------------------------------------- corpus

/** genTree writes `files` files of min..max bytes of random data spread over `dirs` directories (the mkcorpus.py layout) */
function makeCorpus(dir, kind, spec) {
  rmrf(dir);
  const t0 = process.hrtime.bigint();
  let how;
  if (!QUICK && existsSync(MKCORPUS) && have('python3')) {
    const r = spawnSync('python3', [MKCORPUS, dir, kind], { stdio: 'inherit' });
    if (r.status !== 0) fail(`python3 ${MKCORPUS} ${dir} ${kind} exited ${r.status}`);
    how = `python3 ../shared/bench/mkcorpus.py DIR ${kind}`;
  } else {
    mkdirSync(dir, { recursive: true });
    genTree(dir, spec);
    how = QUICK
      ? `built-in generator (--quick; mkcorpus.py layout, ${spec.files} files)`
      : `built-in generator (${MKCORPUS} ${existsSync(MKCORPUS) ? 'present but python3 missing' : 'missing'})`;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = countFiles(dir);
  log(`corpus ${kind}: ${c.files} files in ${c.dirs} dirs, ${(c.bytes / 1048576).toFixed(1)} MiB, by ${how} in ${secs.toFixed(1)} s`);
  if (c.files !== spec.files) fail(`corpus ${kind} has ${c.files} files, expected ${spec.files}`);
  return { kind, dir, how, ...c };
}

// ---------------------------------------------------------------- tools

// ferry runs as its users run it: the executable (bin/ferry.js).
const ferryArgs = (a, b) => ['sync', a, b, '--once'];
const unisonArgs = (a, b) => [a, b, '-batch', '-perms', '0', '-ui', 'text'];

function unisonEnv(home) {
  mkdirSync(path.join(home, '.unison'), { recursive: true });
  return { HOME: home, UNISON: path.join(home, '.unison') };
}

// ---------------------------------------------------------------- main

function main() {
  if (!existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) fail('ferry is not built: run `npm install` (or `npm run build`) first');

  const WORK = path.resolve(process.env.BENCH_DIR ?? path.join(REPO, 'bench', 'work'), 'sync-local');
  // A previous run's trees may have been deleted just now (here, or at the
  // end of that run): figure 1 starts a minute after this (see there).
  freshDir(WORK);
  const began = Date.now();
  LOG_DIR = freshDir(path.join(WORK, 'logs'));
  const build = snapshotFerry(REPO, path.join(WORK, 'ferry'));
  FERRY_BIN = build.bin;

  const peers = {
    cp: have('cp'),
    rsync: have('rsync'),
    unison: have('unison'),
    time: have('/usr/bin/time'),
    diff: have('diff'),
  };
  if (!peers.diff) fail('diff is needed to verify results');
  HAVE_TIME = peers.time;

  const osRelease = (() => {
    try {
      return /PRETTY_NAME="?([^"\n]*)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  })();
  const machine = {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: osRelease ?? `${os.type()} ${os.release()}`,
    kernel: os.release(),
    node: process.version,
    ferry: firstLine(process.execPath, [FERRY_BIN, '--version']),
    ferryBuild: build,
    rsync: peers.rsync ? firstLine('rsync', ['--version']) : 'missing',
    unison: peers.unison ? firstLine('unison', ['-version']) : 'missing',
    cp: peers.cp ? firstLine('cp', ['--version']) : 'missing',
  };
  const startedAt = new Date();
  const date = `${startedAt.getFullYear()}-${String(startedAt.getMonth() + 1).padStart(2, '0')}-${String(startedAt.getDate()).padStart(2, '0')}`;
  log(`ferry sync-local bench${QUICK ? ' (--quick)' : ''}: runs=${RUNS}, rss-runs=${RSS_RUNS}, work dir ${WORK}`);
  log(`ferry under test: ${machine.ferry}, dist/ built ${build.distBuiltAt} from ${build.head}${build.uncommittedSourceFiles ? ` + ${build.uncommittedSourceFiles} uncommitted source file(s)` : ''} (snapshot in the work dir)`);
  log(`machine: ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}; node ${machine.node}`);
  for (const [k, ok] of Object.entries(peers)) if (!ok) log(`peer ${k === 'time' ? '/usr/bin/time' : k} is MISSING; it will be reported as missing`);

  const small = makeCorpus(path.join(WORK, 'corpus-small'), 'small', SMALL);
  const huge = makeCorpus(path.join(WORK, 'corpus-huge'), 'huge-tree', HUGE);

  const raw = { figure1: {}, figure2: { setup: {}, noop: {} }, figure3: {} };
  const samples = []; // every timed command: figure, tool, rep, seconds, user, sys, maxRssKB, load1
  const record = (figure, tool, rep, r) => {
    const { seconds, user, sys, maxRssKB, load1 } = r;
    samples.push({ figure, tool, rep, seconds, user, sys, maxRssKB, load1, status: r.status });
  };
  const errors = {}; // tool key -> message (peer failures; ferry failures abort)

  function peerFailed(key, what, res) {
    errors[key] = `${what}: exit ${res.status}, see ${path.relative(REPO, res.log)}`;
    log(`WARNING: ${errors[key]}\n${tail(res.log)}`);
  }
  function ferryCheck(res, what) {
    if (res.status !== 0) fail(`ferry ${what} exited ${res.status}; log ${res.log}:\n${tail(res.log)}`);
  }

  // ------------------------------------------------ figure 1: initial sync of the small tree
  log(`figure 1: initial sync of the small tree (${small.files} files), 1 warm-up + ${RUNS} reps`);
  const f1 = { ferry: [], cp: [], cpSync: [], rsync: [], unison: [] };
  // Every run writes into a directory never used before, and they are all
  // deleted after the last rep: on ext4, files created within a minute or so
  // after thousands were deleted are slow to create (the inode allocator
  // skips recently deleted inodes), which would slow whichever tool ran
  // right after a deletion.
  const F1 = freshDir(path.join(WORK, 'f1'));
  waitAfterDeletions(began);
  const f1Dir = (tool, rep) => path.join(F1, `${tool}-${rep + 1}`);
  const f1New = (tool, rep) => freshDir(f1Dir(tool, rep));
  const f1Tools = [
    {
      key: 'ferry',
      ok: true,
      run(rep) {
        const dst = f1New('ferry', rep);
        const home = f1New('ferry-home', rep);
        const r = timed(`f1-ferry-${rep}`, FERRY_BIN, ferryArgs(small.dir, dst), { FERRY_HOME: home });
        ferryCheck(r, 'initial sync of the small tree');
        if (rep < 0) {
          const d = diffTrees(small.dir, dst);
          if (d !== undefined) fail(`ferry's initial sync of the small tree differs from the source: ${d}`);
          log('  verified: ferry destination == source (diff -rq)');
        }
        return r;
      },
    },
    {
      key: 'cp',
      ok: peers.cp,
      run(rep) {
        const dst = f1Dir('cp', rep);
        const r = timed(`f1-cp-${rep}`, 'cp', ['-a', small.dir, dst]);
        if (rep < 0 && r.status === 0 && diffTrees(small.dir, dst) !== undefined) r.status = 'result differs';
        return r;
      },
    },
    {
      key: 'cpSync',
      ok: peers.cp,
      run(rep) {
        // informational: cp -a followed by sync, i.e. the floor with the data made durable as ferry does (syncfs)
        const dst = f1Dir('cpsync', rep);
        const a = timed(`f1-cpsync-${rep}`, 'cp', ['-a', small.dir, dst]);
        const t0 = process.hrtime.bigint();
        spawnSync('sync', [], { stdio: 'ignore' });
        a.seconds += Number(process.hrtime.bigint() - t0) / 1e9;
        return a;
      },
    },
    {
      key: 'rsync',
      ok: peers.rsync,
      run(rep) {
        const dst = f1New('rsync', rep);
        const r = timed(`f1-rsync-${rep}`, 'rsync', ['-a', `${small.dir}/`, `${dst}/`]);
        if (rep < 0 && r.status === 0 && diffTrees(small.dir, dst) !== undefined) r.status = 'result differs';
        return r;
      },
    },
    {
      key: 'unison',
      ok: peers.unison,
      run(rep) {
        const dst = f1New('unison', rep);
        const home = f1New('unison-home', rep);
        const r = timed(`f1-unison-${rep}`, 'unison', unisonArgs(small.dir, dst), unisonEnv(home));
        if (rep < 0 && r.status === 0 && diffTrees(small.dir, dst) !== undefined) r.status = 'result differs';
        return r;
      },
    },
  ];
  // rep -1 is an untimed warm-up of every tool (page cache, node's and the tools' own files); it is not recorded
  for (let rep = -1; rep < RUNS; rep++) {
    // rotate the order each rep so no tool always runs first (or right after another)
    const order = f1Tools.map((_, i) => f1Tools[(i + rep + f1Tools.length) % f1Tools.length]);
    const line = [];
    for (const t of order) {
      if (!t.ok || errors[`f1.${t.key}`]) continue;
      const r = t.run(rep);
      if (r.status !== 0) {
        peerFailed(`f1.${t.key}`, `figure 1 ${t.key}`, r);
        continue;
      }
      line.push(`${t.key} ${fmtS(r.seconds)}s`);
      if (rep < 0) continue;
      record('1-initial-small', t.key, rep, r);
      f1[t.key].push(r.seconds);
    }
    log(`  ${rep < 0 ? 'warm-up (not counted)' : `rep ${rep + 1}/${RUNS}`}: ${line.join(', ')}`);
  }
  rmrf(F1);
  raw.figure1 = f1;

  // ------------------------------------------------ figure 2: no-op resync of the huge tree
  log(`figure 2: no-op resync of the huge tree (${huge.files} files); setup = 1 initial sync per tool (not in the figure)`);
  const f2dst = { ferry: path.join(WORK, 'f2-ferry'), rsync: path.join(WORK, 'f2-rsync'), unison: path.join(WORK, 'f2-unison') };
  const f2home = { ferry: path.join(WORK, 'f2-ferry-home'), unison: path.join(WORK, 'f2-unison-home') };
  const f2Tools = [
    { key: 'ferry', ok: true, args: () => [FERRY_BIN, ferryArgs(huge.dir, f2dst.ferry), { FERRY_HOME: f2home.ferry }] },
    { key: 'rsync', ok: peers.rsync, args: () => ['rsync', ['-a', `${huge.dir}/`, `${f2dst.rsync}/`], {}] },
    { key: 'unison', ok: peers.unison, args: () => ['unison', unisonArgs(huge.dir, f2dst.unison), unisonEnv(f2home.unison)] },
  ];
  for (const t of f2Tools) {
    if (!t.ok) continue;
    freshDir(f2dst[t.key]);
    if (f2home[t.key]) freshDir(f2home[t.key]);
    const [cmd, args, env] = t.args();
    const r = timed(`f2-setup-${t.key}`, cmd, args, env);
    if (t.key === 'ferry') ferryCheck(r, 'initial sync of the huge tree (figure 2 setup)');
    else if (r.status !== 0) {
      peerFailed(`f2.${t.key}`, `figure 2 setup ${t.key}`, r);
      continue;
    }
    const d = diffTrees(huge.dir, f2dst[t.key]);
    if (d !== undefined) {
      if (t.key === 'ferry') fail(`ferry's initial sync of the huge tree differs from the source: ${d}`);
      peerFailed(`f2.${t.key}`, `figure 2 setup ${t.key} (result differs)`, r);
      continue;
    }
    record('2-setup-initial-huge', t.key, 0, r);
    raw.figure2.setup[t.key] = r.seconds;
    log(`  setup ${t.key}: initial sync ${fmtS(r.seconds)}s, verified destination == source (diff -rq)`);
  }
  const f2 = { ferry: [], rsync: [], unison: [] };
  for (let rep = 0; rep < RUNS; rep++) {
    const order = f2Tools.map((_, i) => f2Tools[(i + rep) % f2Tools.length]);
    const line = [];
    for (const t of order) {
      if (!t.ok || errors[`f2.${t.key}`]) continue;
      const [cmd, args, env] = t.args();
      const r = timed(`f2-noop-${t.key}-${rep}`, cmd, args, env);
      if (t.key === 'ferry') {
        ferryCheck(r, 'no-op resync of the huge tree');
        const out = readFileSync(r.log, 'utf8');
        if (!out.includes('nothing to do')) log(`  WARNING: ferry's no-op resync did not say "nothing to do":\n${tail(r.log, 5)}`);
      } else if (r.status !== 0) {
        peerFailed(`f2.${t.key}`, `figure 2 no-op ${t.key}`, r);
        continue;
      }
      record('2-noop-huge', t.key, rep, r);
      f2[t.key].push(r.seconds);
      line.push(`${t.key} ${fmtS(r.seconds)}s`);
    }
    log(`  rep ${rep + 1}/${RUNS}: ${line.join(', ')}`);
  }
  {
    const d = diffTrees(huge.dir, f2dst.ferry);
    if (d !== undefined) fail(`after ferry's no-op resyncs the huge tree differs from the source: ${d}`);
    log('  verified: ferry destination == source after the no-op resyncs (diff -rq)');
  }
  // Figure 2's trees are deleted after figure 3, whose initial syncs would
  // otherwise run right after 300,000 deletions (see figure 1).
  raw.figure2.noop = f2;

  // ------------------------------------------------ figure 3: ferry's memory
  const f3 = { idleKB: [], peakKB: [], peakSeconds: [] };
  if (peers.time) {
    const rssRun = (label, a, b, home) => {
      const r = timed(label, FERRY_BIN, ferryArgs(a, b), { FERRY_HOME: home });
      ferryCheck(r, label);
      if (r.maxRssKB === undefined) fail(`could not read /usr/bin/time output for ${label}`);
      return r;
    };
    log(`figure 3: ferry idle RSS (sync of two empty dirs), ${RUNS} reps`);
    for (let rep = 0; rep < RUNS; rep++) {
      const a = freshDir(path.join(WORK, 'f3-empty-a'));
      const b = freshDir(path.join(WORK, 'f3-empty-b'));
      const r = rssRun(`f3-idle-${rep}`, a, b, freshDir(path.join(WORK, 'f3-home')));
      record('3-idle', 'ferry', rep, r);
      f3.idleKB.push(r.maxRssKB);
    }
    log(`  idle max RSS: ${f3.idleKB.map((k) => `${fmtMiB(k)} MiB`).join(', ')}`);
    log(`figure 3: ferry peak RSS during the initial sync of the huge tree (${huge.files} files), ${RSS_RUNS} reps`);
    for (let rep = 0; rep < RSS_RUNS; rep++) {
      const dst = freshDir(path.join(WORK, `f3-dst-${rep + 1}`));
      const r = rssRun(`f3-peak-${rep}`, huge.dir, dst, freshDir(path.join(WORK, `f3-home-${rep + 1}`)));
      if (rep === 0) {
        const d = diffTrees(huge.dir, dst);
        if (d !== undefined) fail(`ferry's initial sync of the huge tree (figure 3) differs from the source: ${d}`);
      }
      record('3-peak-initial-huge', 'ferry', rep, r);
      f3.peakKB.push(r.maxRssKB);
      f3.peakSeconds.push(r.seconds);
      log(`  rep ${rep + 1}/${RSS_RUNS}: ${fmtS(r.seconds)}s, max RSS ${fmtMiB(r.maxRssKB)} MiB${rep === 0 ? ' (verified destination == source)' : ''}`);
    }
    for (const p of ['f3-empty-a', 'f3-empty-b', 'f3-home']) rmrf(path.join(WORK, p));
    for (let rep = 0; rep < RSS_RUNS; rep++) for (const p of [`f3-dst-${rep + 1}`, `f3-home-${rep + 1}`]) rmrf(path.join(WORK, p));
  } else {
    log('figure 3: /usr/bin/time is missing; skipped (reported as missing)');
  }
  raw.figure3 = f3;
  for (const p of [...Object.values(f2dst), ...Object.values(f2home)]) rmrf(p);

  // ------------------------------------------------ report
  const S = (xs) => stats(xs);
  const status = (key, present) => (present ? (errors[key] ? `failed (${errors[key]})` : undefined) : 'missing');
  const peerCell = (name, key, present, xs) => `${name}: ${status(key, present) ?? fmtStat(S(xs))}`;
  const ratioCell = (num, den) => (num && den ? num.median / den.median : undefined);
  const met = (r, target) => (r === undefined ? 'n/a' : r <= target ? 'yes' : 'no');

  const st = {
    f1: Object.fromEntries(Object.entries(f1).map(([k, v]) => [k, S(v)])),
    f2: Object.fromEntries(Object.entries(f2).map(([k, v]) => [k, S(v)])),
    f3: { idleKB: S(f3.idleKB), peakKB: S(f3.peakKB), peakSeconds: S(f3.peakSeconds) },
  };
  const r1 = ratioCell(st.f1.ferry, errors['f1.cp'] ? undefined : st.f1.cp);
  const r2 = ratioCell(st.f2.ferry, errors['f2.unison'] ? undefined : st.f2.unison);
  const bpf = st.f3.peakKB && st.f3.idleKB ? ((st.f3.peakKB.median - st.f3.idleKB.median) * 1024) / huge.files : undefined;
  const bpfRange =
    st.f3.peakKB && st.f3.idleKB
      ? [((st.f3.peakKB.min - st.f3.idleKB.max) * 1024) / huge.files, ((st.f3.peakKB.max - st.f3.idleKB.min) * 1024) / huge.files]
      : undefined;

  const nS = small.files.toLocaleString('en-US');
  const nH = huge.files.toLocaleString('en-US');
  const rows = [
    [
      `1. initial sync, small tree (${nS} files) into an empty dir`,
      fmtStat(st.f1.ferry),
      [
        peerCell('cp -a', 'f1.cp', peers.cp, f1.cp),
        peerCell('rsync -a', 'f1.rsync', peers.rsync, f1.rsync),
        peerCell('unison', 'f1.unison', peers.unison, f1.unison),
        peerCell('cp -a + sync (info)', 'f1.cpSync', peers.cp, f1.cpSync),
      ].join('<br>'),
      r1 === undefined ? `n/a (cp ${status('f1.cp', peers.cp) ?? '?'})` : `ferry/cp = ${r1.toFixed(2)}`,
      `≤ ${TARGETS.initialRatio.toFixed(1)}`,
      met(r1, TARGETS.initialRatio),
    ],
    [
      `2. no-op resync, huge tree (${nH} files)`,
      fmtStat(st.f2.ferry),
      [peerCell('unison', 'f2.unison', peers.unison, f2.unison), peerCell('rsync -a', 'f2.rsync', peers.rsync, f2.rsync)].join('<br>'),
      r2 === undefined ? `n/a (unison ${status('f2.unison', peers.unison) ?? '?'})` : `ferry/unison = ${r2.toFixed(2)}`,
      `≤ ${TARGETS.noopRatio.toFixed(1)}`,
      met(r2, TARGETS.noopRatio),
    ],
    [
      `3. ferry peak RSS, initial sync of huge tree (${nH} files), above idle`,
      peers.time
        ? `peak ${fmtStat(st.f3.peakKB, 'MiB', fmtMiB)}<br>idle ${fmtStat(st.f3.idleKB, 'MiB', fmtMiB)}`
        : 'missing (/usr/bin/time)',
      '— (ferry only)',
      bpf === undefined ? 'n/a' : `${Math.round(bpf)} B/file [${Math.round(bpfRange[0])}–${Math.round(bpfRange[1])}]`,
      `≤ ${TARGETS.bytesPerFile} B/file`,
      met(bpf, TARGETS.bytesPerFile),
    ],
  ];
  const table = [
    '| figure | ferry median [min–max] | peers median [min–max] | ratio | target | met? |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

  const setupCell = (k) =>
    raw.figure2.setup[k] !== undefined ? `${fmtS(raw.figure2.setup[k])} s (n=1, figure 2 setup)` : (status(`f2.${k}`, k === 'ferry' || peers[k]) ?? '—');
  const ctx =
    `Context, not a target: initial sync of the huge tree (${nH} files) into an empty dir: ` +
    `ferry ${fmtStat(st.f3.peakSeconds)} in the figure 3 runs and ${setupCell('ferry')}; ` +
    `rsync -a ${setupCell('rsync')}; unison ${setupCell('unison')}.`;

  const cpuOf = (figure, tool) => {
    const xs = samples.filter((x) => x.figure === figure && x.tool === tool && x.user !== undefined).map((x) => x.user + x.sys);
    return xs.length ? `${tool === 'cpSync' ? 'cp -a + sync' : tool} ${fmtS(median(xs))} s` : undefined;
  };
  const cpuLine = (figure, tools) => tools.map((t) => cpuOf(figure, t)).filter(Boolean).join(', ');
  const cpu = HAVE_TIME
    ? `CPU time (user + sys, median, from /usr/bin/time; less sensitive than wall time to other load on the machine): ` +
      `figure 1: ${cpuLine('1-initial-small', ['ferry', 'cp', 'rsync', 'unison'])}; figure 2: ${cpuLine('2-noop-huge', ['ferry', 'unison', 'rsync'])}.`
    : undefined;
  const loads = samples.map((x) => x.load1);
  const loadNote = loads.length
    ? `1-minute load average when each timed command started: median ${median(loads).toFixed(2)}, min ${Math.min(...loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)} (on ${machine.cores} cores; well above 0 means something else was running and wall times are noisier).`
    : undefined;
  const notes = [
    `Run ${startedAt.toISOString()} on ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, ${machine.os}, kernel ${machine.kernel}, node ${machine.node}; ${machine.ferry}; ${machine.rsync}; ${machine.unison}.`,
    `ferry under test: dist/ built ${build.distBuiltAt} from ${build.head}${build.uncommittedSourceFiles ? ` plus ${build.uncommittedSourceFiles} uncommitted source file(s)` : ''}, snapshotted at the start of the run.`,
    `Corpora: small = ${small.files} files / ${small.dirs} dirs / ${(small.bytes / 1048576).toFixed(1)} MiB (${small.how}); huge = ${huge.files} files / ${huge.dirs} dirs / ${(huge.bytes / 1048576).toFixed(1)} MiB (${huge.how}).`,
    `Repetitions: figures 1 and 2 and idle RSS n=${RUNS} (figure 1 after one untimed warm-up rep of every tool; figure 2 after the setup); the huge tree's initial syncs are slow, so they run fewer times: 1 per tool as figure 2's setup (timed for context only, not part of figure 2), and ${RSS_RUNS} of ferry for figure 3.`,
    'Each command is timed as a whole process (process.hrtime around spawnSync, node start-up included), warm page cache, after an untimed `sync`; tool order rotates each rep.',
    '"cp -a + sync" is informational: ferry makes its writes durable (syncfs) before it returns, cp does not; the target ratio is against plain cp -a.',
    ...(loadNote ? [loadNote] : []),
    `Bytes per file = (median peak − median idle max RSS) × 1024 / ${huge.files}; the range uses (min peak − max idle) and (max peak − min idle).`,
  ];

  const md = [
    `## ferry sync-local bench, ${date}${QUICK ? ' (--quick)' : ''}`,
    '',
    table,
    '',
    ctx,
    '',
    ...(cpu ? [cpu, ''] : []),
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');

  process.stdout.write(`\n${md}`);

  const resultsDir = path.join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const base = path.join(resultsDir, `local-${date}${QUICK ? '-quick' : ''}`);
  const json = {
    date,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: QUICK,
    runs: RUNS,
    rssRuns: RSS_RUNS,
    machine,
    peers,
    corpus: { small: { ...small, dir: undefined }, huge: { ...huge, dir: undefined } },
    targets: TARGETS,
    errors,
    samples,
    figures: {
      initialSmall: { unit: 's', ...st.f1, ratioFerryOverCp: r1, met: met(r1, TARGETS.initialRatio) },
      noopHuge: { unit: 's', ...st.f2, setupInitialSeconds: raw.figure2.setup, ratioFerryOverUnison: r2, met: met(r2, TARGETS.noopRatio) },
      rssHuge: {
        unit: 'KB (max RSS, /usr/bin/time %M)',
        files: huge.files,
        idleKB: st.f3.idleKB,
        peakKB: st.f3.peakKB,
        initialSyncSeconds: st.f3.peakSeconds,
        bytesPerFileAboveIdle: bpf,
        bytesPerFileRange: bpfRange,
        met: met(bpf, TARGETS.bytesPerFile),
      },
    },
  };
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${path.relative(REPO, base)}.md and .json`);

  if (opts.keep) log(`kept work trees in ${WORK}`);
  else rmrf(WORK);
}

main();
