// Helpers shared by the benchmark scripts (plain Node ESM, node:* only).

import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function flush() {
  spawnSync('sync', [], { stdio: 'ignore' });
}

export function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function fail(msg) {
  process.stderr.write(`\nbench: FAILED: ${msg}\n`);
  process.exit(1);
}

export function have(cmd) {
  if (cmd.startsWith('/')) {
    try {
      accessSync(cmd, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * waitAfterDeletions waits until a minute has passed since `since` (ms): on
 * ext4, files created soon after thousands were deleted are slow to create
 * (the inode allocator skips recently freed inodes), which would slow
 * whichever timed command ran first.
 */
export function waitAfterDeletions(since) {
  const wait = since + 60_000 - Date.now();
  if (wait <= 0) return;
  log(`  waiting ${Math.ceil(wait / 1000)} s first: trees deleted less than a minute ago (by a previous run) would slow file creation`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
}

export function freshDir(p) {
  rmrf(p);
  mkdirSync(p, { recursive: true });
  return p;
}

export function rmrf(p) {
  const r = spawnSync('rm', ['-rf', p], { stdio: 'inherit' });
  if (r.status !== 0) fail(`rm -rf ${p} failed`);
}

export function diffTrees(a, b) {
  const r = spawnSync('diff', ['-rq', a, b], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status === 0) return undefined;
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
  return `diff -rq exit ${r.status}, ${lines.length} line(s):\n  ${lines.slice(0, 10).join('\n  ')}`;
}

export function tail(file, n = 15) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

export function genTree(dir, spec) {
  const rnd = prng(42);
  const { dw, fw } = spec;
  const buf = Buffer.alloc(spec.max + 4);
  for (let d = 0; d < spec.dirs; d++) mkdirSync(path.join(dir, `d${String(d).padStart(dw, '0')}`), { recursive: true });
  for (let i = 0; i < spec.files; i++) {
    const n = spec.min + (spec.max > spec.min ? rnd() % (spec.max - spec.min + 1) : 0);
    for (let o = 0; o < n; o += 4) buf.writeUInt32LE(rnd(), o);
    const p = path.join(dir, `d${String(i % spec.dirs).padStart(dw, '0')}`, `f${String(i).padStart(fw, '0')}.dat`);
    writeFileSync(p, buf.subarray(0, n));
  }
}

export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmtStat(st, unit = 's', f = fmtS) {
  if (st === undefined) return '—';
  if (st.n === 1) return `${f(st.median)} ${unit} (n=1)`;
  return `${f(st.median)} ${unit} [${f(st.min)}–${f(st.max)}] (n=${st.n})`;
}

export const fmtS = (x) => (x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));

/** positiveInt parses a --flag's value, or exits with the usage text. */
export function positiveInt(text, name, dflt, usage) {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench: ${name} must be a positive integer, got ${JSON.stringify(text)}\n${usage}\n`);
    process.exit(2);
  }
  return n;
}

/**
 * snapshotFerry copies the ferry build of `repo` into `dest`, so a rebuild
 * during the run cannot change ferry halfway; returns the copy's executable
 * and where the build came from.
 */
export function snapshotFerry(repo, dest) {
  freshDir(dest);
  for (const p of ['bin', 'dist', 'package.json', path.join('native-shims', 'build')]) {
    if (existsSync(path.join(repo, p))) cpSync(path.join(repo, p), path.join(dest, p), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(path.join(repo, 'node_modules'), path.join(dest, 'node_modules'), 'dir');
  let newest = 0;
  for (const e of readdirSync(path.join(repo, 'dist'), { recursive: true })) newest = Math.max(newest, statSync(path.join(repo, 'dist', e)).mtimeMs);
  const git = (...args) => spawnSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).stdout?.trim();
  const dirty = (git('status', '--porcelain', '--', 'src', 'native-shims/src') ?? '').split('\n').filter(Boolean).length;
  return {
    bin: path.join(dest, 'bin', 'ferry.js'),
    head: git('rev-parse', '--short', 'HEAD') ?? 'unknown',
    uncommittedSourceFiles: dirty,
    distBuiltAt: new Date(newest).toISOString(),
  };
}

/** firstLine runs a command and returns the first non-empty line it printed (a version string), or undefined. */
export function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || (r.status !== 0 && !r.stdout && !r.stderr)) return undefined;
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '')?.trim().replace(/\s+/g, ' ');
}

/** countFiles returns how many regular files and directories are below dir, and the files' total size. */
export function countFiles(dir) {
  let files = 0;
  let dirs = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isDirectory()) dirs++;
    else if (e.isFile()) {
      files++;
      bytes += statSync(path.join(e.parentPath ?? e.path, e.name)).size;
    }
  }
  return { files, dirs, bytes };
}

/** stats summarises samples as { n, median, min, max, samples }, or undefined when there are none. */
export function stats(xs) {
  if (xs === undefined || xs.length === 0) return undefined;
  return { n: xs.length, median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs };
}

/** quantile returns the q-quantile (0..1) of xs by the nearest-rank method, so p99 is a sample that happened. */
export function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** genLarge writes the mkcorpus.py large layout: big<NN>.bin, each a random 64 KiB block repeated to spec.size bytes */
export function genLarge(dir, spec) {
  const rnd = prng(42);
  mkdirSync(dir, { recursive: true });
  const blk = Buffer.alloc(65536);
  for (let i = 0; i < spec.files; i++) {
    for (let o = 0; o < blk.length; o += 4) blk.writeUInt32LE(rnd(), o);
    const fd = openSync(path.join(dir, `big${String(i).padStart(2, '0')}.bin`), 'w');
    for (let left = spec.size; left > 0; left -= blk.length) writeSync(fd, blk, 0, Math.min(left, blk.length));
    closeSync(fd);
  }
}

/** osRelease returns the distribution's PRETTY_NAME, or undefined. */
export function osRelease() {
  try {
    return /PRETTY_NAME="?([^"\n]*)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** localDate formats d as YYYY-MM-DD in local time. */
export function localDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** machineInfo describes this machine for a report: host, cores, CPU model, memory, OS, kernel, node. */
export function machineInfo() {
  return {
    host: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: osRelease() ?? `${os.type()} ${os.release()}`,
    kernel: os.release(),
    node: process.version,
  };
}
