#!/usr/bin/env node
// SSH sync benchmark: times ferry syncing a local directory with a directory
// on "another machine" (a real sshd on 127.0.0.1 that this script starts,
// logging in as the unprivileged user ferry-guest), against rsync and Unison
// over the same sshd. Several repetitions; reports median [min–max].
//
//   npm run bench:ssh                    full run (10,000-file, 16 x 64 MiB and 100,000-file trees)
//   npm run bench:ssh -- --quick         2,000 files, 4 x 64 MiB, 10,000 files, fewer reps
//   npm run bench:ssh -- --runs 7        repetitions of every timed figure (default 5; 3 with --quick)
//   npm run bench:ssh -- --keep          keep the work trees and logs afterwards
//
// Needs root (to run sshd and to own the guest user), /usr/sbin/sshd, ssh,
// ssh-keygen; rsync and unison are compared when installed. Work trees go
// under $BENCH_DIR or bench/work/ (gitignored); results go to
// bench/results/ssh-<date>[-quick].{md,json}. See bench/README.md.

import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countFiles, diffTrees, fail, firstLine, flush, fmtS, fmtStat, freshDir, genLarge, genTree, have, log, median, positiveInt, rmrf, snapshotFerry, stats, tail, waitAfterDeletions } from './lib.mjs';
import { GUEST_USER, chownToGuest, guestCommands, guestUnisonCleanup, startSshd } from './sshd.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
// ferry under test: a snapshot of bin/ and dist/ taken at the start (see snapshotFerry)
let FERRY_BIN = path.join(REPO, 'bin', 'ferry.js');
const MKCORPUS = path.resolve(REPO, '..', 'shared', 'bench', 'mkcorpus.py');

// ---------------------------------------------------------------- options

const USAGE = `usage: node bench/sync-ssh.mjs [--quick] [--runs N] [--keep]
  --quick    2,000-file small tree, 4 x 64 MiB large tree, 10,000-file huge tree, fewer reps (a few minutes)
  --runs N   timed repetitions of each figure (default 5; 3 with --quick); the huge tree's
             initial syncs (the slow setup of figure 3) always run once per tool, untimed for the figure
  --keep     keep the work trees and logs under $BENCH_DIR or bench/work/ afterwards`;

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
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

// the layouts of ../shared/bench/mkcorpus.py: DIR/d<i % dirs>/f<i>.dat (dw, fw = zero-padded widths); large: DIR/big<i>.bin
const SMALL = { files: QUICK ? 2000 : 10000, dirs: 100, min: 1024, max: 16384, dw: 3, fw: 5 };
const LARGE = { files: QUICK ? 4 : 16, size: 64 << 20 };
const HUGE = { files: QUICK ? 10000 : 100000, dirs: 1000, min: 1024, max: 1024, dw: 4, fw: 6 };

const TARGETS = { smallVsRsync: 1.0, smallVsUnison: 0.35, largeVsRsync: 0.6, noopVsUnison: 0.5 };

// ---------------------------------------------------------------- helpers

const cleanups = [];
let cleaningUp = false;
function cleanup(code) {
  if (cleaningUp) return;
  cleaningUp = true;
  for (const f of cleanups.reverse()) {
    try {
      f(code);
    } catch {
      // best effort
    }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping\n`);
    process.exit(130);
  });
}

/** freeKiB returns the space available on the filesystem holding p */
function freeKiB(p) {
  const r = spawnSync('df', ['-Pk', p], { encoding: 'utf8' });
  const line = r.stdout?.trim().split('\n')[1];
  return line ? Number(line.split(/\s+/)[3]) : undefined;
}

let logSeq = 0;
let LOG_DIR = '';
let HAVE_TIME = false;
let BASE_ENV = { ...process.env };

/**
 * timed runs one command as a whole process, output to a log file, and
 * returns { seconds, status, log, user, sys, maxRssKB, load1 }. The clock
 * (process.hrtime) wraps only the spawnSync. When /usr/bin/time exists the
 * command runs under `/usr/bin/time -f '%e %U %S %M'` for its CPU time and
 * max RSS (its own cost is a fork and exec, about a millisecond). That CPU
 * time is the client side only: the sshd, agent or server in the guest is
 * not a child of the command.
 */
function timed(label, cmd, args, env = {}) {
  const name = `${String(++logSeq).padStart(4, '0')}-${label.replace(/[^a-z0-9.-]+/gi, '_')}`;
  const logFile = path.join(LOG_DIR, `${name}.log`);
  const timeFile = path.join(LOG_DIR, `${name}.time`);
  const fd = openSync(logFile, 'w');
  writeSync(fd, `$ ${[cmd, ...args].map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
  const [c, a] = HAVE_TIME ? ['/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  flush();
  const load1 = os.loadavg()[0];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c, a, { stdio: ['ignore', fd, fd], env: { ...BASE_ENV, ...env } });
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

/** syncAfter times a `sync` right after a command (for the "+ sync" information rows) */
function syncAfter() {
  const t0 = process.hrtime.bigint();
  spawnSync('sync', [], { stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const fmtRate = (bps) => (bps >= 1e9 ? `${(bps / 1e9).toFixed(2)} GB/s` : `${(bps / 1e6).toFixed(0)} MB/s`);

// ---------------------------------------------------------------- corpus

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
    if (kind === 'large') genLarge(dir, spec);
    else genTree(dir, spec);
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

// ---------------------------------------------------------------- ferry snapshot

/**
 * snapshotFerry copies the built ferry (bin/, dist/, native-shims/build/,
 * package.json; node_modules linked) into the work dir, so a rebuild of
 * dist/ by someone else during the run can't change the ferry under test
 * halfway (its archive format and agent included). Returns a description of the build.
 */
// ---------------------------------------------------------------- main

async function main() {
  if (process.getuid?.() !== 0) fail('the SSH bench needs root (to run sshd and own the guest user ferry-guest)');
  for (const [what, ok] of [
    ['/usr/sbin/sshd (apt-get install openssh-server)', have('/usr/sbin/sshd')],
    ['ssh (apt-get install openssh-client)', have('ssh')],
    ['ssh-keygen', have('ssh-keygen')],
    ['diff (to verify results)', have('diff')],
  ]) {
    if (!ok) fail(`${what} is needed`);
  }
  if (!existsSync(path.join(REPO, 'dist', 'cli', 'main.js')) || !existsSync(path.join(REPO, 'dist', 'agent.mjs'))) {
    fail('ferry is not built (dist/cli/main.js and dist/agent.mjs): run `npm install` (or `npm run build`) first');
  }

  const WORK = path.resolve(process.env.BENCH_DIR ?? path.join(REPO, 'bench', 'work'), 'sync-ssh');
  freshDir(WORK);
  // A previous run's trees may have been deleted just now (here, or at the
  // end of that run): figure 1 starts a minute after this (see initialFigure).
  const began = Date.now();
  // the guest user must be able to reach its directories under WORK
  for (let p = WORK; p !== path.dirname(p); p = path.dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) fail(`${p} is not searchable by others, so ${GUEST_USER} cannot reach the guest directories; set BENCH_DIR elsewhere`);
  }
  // removed at the end unless --keep; kept after a failure, for its logs
  cleanups.push((code) => {
    if (code === 0 && !opts.keep) spawnSync('rm', ['-rf', WORK], { stdio: 'ignore' });
    else if (code !== 0) process.stderr.write(`bench: work trees and logs kept in ${WORK} (delete it when done)\n`);
  });

  // disk space: the large tree needs 1 GiB per copy (source + one destination at a time)
  const needKiB = (QUICK ? 1.5 : 4) * 1048576;
  const avail = freeKiB(WORK);
  log(`disk: ${avail === undefined ? 'unknown' : `${(avail / 1048576).toFixed(1)} GiB`} available under ${WORK} (need about ${needKiB / 1048576} GiB)`);
  if (avail !== undefined && avail < needKiB) fail(`not enough disk space under ${WORK}: ${(avail / 1048576).toFixed(1)} GiB available, about ${needKiB / 1048576} GiB needed`);

  LOG_DIR = freshDir(path.join(WORK, 'logs'));
  const build = snapshotFerry(REPO, path.join(WORK, 'ferry'));
  FERRY_BIN = build.bin;

  // an ssh-agent in the environment would change how each tool authenticates: all use --key / -i only
  BASE_ENV = { ...process.env };
  delete BASE_ENV.SSH_AUTH_SOCK;
  delete BASE_ENV.SSH_AGENT_PID;

  const peers = { rsync: have('rsync'), unison: have('unison'), time: have('/usr/bin/time') };
  HAVE_TIME = peers.time;

  // ---------------------------------------------- the "guest": sshd + ferry-guest
  const sshd = await startSshd(path.join(WORK, 'sshd')).catch((error) => fail(error.message));
  cleanups.push(sshd.stop);
  const guestHome = sshd.guestHome;
  log(`sshd (pid ${sshd.pid}) listening on 127.0.0.1:${sshd.port}; guest user ${GUEST_USER} (home ${guestHome})`);
  const GUEST = path.join(WORK, 'guest');
  mkdirSync(GUEST, { recursive: true });
  chmodSync(GUEST, 0o755);
  chownToGuest(GUEST);
  const guestDir = (name) => {
    const p = path.join(GUEST, name);
    rmrf(p);
    mkdirSync(p);
    chownToGuest(p);
    return p;
  };

  const sshOpts = ['-i', sshd.clientKey, '-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes'];
  {
    let found;
    try {
      found = guestCommands(sshd, ['node', 'unison', 'rsync'], BASE_ENV);
    } catch (error) {
      fail(error.message);
    }
    log(`login as ${GUEST_USER} works; in the guest's PATH: ${[...found].join(', ') || 'nothing'}`);
    if (!found.has('node')) fail(`node is not in ${GUEST_USER}'s PATH over ssh; ferry's guest agent needs it`);
    if (peers.unison && !found.has('unison')) {
      log(`unison is not runnable in the guest; unison will be reported as missing`);
      peers.unison = false;
    }
    if (peers.rsync && !found.has('rsync')) {
      log(`rsync is not runnable in the guest; rsync will be reported as missing`);
      peers.rsync = false;
    }
  }
  // unison in the guest keeps its archives in ~ferry-guest/.unison: remove the ones this run makes
  cleanups.push(guestUnisonCleanup(guestHome));

  const sshUrl = (dst) => `ssh://${GUEST_USER}@127.0.0.1:${sshd.port}${dst}`;
  // ferry: as its users run it, the executable (bin/ferry.js), with a fresh FERRY_HOME holding known_hosts
  const ferryHome = (name) => {
    const home = freshDir(path.join(WORK, name));
    writeFileSync(path.join(home, 'known_hosts'), `${sshd.knownHostsLine}\n`);
    return home;
  };
  const ferryCmd = (src, dst, home) => [FERRY_BIN, ['sync', src, sshUrl(dst), '--once', '--key', sshd.clientKey], { FERRY_HOME: home }];
  const rsyncE = ['ssh', '-p', String(sshd.port), ...sshOpts, '-c', 'aes128-gcm@openssh.com'].join(' ');
  const rsyncCmd = (src, dst) => ['rsync', ['-a', '-e', rsyncE, `${src}/`, `${GUEST_USER}@127.0.0.1:${dst}/`], {}];
  const unisonCmd = (src, dst, home) => {
    mkdirSync(path.join(home, '.unison'), { recursive: true });
    return [
      'unison',
      [src, `ssh://${GUEST_USER}@127.0.0.1:${sshd.port}/${dst}`, '-batch', '-perms', '0', '-ui', 'text', '-sshargs', sshOpts.join(' ')],
      { HOME: home, UNISON: path.join(home, '.unison') },
    ];
  };

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
    ferry: firstLine(FERRY_BIN, ['--version']),
    ferryBuild: build,
    ssh: firstLine('ssh', ['-V']),
    rsync: peers.rsync ? firstLine('rsync', ['--version']) : 'missing',
    unison: peers.unison ? firstLine('unison', ['-version']) : 'missing',
  };
  const startedAt = new Date();
  const date = `${startedAt.getFullYear()}-${String(startedAt.getMonth() + 1).padStart(2, '0')}-${String(startedAt.getDate()).padStart(2, '0')}`;
  log(`ferry sync-ssh bench${QUICK ? ' (--quick)' : ''}: runs=${RUNS}, work dir ${WORK}`);
  log(`ferry under test: ${machine.ferry}, dist/ built ${build.distBuiltAt} from ${build.head}${build.uncommittedSourceFiles ? ` + ${build.uncommittedSourceFiles} uncommitted source file(s)` : ''} (snapshot in the work dir)`);
  log(`machine: ${machine.cores} cores, ${machine.memGiB} GiB, ${machine.os}; node ${machine.node}; ${machine.ssh}`);
  for (const [k, ok] of Object.entries(peers)) if (!ok) log(`peer ${k === 'time' ? '/usr/bin/time' : k} is MISSING; it will be reported as missing`);

  const samples = []; // every timed command: figure, tool, rep, seconds, user, sys, maxRssKB, load1
  const record = (figure, tool, rep, r) => {
    const { seconds, user, sys, maxRssKB, load1 } = r;
    samples.push({ figure, tool, rep, seconds, user, sys, maxRssKB, load1, status: r.status });
  };
  const errors = {}; // figure.tool -> message (peer failures; ferry failures abort)
  const verified = {};
  function peerFailed(key, what, res) {
    errors[key] = `${what}: exit ${res.status}, see ${path.relative(REPO, res.log)}`;
    log(`WARNING: ${errors[key]}\n${tail(res.log)}`);
  }
  function ferryCheck(res, what) {
    if (res.status !== 0) fail(`ferry ${what} exited ${res.status}; log ${res.log}:\n${tail(res.log)}`);
  }
  function ferryVerify(figure, src, dst, what) {
    const d = diffTrees(src, dst);
    if (d !== undefined) fail(`ferry's ${what}: the guest tree differs from the source: ${d}`);
    verified[figure] = `diff -r ${path.relative(WORK, src)} ${path.relative(WORK, dst)}: identical`;
    log(`  verified: ferry's guest tree == source (diff -r) after the ${what}`);
  }

  /**
   * initialFigure times initial syncs host->guest of `corpus` into a fresh empty
   * guest dir, one untimed warm-up rep of every tool then RUNS timed reps in
   * rotating order. ferry's tree is verified once (the first timed rep); each
   * peer's once (its warm-up rep). A tree of many files is kept until the
   * figure ends: on ext4, files created within a minute or so after
   * thousands were deleted are slow to create (the inode allocator skips
   * recently freed inodes), which would slow whichever tool ran next. A tree
   * of a few large files is removed after its rep (untimed), so only one
   * copy of it exists in the guest at a time.
   */
  function initialFigure(fig, corpus, tools) {
    const res = Object.fromEntries(tools.flatMap((t) => [[t.key, []], ...(t.withSync ? [[`${t.key}Sync`, []]] : [])]));
    const keep = corpus.files > 1000;
    const kept = [];
    if (keep) waitAfterDeletions(began);
    for (let rep = -1; rep < RUNS; rep++) {
      const order = tools.map((_, i) => tools[(i + rep + 1) % tools.length]);
      const line = [];
      for (const t of order) {
        if (!t.ok || errors[`${fig}.${t.key}`]) continue;
        const dst = guestDir(`${fig}-${t.key}-${rep < 0 ? 'warmup' : rep}`);
        const home = t.key === 'ferry' ? ferryHome(`${fig}-ferry-home`) : t.key === 'unison' ? freshDir(path.join(WORK, `${fig}-unison-home`)) : undefined;
        const [cmd, args, env] = t.cmd(corpus.dir, dst, home);
        const r = timed(`${fig}-${t.key}-${rep < 0 ? 'warmup' : rep}`, cmd, args, env);
        const syncS = t.withSync ? syncAfter() : undefined;
        if (t.key === 'ferry') {
          ferryCheck(r, `initial sync of the ${corpus.kind} tree`);
          if (rep === 0) ferryVerify(fig, corpus.dir, dst, `initial sync of the ${corpus.kind} tree`);
        } else if (r.status !== 0) {
          peerFailed(`${fig}.${t.key}`, `figure ${fig} ${t.key}`, r);
        } else if (rep < 0) {
          const d = diffTrees(corpus.dir, dst);
          if (d !== undefined) {
            r.status = 'result differs';
            peerFailed(`${fig}.${t.key}`, `figure ${fig} ${t.key} (result differs: ${d.split('\n')[0]})`, r);
          }
        }
        if (keep) kept.push(dst, ...(home ? [home] : []));
        else {
          rmrf(dst);
          if (home) rmrf(home);
        }
        if (errors[`${fig}.${t.key}`]) continue;
        line.push(`${t.key} ${fmtS(r.seconds)}s${syncS !== undefined ? ` (+sync ${fmtS(syncS)}s)` : ''}`);
        if (rep < 0) continue;
        record(fig, t.key, rep, r);
        res[t.key].push(r.seconds);
        if (syncS !== undefined) {
          res[`${t.key}Sync`].push(r.seconds + syncS);
          samples.at(-1).syncAfterSeconds = syncS;
        }
      }
      log(`  ${rep < 0 ? 'warm-up (not counted)' : `rep ${rep + 1}/${RUNS}`}: ${line.join(', ')}`);
    }
    for (const p of kept) rmrf(p);
    return res;
  }

  // ------------------------------------------------ figure 1: initial sync of the small tree
  const small = makeCorpus(path.join(WORK, 'corpus-small'), 'small', SMALL);
  log(`figure 1: initial sync host->guest of the small tree (${small.files} files), 1 warm-up + ${RUNS} reps`);
  const f1 = initialFigure('1', small, [
    { key: 'ferry', ok: true, cmd: (s, d, h) => ferryCmd(s, d, h) },
    { key: 'rsync', ok: peers.rsync, withSync: true, cmd: (s, d) => rsyncCmd(s, d) },
    { key: 'unison', ok: peers.unison, cmd: (s, d, h) => unisonCmd(s, d, h) },
  ]);
  rmrf(small.dir);

  // ------------------------------------------------ figure 2: initial sync of the large tree
  const large = makeCorpus(path.join(WORK, 'corpus-large'), 'large', LARGE);
  log(`figure 2: initial sync host->guest of the large tree (${large.files} x ${LARGE.size >> 20} MiB), 1 warm-up + ${RUNS} reps`);
  const f2 = initialFigure('2', large, [
    { key: 'ferry', ok: true, cmd: (s, d, h) => ferryCmd(s, d, h) },
    { key: 'rsync', ok: peers.rsync, withSync: true, cmd: (s, d) => rsyncCmd(s, d) },
  ]);
  rmrf(large.dir);

  // ------------------------------------------------ figure 3: no-op resync of the huge tree
  const huge = makeCorpus(path.join(WORK, 'corpus-huge'), 'huge-tree', HUGE);
  log(`figure 3: no-op resync over ssh of the huge tree (${huge.files} files); setup = 1 initial sync + 1 warm-up resync per tool (untimed for the figure), then ${RUNS} reps`);
  const f3 = { ferry: [], unison: [], rsync: [] };
  const f3setup = {};
  const f3dst = {};
  const f3home = {};
  const f3Tools = [
    { key: 'ferry', ok: true },
    { key: 'unison', ok: peers.unison },
    { key: 'rsync', ok: peers.rsync },
  ];
  const f3cmd = (key) => (key === 'ferry' ? ferryCmd(huge.dir, f3dst.ferry, f3home.ferry) : key === 'unison' ? unisonCmd(huge.dir, f3dst.unison, f3home.unison) : rsyncCmd(huge.dir, f3dst.rsync));
  for (const t of f3Tools) {
    if (!t.ok) continue;
    f3dst[t.key] = guestDir(`3-${t.key}`);
    if (t.key === 'ferry') f3home.ferry = ferryHome('3-ferry-home');
    if (t.key === 'unison') f3home.unison = freshDir(path.join(WORK, '3-unison-home'));
    const phases = [];
    for (const phase of ['initial', 'warmup']) {
      const [cmd, args, env] = f3cmd(t.key);
      const r = timed(`3-${phase}-${t.key}`, cmd, args, env);
      if (t.key === 'ferry') ferryCheck(r, `${phase === 'initial' ? 'initial sync' : 'warm-up resync'} of the huge tree (figure 3 setup)`);
      else if (r.status !== 0) {
        peerFailed(`3.${t.key}`, `figure 3 setup (${phase}) ${t.key}`, r);
        break;
      }
      if (phase === 'initial' && t.key !== 'ferry') {
        const d = diffTrees(huge.dir, f3dst[t.key]);
        if (d !== undefined) {
          r.status = 'result differs';
          peerFailed(`3.${t.key}`, `figure 3 setup ${t.key} (result differs: ${d.split('\n')[0]})`, r);
          break;
        }
      }
      record(`3-setup-${phase}`, t.key, 0, r);
      f3setup[t.key] = { ...f3setup[t.key], [phase]: r.seconds };
      phases.push(`${phase} ${fmtS(r.seconds)}s`);
    }
    if (!errors[`3.${t.key}`]) log(`  setup ${t.key}: ${phases.join(', ')}`);
  }
  for (let rep = 0; rep < RUNS; rep++) {
    const order = f3Tools.map((_, i) => f3Tools[(i + rep) % f3Tools.length]);
    const line = [];
    for (const t of order) {
      if (!t.ok || errors[`3.${t.key}`]) continue;
      const [cmd, args, env] = f3cmd(t.key);
      const r = timed(`3-noop-${t.key}-${rep}`, cmd, args, env);
      if (t.key === 'ferry') {
        ferryCheck(r, 'no-op resync of the huge tree');
        if (!readFileSync(r.log, 'utf8').includes('nothing to do')) log(`  WARNING: ferry's no-op resync did not say "nothing to do":\n${tail(r.log, 5)}`);
      } else if (r.status !== 0) {
        peerFailed(`3.${t.key}`, `figure 3 no-op ${t.key}`, r);
        continue;
      }
      record('3', t.key, rep, r);
      f3[t.key].push(r.seconds);
      line.push(`${t.key} ${fmtS(r.seconds)}s`);
    }
    log(`  rep ${rep + 1}/${RUNS}: ${line.join(', ')}`);
  }
  ferryVerify('3', huge.dir, f3dst.ferry, 'no-op resyncs of the huge tree');
  for (const p of [...Object.values(f3dst), ...Object.values(f3home), huge.dir]) rmrf(p);

  // ------------------------------------------------ report
  const st = {
    f1: Object.fromEntries(Object.entries(f1).map(([k, v]) => [k, stats(v)])),
    f2: Object.fromEntries(Object.entries(f2).map(([k, v]) => [k, stats(v)])),
    f3: Object.fromEntries(Object.entries(f3).map(([k, v]) => [k, stats(v)])),
  };
  const status = (key, present) => (present ? (errors[key] ? `failed (${errors[key]})` : undefined) : 'missing');
  const peerCell = (name, key, present, s, extra = '') => `${name}: ${status(key, present) ?? `${fmtStat(s)}${extra}`}`;
  const ratio = (num, den, denKey) => (num && den && !errors[denKey] ? num.median / den.median : undefined);
  const met = (r, target) => (r === undefined ? 'n/a' : r <= target ? 'yes' : 'no');
  const ratioText = (name, r, denName, denKey, present) => (r === undefined ? `${name}: n/a (${denName} ${status(denKey, present) ?? 'no data'})` : `${name} = ${r.toFixed(2)}`);

  const r1r = ratio(st.f1.ferry, st.f1.rsync, '1.rsync');
  const r1u = ratio(st.f1.ferry, st.f1.unison, '1.unison');
  const r2 = ratio(st.f2.ferry, st.f2.rsync, '2.rsync');
  const r3 = ratio(st.f3.ferry, st.f3.unison, '3.unison');
  const rate = (s) => (s ? large.bytes / s.median : undefined);
  const rates = { ferry: rate(st.f2.ferry), rsync: errors['2.rsync'] ? undefined : rate(st.f2.rsync), rsyncSync: errors['2.rsync'] ? undefined : rate(st.f2.rsyncSync) };
  const rateTxt = (x) => (x === undefined ? '' : `, ${fmtRate(x)}`);

  const nS = small.files.toLocaleString('en-US');
  const nH = huge.files.toLocaleString('en-US');
  const largeDesc = `${large.files} x ${LARGE.size >> 20} MiB = ${(large.bytes / 2 ** 30).toFixed(2)} GiB`;
  const rows = [
    [
      `1. initial sync host→guest, small tree (${nS} files) into an empty dir`,
      fmtStat(st.f1.ferry),
      [
        peerCell('rsync -a -e ssh', '1.rsync', peers.rsync, st.f1.rsync),
        peerCell('unison (ssh://)', '1.unison', peers.unison, st.f1.unison),
        peerCell('rsync + sync (info)', '1.rsync', peers.rsync, st.f1.rsyncSync),
      ].join('<br>'),
      [ratioText('ferry/rsync', r1r, 'rsync', '1.rsync', peers.rsync), ratioText('ferry/unison', r1u, 'unison', '1.unison', peers.unison)].join('<br>'),
      `≤ ${TARGETS.smallVsRsync.toFixed(2)}<br>≤ ${TARGETS.smallVsUnison.toFixed(2)}`,
      `${met(r1r, TARGETS.smallVsRsync)}<br>${met(r1u, TARGETS.smallVsUnison)}`,
    ],
    [
      `2. initial sync host→guest, large tree (${largeDesc}) into an empty dir`,
      `${fmtStat(st.f2.ferry)}${rateTxt(rates.ferry)}`,
      [
        peerCell('rsync -a -e ssh', '2.rsync', peers.rsync, st.f2.rsync, rateTxt(rates.rsync)),
        peerCell('rsync + sync (info)', '2.rsync', peers.rsync, st.f2.rsyncSync, rateTxt(rates.rsyncSync)),
      ].join('<br>'),
      ratioText('ferry/rsync', r2, 'rsync', '2.rsync', peers.rsync),
      `≤ ${TARGETS.largeVsRsync.toFixed(2)}`,
      met(r2, TARGETS.largeVsRsync),
    ],
    [
      `3. no-op resync over ssh, huge tree (${nH} files)`,
      fmtStat(st.f3.ferry),
      [peerCell('unison (ssh://)', '3.unison', peers.unison, st.f3.unison), peerCell('rsync -a -e ssh (info)', '3.rsync', peers.rsync, st.f3.rsync)].join('<br>'),
      ratioText('ferry/unison', r3, 'unison', '3.unison', peers.unison),
      `≤ ${TARGETS.noopVsUnison.toFixed(2)}`,
      met(r3, TARGETS.noopVsUnison),
    ],
  ];
  const table = [
    '| figure | ferry median [min–max] | peers median [min–max] | ratio | target | met? |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

  const setupCell = (k) => {
    const s = f3setup[k];
    if (s?.initial === undefined) return status(`3.${k}`, k === 'ferry' || peers[k]) ?? '—';
    return `${k} ${fmtS(s.initial)} s${s.warmup !== undefined ? ` (warm-up resync ${fmtS(s.warmup)} s)` : ''}`;
  };
  const ctx =
    `Context, not a target: figure 3's setup, initial sync of the huge tree (${nH} files) host→guest into an empty dir, n=1 each (too slow to repeat): ` +
    `${['ferry', 'unison', 'rsync'].map(setupCell).join('; ')}.`;

  const cpuOf = (figure, tool) => {
    const xs = samples.filter((x) => x.figure === figure && x.tool === tool && x.user !== undefined).map((x) => x.user + x.sys);
    return xs.length ? `${tool} ${fmtS(median(xs))} s` : undefined;
  };
  const cpuLine = (figure, tools) => tools.map((t) => cpuOf(figure, t)).filter(Boolean).join(', ') || '—';
  const cpu = HAVE_TIME
    ? `CPU time of the client side (user + sys of the command and its children, e.g. ssh; median, from /usr/bin/time; the guest's sshd, agent or server is not included): ` +
      `figure 1: ${cpuLine('1', ['ferry', 'rsync', 'unison'])}; figure 2: ${cpuLine('2', ['ferry', 'rsync'])}; figure 3: ${cpuLine('3', ['ferry', 'unison', 'rsync'])}.`
    : undefined;
  const loads = samples.map((x) => x.load1);
  const loadNote = loads.length
    ? `1-minute load average when each timed command started: median ${median(loads).toFixed(2)}, min ${Math.min(...loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)} (on ${machine.cores} cores; the guest runs on the same cores, and well above 0 means something else was running too).`
    : undefined;
  const notes = [
    `Run ${startedAt.toISOString()} on ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, ${machine.os}, kernel ${machine.kernel}, node ${machine.node}; ${machine.ferry}; ${machine.ssh}; ${machine.rsync}; ${machine.unison}.`,
    `ferry under test: dist/ built ${build.distBuiltAt} from ${build.head}${build.uncommittedSourceFiles ? ` plus ${build.uncommittedSourceFiles} uncommitted source file(s)` : ''}, snapshotted at the start of the run; its guest agent was installed in ~${GUEST_USER}/.cache/ferry by the warm-up (or earlier), as after a user's first sync.`,
    `The guest is the same machine: /usr/sbin/sshd on 127.0.0.1:${sshd.port} started by the bench (fresh ed25519 host key, key-only auth, UsePAM no), logging in as ${GUEST_USER}; guest dirs are owned by ${GUEST_USER}.`,
    `Commands: \`ferry sync SRC ssh://${GUEST_USER}@127.0.0.1:PORT/DST --once --key KEY\` (host key in $FERRY_HOME/known_hosts; ssh2 negotiates aes128-gcm@openssh.com); ` +
      `\`rsync -a -e "ssh -p PORT -i KEY -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes -c aes128-gcm@openssh.com" SRC/ ${GUEST_USER}@127.0.0.1:DST/\`; ` +
      `\`unison SRC ssh://${GUEST_USER}@127.0.0.1:PORT//DST -batch -perms 0 -ui text -sshargs "-i KEY -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes"\` (ssh's default cipher), HOME a fresh temp dir.`,
    `Corpora: small = ${small.files} files / ${small.dirs} dirs / ${(small.bytes / 1048576).toFixed(1)} MiB (${small.how}); large = ${large.files} files / ${(large.bytes / 1048576).toFixed(0)} MiB (${large.how}); huge = ${huge.files} files / ${huge.dirs} dirs / ${(huge.bytes / 1048576).toFixed(1)} MiB (${huge.how}).`,
    `Repetitions: figures 1 and 2: one untimed warm-up rep of every tool, then n=${RUNS}, each into a fresh empty guest dir (and a fresh $FERRY_HOME / unison HOME; each unison rep uses a new guest path, so the guest's archive is new too); the previous destination is deleted untimed. ` +
      `Figure 3: the huge tree's initial sync is slow, so it runs once per tool (n=1, context only), followed by one untimed warm-up resync per tool, then n=${RUNS} timed no-op resyncs.`,
    'Each command is timed as a whole process (process.hrtime around spawnSync, node and ssh start-up included), warm page cache, after an untimed `sync`; tool order rotates each rep.',
    `Bytes/s in figure 2 = ${large.bytes} bytes / median seconds. "rsync + sync" is informational: ferry makes its writes durable (syncfs) before it exits and rsync does not; it adds the time of a \`sync\` run right after each rsync. The targets use plain rsync.`,
    `Verification (diff -r against the source): ferry once per figure (figures 1 and 2: the first timed rep; figure 3: after the no-op resyncs), each peer once (its warm-up, or figure 3's initial sync). ${Object.keys(verified).length} ferry checks passed.`,
    ...(loadNote ? [loadNote] : []),
  ];

  const md = [`## ferry sync-ssh bench, ${date}${QUICK ? ' (--quick)' : ''}`, '', table, '', ctx, '', ...(cpu ? [cpu, ''] : []), ...notes.map((n) => `- ${n}`), ''].join('\n');

  process.stdout.write(`\n${md}`);

  const resultsDir = path.join(REPO, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const base = path.join(resultsDir, `ssh-${date}${QUICK ? '-quick' : ''}`);
  const json = {
    date,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: QUICK,
    runs: RUNS,
    machine,
    peers,
    corpus: { small: { ...small, dir: undefined }, large: { ...large, dir: undefined }, huge: { ...huge, dir: undefined } },
    targets: TARGETS,
    errors,
    verified,
    samples,
    figures: {
      initialSmall: {
        unit: 's',
        ...st.f1,
        ratioFerryOverRsync: r1r,
        ratioFerryOverUnison: r1u,
        metRsync: met(r1r, TARGETS.smallVsRsync),
        metUnison: met(r1u, TARGETS.smallVsUnison),
      },
      initialLarge: { unit: 's', bytes: large.bytes, ...st.f2, bytesPerSecond: rates, ratioFerryOverRsync: r2, met: met(r2, TARGETS.largeVsRsync) },
      noopHuge: { unit: 's', ...st.f3, setupSeconds: f3setup, ratioFerryOverUnison: r3, met: met(r3, TARGETS.noopVsUnison) },
    },
  };
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${path.relative(REPO, base)}.md and .json`);
  if (opts.keep) log(`kept work trees and logs in ${WORK}`);
}

main().then(
  () => process.exit(0),
  (error) => fail(error?.stack ?? String(error)),
);
