// Watch-mode figures of bench/run.mjs: how long a file written on alpha takes
// to appear on beta while a continuous synchroniser runs, and how much CPU that
// synchroniser burns while nothing changes. Plain Node ESM, node:* only.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { countFiles, diffTrees, prng, tail } from './lib.mjs';

/** WRITE_BYTES is the size of each file written to measure latency. */
export const WRITE_BYTES = 4096;
/** POLL_MS is how often beta is checked for the written file: the resolution of the latency figures. */
export const POLL_MS = 2;
/** MAX_GAP_MS bounds the random pause before each write (see measureWatch). */
export const MAX_GAP_MS = 1000;
const WRITE_TIMEOUT_MS = 30_000;
const MAX_TIMEOUTS = 3;
const SETTLE_MS = 2000;

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

const running = new Set();

/** stopAllWatchers kills any watcher still running (on the way out after an error). */
export function stopAllWatchers() {
  for (const child of running) child.kill('SIGKILL');
}

/** procStat returns { ppid, ticks } for pid from /proc/PID/stat (ticks = utime + stime + cutime + cstime), or undefined if it is gone. */
function procStat(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ... utime stime cutime cstime ...": comm may hold spaces and parentheses
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

/** processTree returns root and its live descendants, each { pid, ticks }. */
export function processTree(root) {
  const byParent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s === undefined) continue;
    const list = byParent.get(s.ppid) ?? [];
    list.push({ pid: Number(name), ticks: s.ticks });
    byParent.set(s.ppid, list);
  }
  const rootStat = procStat(root);
  const out = rootStat ? [{ pid: root, ticks: rootStat.ticks }] : [];
  for (let i = 0; i < out.length; i++) out.push(...(byParent.get(out[i].pid) ?? []));
  return out;
}

/**
 * treeCpuSeconds is the CPU time (user + system) used so far by root and its
 * descendants. A child that exited and was reaped moves its time into its
 * parent's cutime/cstime, so summing all four fields over the live tree counts
 * every process once, including short-lived ones (lsyncd's rsyncs).
 */
export function treeCpuSeconds(root) {
  return processTree(root).reduce((sum, p) => sum + p.ticks, 0) / CLK_TCK;
}

/** treePeakRssKB is the largest VmHWM (peak resident set) among root and its live descendants. */
export function treePeakRssKB(root) {
  let peak = 0;
  for (const { pid } of processTree(root)) {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      // gone meanwhile
    }
  }
  return peak;
}

function sameTrees(alpha, beta) {
  try {
    return countFiles(beta).files === countFiles(alpha).files && diffTrees(alpha, beta) === undefined;
  } catch {
    return false; // a directory vanished under the walk: the synchroniser is still at work
  }
}

export function fileIs(file, content) {
  try {
    return readFileSync(file).equals(content);
  } catch {
    return false;
  }
}

const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/**
 * measureWatch starts tool's watcher on alpha (a tree) and beta (empty), waits
 * until beta holds alpha's tree, then:
 *
 * 1. latency: `writes` times, waits a random 0–MAX_GAP_MS pause, writes a new
 *    WRITE_BYTES file of random bytes on alpha, and polls beta every POLL_MS
 *    until the file there has the same content. The random pause makes the
 *    writes land at random points of a polling peer's cycle (Unison's
 *    -repeat 1), rather than always just after its last scan.
 * 2. idle CPU: after SETTLE_MS, the CPU time of the watcher's process tree
 *    over idleSeconds with nothing changing, as a percentage of one core.
 *
 * Returns { latencyMs, timeouts, readySeconds, idleCpuPercent, idleSeconds,
 * peakRssKB, log, error? }; error says what went wrong, and the figures
 * measured before it are kept.
 */
export async function measureWatch(tool, { alpha, beta, dir, writes, idleSeconds, readyTimeoutMs }) {
  mkdirSync(path.join(alpha, 'latency'), { recursive: true });
  const [cmd, args, env] = tool.command(alpha, beta, dir);
  const log = path.join(dir, 'watch.log');
  const fd = openSync(log, 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  running.add(child);
  let exit;
  const exited = new Promise((resolve) => {
    child.once('error', (error) => resolve((exit = error.message)));
    child.once('exit', (code, signal) => resolve((exit = `exited ${code ?? signal}`)));
  });
  const alive = () => {
    if (exit !== undefined) throw new Error(`${tool.label} ${exit} while being measured; its log:\n${tail(log, 10)}`);
  };

  const result = { latencyMs: [], timeouts: 0, log };
  try {
    const t0 = process.hrtime.bigint();
    for (;;) {
      alive();
      if (sameTrees(alpha, beta)) break;
      if (msSince(t0) > readyTimeoutMs) throw new Error(`beta did not match alpha within ${readyTimeoutMs / 1000} s of starting`);
      await sleep(250);
    }
    result.readySeconds = msSince(t0) / 1000;

    const rnd = prng(7);
    const content = Buffer.alloc(WRITE_BYTES);
    for (let i = 0; i < writes; i++) {
      await sleep(rnd() % MAX_GAP_MS);
      for (let o = 0; o < content.length; o += 4) content.writeUInt32LE(rnd(), o);
      const name = path.join('latency', `w${String(i).padStart(4, '0')}.dat`);
      const start = process.hrtime.bigint();
      writeFileSync(path.join(alpha, name), content);
      for (;;) {
        if (fileIs(path.join(beta, name), content)) {
          result.latencyMs.push(msSince(start));
          break;
        }
        alive();
        if (msSince(start) > WRITE_TIMEOUT_MS) {
          result.timeouts++;
          break;
        }
        await sleep(POLL_MS);
      }
      if (result.timeouts >= MAX_TIMEOUTS) throw new Error(`${result.timeouts} writes did not reach beta within ${WRITE_TIMEOUT_MS / 1000} s`);
    }

    await sleep(SETTLE_MS);
    alive();
    const cpu0 = treeCpuSeconds(child.pid);
    const w0 = process.hrtime.bigint();
    await sleep(idleSeconds * 1000);
    alive();
    result.idleSeconds = msSince(w0) / 1000;
    result.idleCpuPercent = ((treeCpuSeconds(child.pid) - cpu0) / result.idleSeconds) * 100;
    result.peakRssKB = treePeakRssKB(child.pid);
  } catch (error) {
    result.error = error.message;
  } finally {
    if (exit === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
  }
  return result;
}
