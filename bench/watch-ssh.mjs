// The watch-ssh part of bench/run.mjs (`npm run bench -- --only watch-ssh`):
// propagation latency and idle CPU of the continuous synchronisers with beta
// in the guest, over the bench's loopback sshd, on the huge tree (100,000
// files in 1,000 dirs). ferry sync --watch against lsyncd (rsync over ssh on
// each change, delay 0) and unison -repeat 1. Writes its own report,
// bench/results/<date>-<host>-watch-ssh.md and .json. See bench/README.md.
// Plain Node ESM, node:* only.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { diffTrees, firstLine, flush, freshDir, localDate, log, machineInfo, prng, quantile, rmrf, snapshotFerry, tail } from './lib.mjs';
import { GUEST_USER, chownToGuest, guestCommands, guestUnisonCleanup, sshUnavailable, startSshd } from './sshd.mjs';
import { peerPresence, probeFerryWatch, watchSshTools } from './tools.mjs';
import { MAX_GAP_MS, POLL_MS, WRITE_BYTES, fileIs, processTree, treeCpuSeconds, treePeakRssKB } from './watch.mjs';

const WRITE_TIMEOUT_MS = 30_000;
const MAX_TIMEOUTS = 3;
const SETTLE_MS = 2000;
const READY_POLL_MS = 2000;
const STOP_GRACE_MS = 30_000;

/** The issue's targets for ferry, checked in the report. */
export const TARGETS = { p50Ms: 100, p99Ms: 300, idleCpuPercent: 1, minWrites: 200, idleSeconds: 60 };

const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** fileCount counts the regular files below dir without a stat each (cheap enough to poll a 100,000-file tree). */
function fileCount(dir) {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
  } catch {
    return -1; // a directory vanished under the walk
  }
}

/** guestPids is the guest side: everything under the bench's sshd (sessions, ferry's agent, rsync or unison servers), not the listener itself. */
const guestPids = (sshd) => processTree(sshd.pid).filter((p) => p.pid !== sshd.pid);

/**
 * stopChild sends SIGTERM, waits up to STOP_GRACE_MS, then SIGKILL. Returns
 * how it ended ("exited 0", "signal SIGTERM", …) and whether it had to be killed.
 */
async function stopChild(child, exited, state) {
  if (state.exit !== undefined) return { how: state.exit, killed: false };
  const t0 = process.hrtime.bigint();
  child.kill('SIGTERM');
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  return { how: state.exit, killed, ms: msSince(t0) };
}

/**
 * waitGuestQuiet waits up to 15 s for the guest side of the previous tool to
 * go (its sessions end when the host side closes the connection), then kills
 * what is left by pid: those processes are the bench's own, under its sshd.
 */
async function waitGuestQuiet(sshd) {
  for (let i = 0; i < 60; i++) {
    if (guestPids(sshd).length === 0) return [];
    await sleep(250);
  }
  const left = guestPids(sshd);
  const described = left.map((p) => {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      // gone meanwhile
    }
    return `${p.pid} ${cmd}`;
  });
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return described;
}

/**
 * measureOne runs one watcher: alpha a fresh copy of the corpus, beta an
 * empty guest directory. It waits until beta matches alpha (a cheap file
 * count every READY_POLL_MS, then diff -rq), then `writes` times: a random
 * 0–MAX_GAP_MS pause, a new WRITE_BYTES file of random bytes in a random
 * existing subdirectory of alpha, and beta polled every POLL_MS until that
 * file there holds that content (the latency). Then, after SETTLE_MS, the
 * CPU time of the host process tree and of the guest tree over idleSeconds.
 * At the end beta is compared with alpha once more (diff -rq).
 */
async function measureOne(tool, { corpus, subdirs, work, guestRoot, sshd, writes, idleSeconds, readyTimeoutMs, baseEnv }) {
  const dir = freshDir(path.join(work, tool.key));
  const alpha = path.join(dir, 'alpha');
  const tCopy = process.hrtime.bigint();
  if (spawnSync('cp', ['-a', corpus.dir, alpha]).status !== 0) throw new Error(`cp -a ${corpus.dir} ${alpha} failed`);
  const beta = freshDir(path.join(guestRoot, `${tool.key}-beta`));
  chownToGuest(beta);
  const state = freshDir(path.join(dir, 'state'));
  log(`  ${tool.label}: alpha copied in ${(msSince(tCopy) / 1000).toFixed(1)} s; starting it`);
  flush();

  const [cmd, args, env] = tool.command(alpha, beta, state);
  const logFile = path.join(state, 'watch.log');
  const fd = openSync(logFile, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...baseEnv, ...env } });
  closeSync(fd);
  const st = { exit: undefined };
  const exited = new Promise((resolve) => {
    child.once('error', (error) => resolve((st.exit = error.message)));
    child.once('exit', (code, signal) => resolve((st.exit = code !== null ? `exited ${code}` : `signal ${signal}`)));
  });
  const alive = () => {
    if (st.exit !== undefined) throw new Error(`${tool.label} ${st.exit} while being measured; its log ends: ${tail(logFile, 3).replace(/\s*\n\s*/g, ' / ')}`);
  };
  const cpu = () => {
    const host = treeCpuSeconds(child.pid);
    const guest = treeCpuSeconds(sshd.pid);
    return { host, guest };
  };

  const r = { command: [cmd, ...args].join(' '), alpha, beta, samples: [], timeouts: 0, log: logFile };
  const startedAt = process.hrtime.bigint();
  const cpuStart = cpu();
  try {
    // 1. the initial sync, while watching
    const want = corpus.files;
    let lastCount = 0;
    for (;;) {
      alive();
      lastCount = fileCount(beta);
      if (lastCount === want && diffTrees(alpha, beta) === undefined) break;
      if (msSince(startedAt) > readyTimeoutMs) throw new Error(`beta did not match alpha within ${readyTimeoutMs / 1000} s of starting (${lastCount} of ${want} files there)`);
      await sleep(READY_POLL_MS);
    }
    r.readySeconds = msSince(startedAt) / 1000;
    const cpuReady = cpu();
    r.readyCpuSeconds = { host: cpuReady.host - cpuStart.host, guest: cpuReady.guest - cpuStart.guest };
    log(`  ${tool.label}: beta matches alpha after ${r.readySeconds.toFixed(1)} s; ${writes} writes`);

    // 2. latency
    const rnd = prng(7);
    const rndDir = prng(11);
    const content = Buffer.alloc(WRITE_BYTES);
    const tWrites = process.hrtime.bigint();
    for (let i = 0; i < writes; i++) {
      const gapMs = rnd() % MAX_GAP_MS;
      await sleep(gapMs);
      for (let o = 0; o < content.length; o += 4) content.writeUInt32LE(rnd(), o);
      const sub = subdirs[rndDir() % subdirs.length];
      const name = path.join(sub, `bench-w${String(i).padStart(4, '0')}.dat`);
      const load1 = os.loadavg()[0];
      const at = new Date().toISOString();
      const start = process.hrtime.bigint();
      writeFileSync(path.join(alpha, name), content);
      for (;;) {
        if (fileIs(path.join(beta, name), content)) {
          r.samples.push({ i, file: name, ms: msSince(start), at, gapMs, load1 });
          break;
        }
        alive();
        if (msSince(start) > WRITE_TIMEOUT_MS) {
          r.timeouts++;
          r.samples.push({ i, file: name, ms: undefined, timedOut: true, at, gapMs, load1 });
          log(`  ${tool.label}: write ${i} (${name}) did not reach beta within ${WRITE_TIMEOUT_MS / 1000} s`);
          break;
        }
        await sleep(POLL_MS);
      }
      if (r.timeouts >= MAX_TIMEOUTS) throw new Error(`${r.timeouts} writes did not reach beta within ${WRITE_TIMEOUT_MS / 1000} s`);
      if ((i + 1) % 50 === 0) log(`  ${tool.label}: ${i + 1}/${writes} writes`);
    }
    r.writesSeconds = msSince(tWrites) / 1000;
    const cpuWrites = cpu();
    r.writesCpuSeconds = { host: cpuWrites.host - cpuReady.host, guest: cpuWrites.guest - cpuReady.guest };

    // 3. idle CPU
    flush();
    await sleep(SETTLE_MS);
    alive();
    const guest0 = new Set(guestPids(sshd).map((p) => p.pid));
    const cpu0 = cpu();
    const load0 = os.loadavg();
    const w0 = process.hrtime.bigint();
    await sleep(idleSeconds * 1000);
    const cpu1 = cpu();
    alive();
    r.idleSeconds = msSince(w0) / 1000;
    r.idleLoad = { start: load0, end: os.loadavg() };
    r.idleCpuPercent = {
      host: ((cpu1.host - cpu0.host) / r.idleSeconds) * 100,
      guest: ((cpu1.guest - cpu0.guest) / r.idleSeconds) * 100,
    };
    r.idleCpuPercent.total = r.idleCpuPercent.host + r.idleCpuPercent.guest;
    // sshd does not hand a finished session's CPU time up to the listener (see the notes): the
    // guest figure holds only if the guest processes were the same at both ends of the window
    const guest1 = new Set(guestPids(sshd).map((p) => p.pid));
    r.idleGuestProcessesChanged = guest0.size !== guest1.size || [...guest0].some((p) => !guest1.has(p));
    r.peakRssKB = { host: treePeakRssKB(child.pid), guest: Math.max(0, ...guestPids(sshd).map((p) => vmHwmKB(p.pid))) };
    r.processes = {
      host: processTree(child.pid).map((p) => p.pid).map(procName),
      guest: guestPids(sshd).map((p) => p.pid).map(procName),
    };
  } catch (error) {
    r.error = error.message;
  } finally {
    r.stop = await stopChild(child, exited, st);
    r.guestLeftovers = await waitGuestQuiet(sshd);
  }
  // the end state: every write there, nothing else different
  const d = diffTrees(alpha, beta);
  r.finalCheck = d === undefined ? 'beta matches alpha (diff -rq)' : d.split('\n').slice(0, 4).join(' ');
  r.logTail = tail(logFile, 20);
  if (tool.key === 'ferry-watch-ssh') r.ferryEvents = ferryEvents(logFile);
  return r;
}

function vmHwmKB(pid) {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** procName describes a process for the report: its command line, or "[comm] (state X)" when it has none (a zombie, a kernel thread). */
function procName(pid) {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    if (cmd) return cmd.length > 100 ? `${cmd.slice(0, 97)}...` : cmd;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `[${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}] (state ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]})`;
  } catch {
    return `${pid} (gone)`;
  }
}

/** routine says whether a ferry --json event is business as usual: progress, or the scan and sync of a change. */
const routine = (e) => e.event === 'progress' || (e.event === 'scanning' && e.scope === 'changes') || (e.event === 'synced' && e.scope === 'changes' && !e.conflicts && !e.failures);

/**
 * ferryEvents reads ferry's --json event log: every event, counts by kind
 * (scanning and synced by scope), and the notable ones (not routine).
 */
function ferryEvents(logFile) {
  const counts = {};
  const all = [];
  const notable = [];
  const other = [];
  let synced = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      other.push(line.length > 200 ? `${line.slice(0, 197)}...` : line);
      continue;
    }
    all.push(e);
    const kind = e.event === 'synced' || e.event === 'scanning' ? `${e.event} (${e.scope})` : e.event;
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (e.event === 'synced' && e.scope === 'changes') synced.push(e);
    if (!routine(e)) notable.push(e);
  }
  synced = synced.map((e) => e.ms).filter((x) => typeof x === 'number');
  return {
    counts,
    notable: notable.slice(0, 40),
    incrementalSyncMs: synced.length ? { n: synced.length, p50: quantile(synced, 0.5), p99: quantile(synced, 0.99), max: Math.max(...synced) } : undefined,
    otherLines: other.slice(0, 20),
    all,
  };
}

/** summarise turns a tool's raw result into its cell. */
function summarise(tool, r) {
  const ok = r.samples.filter((s) => s.ms !== undefined).map((s) => s.ms);
  const cell = {
    label: tool.label,
    command: r.command,
    guestSide: tool.guestSide,
    readySeconds: r.readySeconds,
    readyCpuSeconds: r.readyCpuSeconds,
    timeouts: r.timeouts,
    writesSeconds: r.writesSeconds,
    writesCpuSeconds: r.writesCpuSeconds,
    idleSeconds: r.idleSeconds,
    idleLoad: r.idleLoad,
    idleCpuPercent: r.idleCpuPercent,
    idleGuestProcessesChanged: r.idleGuestProcessesChanged,
    peakRssKB: r.peakRssKB,
    processes: r.processes,
    stop: r.stop,
    guestLeftovers: r.guestLeftovers,
    finalCheck: r.finalCheck,
    samples: r.samples,
    ...(r.ferryEvents ? { ferryEvents: r.ferryEvents } : {}),
    logTail: r.logTail,
  };
  if (ok.length) {
    cell.latencyMs = { n: ok.length, p50: quantile(ok, 0.5), p90: quantile(ok, 0.9), p99: quantile(ok, 0.99), min: Math.min(...ok), max: Math.max(...ok), mean: ok.reduce((a, b) => a + b, 0) / ok.length };
  }
  if (r.error) cell.status = `failed (${r.error.split('\n')[0]})`;
  return cell;
}

// ---------------------------------------------------------------- report

/**
 * splitFerryLatency splits each of ferry's latencies in two with its event
 * log: the wait from the write until ferry starts a pass (its watcher and
 * hint delivery) and that pass's own "ms". Returns { wait, pass } or undefined.
 */
function splitFerryLatency(samples, events) {
  const wait = [];
  const pass = [];
  const times = events.map((e) => Date.parse(e.time));
  for (const s of samples) {
    if (s.ms === undefined) continue;
    const t = Date.parse(s.at);
    const i = events.findIndex((e, k) => e.event === 'scanning' && times[k] >= t - 1);
    if (i < 0) continue;
    wait.push(Math.max(0, times[i] - t));
    const j = events.findIndex((e, k) => k > i && e.event === 'synced');
    if (j >= 0 && typeof events[j].ms === 'number') pass.push(events[j].ms);
  }
  return wait.length && pass.length ? { wait, pass } : undefined;
}

const ms = (x) => (x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const pct = (x) => (x === undefined ? '—' : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const mib = (kb) => (kb === undefined ? '—' : (kb / 1024).toFixed(1));
const escapeMd = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** watchSshMarkdown renders the report from the result object alone (also what is in the .json). */
export function watchSshMarkdown(result) {
  const out = [];
  const mode = result.mode === 'full' ? 'full run' : `--${result.mode} run`;
  out.push(`# Watch mode over SSH, ${result.tree.kind}: ${result.date}, ${result.host} (${mode})`, '');
  if (result.mode !== 'full') out.push(`A --${result.mode} run: a small tree and few writes, to check the part works. Its figures say little about the targets.`, '');
  out.push(
    `Tree: ${result.tree.description}, by ${result.tree.how}. alpha is a copy of it on this machine; beta starts empty in the guest ` +
      `(a directory owned by ${GUEST_USER}, reached through the bench's own sshd on 127.0.0.1). ` +
      `${result.writes} writes of a new ${WRITE_BYTES}-byte file into a random existing subdirectory of alpha, a random 0–${MAX_GAP_MS} ms apart; ` +
      `latency = from the write until beta holds that content (polled every ${POLL_MS} ms). ` +
      `Idle CPU over ${result.idleSeconds} s with nothing changing: host process tree + guest process tree, % of one core. Method and machine below.`,
    '',
  );
  out.push(
    '| tool | initial sync while watching | latency p50 | p99 | max | writes (timed out) | idle CPU: host + guest = total | peak RSS host / guest | end check |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const [, c] of Object.entries(result.cells)) {
    if (c.latencyMs === undefined && c.status !== undefined) {
      out.push(`| ${c.label} | ${escapeMd(c.readySeconds !== undefined ? `${c.readySeconds.toFixed(1)} s` : '—')} | ${escapeMd(c.status)} | | | | | | ${escapeMd(c.finalCheck ?? '')} |`);
      continue;
    }
    const l = c.latencyMs;
    const idle = c.idleCpuPercent
      ? `${pct(c.idleCpuPercent.host)} + ${pct(c.idleCpuPercent.guest)} = **${pct(c.idleCpuPercent.total)} %**${c.idleGuestProcessesChanged ? ' (guest processes came or went in the window: the guest part may be low)' : ''}`
      : escapeMd(c.status ?? '—');
    out.push(
      `| ${c.label} | ${c.readySeconds.toFixed(1)} s | **${ms(l.p50)} ms** | **${ms(l.p99)} ms** | ${ms(l.max)} ms | ${l.n}${c.timeouts ? ` (${c.timeouts})` : ''} | ${idle} | ` +
        `${c.peakRssKB ? `${mib(c.peakRssKB.host)} MiB / ${c.peakRssKB.guest ? `${mib(c.peakRssKB.guest)} MiB` : 'none running'}` : '—'} | ${escapeMd(c.finalCheck ?? '')}${c.status ? `; ${escapeMd(c.status)}` : ''} |`,
    );
  }
  out.push('');

  const f = result.cells['ferry-watch-ssh'];
  out.push('## ferry against the targets', '');
  if (f?.latencyMs) {
    const full = result.writes >= TARGETS.minWrites && result.idleSeconds >= TARGETS.idleSeconds;
    const met = (ok) => (full ? (ok ? 'yes' : 'no') : `${ok ? 'yes' : 'no'} (not a full run)`);
    out.push(
      '| figure | target | measured | met? |',
      '| --- | --- | --- | --- |',
      `| latency p50 | ≤ ${TARGETS.p50Ms} ms | ${ms(f.latencyMs.p50)} ms (n=${f.latencyMs.n}) | ${met(f.latencyMs.p50 <= TARGETS.p50Ms)} |`,
      `| latency p99 | ≤ ${TARGETS.p99Ms} ms | ${ms(f.latencyMs.p99)} ms (n=${f.latencyMs.n}) | ${met(f.latencyMs.p99 <= TARGETS.p99Ms)} |`,
      `| writes measured | ≥ ${TARGETS.minWrites} | ${f.latencyMs.n}${f.timeouts ? `, ${f.timeouts} timed out` : ''} | ${f.latencyMs.n >= TARGETS.minWrites ? 'yes' : 'no'} |`,
      f.idleCpuPercent
        ? `| idle CPU over ${TARGETS.idleSeconds} s | ≤ ${TARGETS.idleCpuPercent} % of a core | ${pct(f.idleCpuPercent.total)} % over ${f.idleSeconds.toFixed(0)} s (host ${pct(f.idleCpuPercent.host)}, guest ${pct(f.idleCpuPercent.guest)}) | ${met(f.idleCpuPercent.total <= TARGETS.idleCpuPercent)} |`
        : `| idle CPU over ${TARGETS.idleSeconds} s | ≤ ${TARGETS.idleCpuPercent} % of a core | ${escapeMd(f.status ?? '—')} | no figure |`,
      '',
    );
  } else out.push(`No figure: ${escapeMd(f?.status ?? 'not run')}.`, '');

  out.push('## Slowest writes', '', 'The five slowest writes of each tool, with the wall-clock time of the write (to match against logs) and the 1-minute load average then.', '');
  for (const c of Object.values(result.cells)) {
    const slow = [...c.samples].sort((a, b) => (b.ms ?? Infinity) - (a.ms ?? Infinity)).slice(0, 5);
    if (!slow.length) continue;
    out.push(`- ${c.label}: ${slow.map((s) => `${s.ms === undefined ? 'timed out' : `${ms(s.ms)} ms`} (${s.at.slice(11, 23)}, ${s.file}, load ${s.load1.toFixed(2)})`).join('; ')}`);
  }
  out.push('');

  if (f?.ferryEvents) {
    const e = f.ferryEvents;
    const notable = e.all ? e.all.filter((x) => !routine(x)) : e.notable;
    out.push('## ferry\'s events', '');
    out.push(
      `Counts from its \`--json\` output: ${Object.entries(e.counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}. ` +
        (e.incrementalSyncMs ? `Its own "ms" of the incremental syncs: p50 ${ms(e.incrementalSyncMs.p50)}, p99 ${ms(e.incrementalSyncMs.p99)}, max ${ms(e.incrementalSyncMs.max)} (n=${e.incrementalSyncMs.n}). ` : '') +
        `Every event other than progress and the routine scanning/synced of changes: ${notable.slice(0, 40).map((x) => `\`${escapeMd(JSON.stringify(x))}\``).join(', ') || 'none'}.` +
        (e.otherLines.length ? ` Lines that are not JSON: ${e.otherLines.map((x) => `\`${escapeMd(x)}\``).join(', ')}.` : ''),
      '',
    );
    const split = e.all ? splitFerryLatency(f.samples, e.all) : undefined;
    if (split) {
      const q = (xs, p) => ms(quantile(xs, p));
      out.push(
        `Where the time goes (matching each write with the first \`scanning\` event after it and the first \`synced\` after that; the timestamps have 1 ms resolution): ` +
          `write → pass starts: p50 ${q(split.wait, 0.5)} ms, p99 ${q(split.wait, 0.99)} ms, max ${ms(Math.max(...split.wait))} ms ` +
          `(${split.wait.filter((x) => x < 30).length} writes under 30 ms, ${split.wait.filter((x) => x >= 30 && x < 100).length} at 30–100 ms, ${split.wait.filter((x) => x >= 100).length} at 100 ms or more); ` +
          `the pass itself (its "ms"): p50 ${q(split.pass, 0.5)} ms, p99 ${q(split.pass, 0.99)} ms, max ${ms(Math.max(...split.pass))} ms (n=${split.pass.length}).`,
        '',
      );
    }
  }

  out.push('## Notes', '');
  for (const n of result.notes) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}

// ---------------------------------------------------------------- the part

/**
 * runWatchSsh runs the whole part and writes its report. ctx: { mode, repo,
 * benchDir, resultsDir, keep, argv, baseEnv, writes, idleSeconds, treeSpec,
 * makeCorpus(dir, kind, spec), onExit(fn) }. Returns undefined, or a message
 * when ferry itself failed (the exit status says so).
 */
export async function runWatchSsh(ctx) {
  const startedAt = new Date();
  const work = path.resolve(ctx.benchDir, 'watch-ssh');
  freshDir(work);
  ctx.onExit((code) => {
    if (code === 0 && !ctx.keep) spawnSync('rm', ['-rf', work], { stdio: 'ignore' });
    else process.stderr.write(`bench: watch-ssh work trees and logs kept in ${work} (delete it when done)\n`);
  });
  const children = [];
  ctx.onExit(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const build = snapshotFerry(ctx.repo, path.join(work, 'ferry'));
  const ferryVersion = firstLine(build.bin, ['--version']) ?? 'unknown';
  const present = peerPresence();

  let sshWhy = sshUnavailable();
  // the guest user must reach its directories under the work dir
  for (let d = work; sshWhy === undefined && d !== path.dirname(d); d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) sshWhy = `not run: ${d} is not searchable by ${GUEST_USER} (set BENCH_DIR elsewhere)`;
  }
  let sshd;
  let guestHas = new Set();
  if (sshWhy === undefined) {
    sshd = await startSshd(path.join(work, 'sshd'));
    ctx.onExit(sshd.stop);
    ctx.onExit(guestUnisonCleanup(sshd.guestHome));
    guestHas = guestCommands(sshd, ['node', 'rsync', 'unison'], ctx.baseEnv);
    log(`watch-ssh: sshd on 127.0.0.1:${sshd.port} (pid ${sshd.pid}), logging in as ${GUEST_USER}; in its PATH: ${[...guestHas].join(', ') || 'none of node, rsync, unison'}`);
  } else log(`watch-ssh: ${sshWhy}`);
  const ferryWatchUnavailable = sshWhy === undefined ? await probeFerryWatch(build.bin, path.join(work, 'watch-probe')) : undefined;
  const tools = watchSshTools({ ferryBin: build.bin, ferryVersion, ferryWatchUnavailable, present, sshd, sshUnavailable: sshWhy, guestHas });
  for (const t of tools) if (t.unavailable) log(`watch-ssh: ${t.label}: ${t.unavailable}`);

  const cells = {};
  let corpus;
  if (tools.some((t) => !t.unavailable)) {
    corpus = ctx.makeCorpus(path.join(work, 'tree-huge-tree'), 'huge-tree', ctx.treeSpec);
    const subdirs = readdirSync(corpus.dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    const guestRoot = freshDir(path.join(work, 'guest'));
    spawnSync('chown', [`${GUEST_USER}:${GUEST_USER}`, guestRoot]);
    for (const t of tools) {
      if (t.unavailable) continue;
      log(`watch-ssh: ${t.label}: initial sync of ${corpus.files.toLocaleString('en-US')} files while watching, then ${ctx.writes} writes and ${ctx.idleSeconds} s idle`);
      const r = await measureOne(t, {
        corpus,
        subdirs,
        work,
        guestRoot,
        sshd,
        writes: ctx.writes,
        idleSeconds: ctx.idleSeconds,
        readyTimeoutMs: ctx.readyTimeoutMs,
        baseEnv: ctx.baseEnv,
      });
      const cell = summarise(t, r);
      cells[t.key] = cell;
      if (cell.status) log(`watch-ssh: ${t.label}: ${cell.status}`);
      if (cell.latencyMs) {
        const l = cell.latencyMs;
        log(
          `watch-ssh: ${t.label}: latency p50 ${ms(l.p50)} ms, p99 ${ms(l.p99)} ms, max ${ms(l.max)} ms (n=${l.n}, ${cell.timeouts} timed out)` +
            (cell.idleCpuPercent ? `; idle CPU ${pct(cell.idleCpuPercent.host)} + ${pct(cell.idleCpuPercent.guest)} = ${pct(cell.idleCpuPercent.total)} %` : ''),
        );
      }
      log(`watch-ssh: ${t.label}: stopped (${r.stop.how}${r.stop.killed ? ', killed after the grace period' : ''}); ${cell.finalCheck}${r.guestLeftovers.length ? `; guest processes left and killed: ${r.guestLeftovers.join(', ')}` : ''}`);
      if (!ctx.keep) {
        rmrf(path.join(work, t.key));
        rmrf(r.beta);
      }
    }
    if (!ctx.keep) rmrf(corpus.dir);
  }
  for (const t of tools) if (!cells[t.key]) cells[t.key] = { label: t.label, status: t.unavailable, samples: [] };

  const finishedAt = new Date();
  const machine = machineInfo();
  const versions = {
    ferry: ferryVersion,
    lsyncd: tools.find((t) => t.key === 'lsyncd-ssh').version,
    unison: tools.find((t) => t.key === 'unison-watch-ssh').version,
    rsync: present('rsync') ? firstLine('rsync', ['--version']) : 'missing',
    ssh: present('ssh') ? firstLine('ssh', ['-V']) : 'missing',
  };
  const loads = Object.values(cells).flatMap((c) => c.samples.map((s) => s.load1));
  const notes = [
    `Machine: ${machine.host}, ${machine.cpus} cores (${machine.cpuModel}), ${machine.memGiB} GiB, ${machine.os}, kernel ${machine.kernel}, node ${machine.node}. The machine is shared: other work runs at the same time, and single writes can wait for a core.`,
    `Versions: ${Object.entries(versions).map(([k, v]) => `${k}: ${v}`).join('; ')}.`,
    `ferry under test: dist/ built ${build.distBuiltAt} from ${build.head}${build.uncommittedSourceFiles ? ` plus ${build.uncommittedSourceFiles} uncommitted source file(s)` : ''}, copied aside at the start.`,
    `Run ${startedAt.toISOString()} – ${finishedAt.toISOString()} (${Math.round((finishedAt - startedAt) / 1000)} s), \`node bench/run.mjs${ctx.argv.length ? ` ${ctx.argv.join(' ')}` : ''}\`. One run; the tools go one after another (ferry, lsyncd, unison), each on a fresh copy of the tree and an empty beta.`,
    `Over ssh, the "other machine" is this one: /usr/sbin/sshd on 127.0.0.1 started by the bench (fresh host key, key-only auth), logging in as the unprivileged ${GUEST_USER}; its side runs on the same cores. Every tool uses the bench's client key and pinned host key; rsync and unison run OpenSSH with \`-c aes128-gcm@openssh.com\`, the cipher ferry's ssh2 negotiates.`,
    'Commands (PORT, KEY and the ssh options are the bench\'s own): ' +
      `ferry: \`ferry sync ALPHA ssh://${GUEST_USER}@127.0.0.1:PORT/BETA --watch --json --key KEY\` ($FERRY_HOME fresh, holding the host key); ` +
      `lsyncd: \`sync { default.rsync, source = ALPHA/, target = "${GUEST_USER}@127.0.0.1:BETA/", delay = 0, rsync = { archive = true, rsh = "ssh -p PORT -i KEY … -c aes128-gcm@openssh.com" } }\` (one-way; one full rsync at start, then one rsync -a over a new ssh connection per batch of inotify events); ` +
      `unison: \`unison ALPHA ssh://${GUEST_USER}@127.0.0.1:PORT//BETA -batch -perms 0 -ui text -repeat 1 -sshargs "-i KEY … -c aes128-gcm@openssh.com"\` (HOME fresh; in the guest, \`unison -server\` under sshd).`,
    `Initial sync while watching: from the start of the watcher until beta holds all ${corpus ? corpus.files.toLocaleString('en-US') : ''} files (a file count every ${READY_POLL_MS / 1000} s, then \`diff -rq\`); the writes start only after that.`,
    `Latency: ${ctx.writes} writes, each a new file \`dNNNN/bench-wIIII.dat\` (${WRITE_BYTES} random bytes, \`writeFileSync\`) in a subdirectory chosen at random among the tree's ${ctx.treeSpec.dirs} (seeded, the same sequence for every tool), after a random 0–${MAX_GAP_MS} ms pause; beta's copy is read every ${POLL_MS} ms until it has the same bytes. A write that takes over ${WRITE_TIMEOUT_MS / 1000} s counts as timed out; ${MAX_TIMEOUTS} time-outs stop that tool. p50/p99 are nearest-rank percentiles, so each is a sample that happened.`,
    `Idle CPU: ${SETTLE_MS / 1000} s after the last write (and a \`sync\`), the CPU time (utime + stime + cutime + cstime from /proc/PID/stat) over ${ctx.idleSeconds} s of (host) the watcher and its descendants — ferry's node process (ssh2 is in-process), lsyncd and any rsync/ssh it runs, unison and its ssh — and (guest) every descendant of the bench's sshd: the session processes of that tool's connection(s) and what runs under them, ferry's agent, rsync servers, \`unison -server\`. The bench's sshd serves nothing else. Percent of one core.`,
    'Caveat on the guest side: sshd does not pass the CPU time of a finished session up to its listener (checked: a 1 s shell loop run over this sshd leaves about 0.03 s in the listener\'s cutime), so the guest sum counts the processes alive when it is read. ' +
      'That is exact for the idle window when the same guest processes are alive at both of its ends (ferry\'s one connection, unison\'s one connection, and lsyncd with no connection at all); the report says so, or flags the window. ' +
      'The CPU during the initial sync and the writes in the .json (readyCpuSeconds, writesCpuSeconds) undercount lsyncd\'s guest side, which is one short session per rsync.',
    'Peak RSS: the largest VmHWM in the host tree and in the guest tree at the end of the idle window.',
    'End check: after the watcher stops, `diff -rq ALPHA BETA` over the whole tree (the corpus and every write).',
    loads.length
      ? `1-minute load average at each write: median ${quantile(loads, 0.5).toFixed(2)}, min ${Math.min(...loads).toFixed(2)}, max ${Math.max(...loads).toFixed(2)} on ${machine.cpus} cores.`
      : 'No writes were measured.',
  ];
  const result = {
    part: 'watch-ssh',
    mode: ctx.mode,
    date: localDate(startedAt),
    host: machine.host,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    argv: ctx.argv,
    writes: ctx.writes,
    idleSeconds: ctx.idleSeconds,
    targets: TARGETS,
    machine,
    versions,
    ferryBuild: { head: build.head, distBuiltAt: build.distBuiltAt, uncommittedSourceFiles: build.uncommittedSourceFiles },
    tree: corpus ? { kind: 'huge-tree', description: corpus.description, files: corpus.files, dirs: corpus.dirs, bytes: corpus.bytes, how: corpus.how } : { kind: 'huge-tree', description: 'not built', how: '—' },
    cells,
    notes,
  };
  mkdirSync(ctx.resultsDir, { recursive: true });
  const suffix = `-watch-ssh${ctx.mode === 'full' ? '' : `-${ctx.mode}`}`;
  const base = path.join(ctx.resultsDir, `${result.date}-${machine.host.replace(/[^A-Za-z0-9.-]+/g, '_')}${suffix}`);
  const md = watchSshMarkdown(result);
  writeFileSync(`${base}.md`, md);
  writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`\n${md}`);
  log(`watch-ssh: wrote ${base}.md and .json in ${Math.round((finishedAt - startedAt) / 1000)} s`);
  if (existsSync(work) && !ctx.keep) rmrf(path.join(work, 'guest'));
  const ferry = cells['ferry-watch-ssh'];
  if (ferry?.status?.startsWith('failed')) return `ferry failed in watch-ssh: ${ferry.status}`;
  return undefined;
}
