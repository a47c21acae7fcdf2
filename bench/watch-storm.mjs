// Memory of `ferry sync --watch` when every file of a large tree changes at
// once: the watcher's hints are bounded (past 4,096 directories they become
// one full rescan), and a full pass holds one directory at a time, so the
// resident set should stay near that of an initial sync, not grow with the
// number of changes.
//
//   node bench/watch-storm.mjs [--files N] [--keep]
//
// Builds N files (default 100,000, 1 KiB each, in 1000 directories) on alpha,
// starts `ferry sync alpha beta --watch --json` with an empty beta, waits for
// the first sync, samples the process's VmRSS every 50 ms, rewrites every
// file on alpha at once, and waits until beta holds the new content of every
// file. Prints the resident set when idle before the storm, its peak during
// the storm, and the difference per changed file. Plain Node, node:* only.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, keep: { type: 'boolean', default: false } } });
const files = Number(values.files);
const dirs = Math.max(1, Math.round(files / 100));
const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'ferry.js');
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), 'ferry-storm-'));
const alpha = path.join(work, 'alpha');
const beta = path.join(work, 'beta');
const home = path.join(work, 'home');
const log = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

function fileName(i) {
  return path.join(`d${String(i % dirs).padStart(4, '0')}`, `f${String(i).padStart(6, '0')}.dat`);
}

function writeAll(generation) {
  for (let i = 0; i < files; i++) writeFileSync(path.join(alpha, fileName(i)), `${generation} ${i} `.padEnd(1024, '.'));
}

function rssKiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

mkdirSync(beta, { recursive: true });
for (let d = 0; d < dirs; d++) mkdirSync(path.join(alpha, `d${String(d).padStart(4, '0')}`), { recursive: true });
log(`writing ${files} files on alpha`);
writeAll('first');

const child = spawn(process.execPath, [bin, 'sync', alpha, beta, '--watch', '--json'], { env: { ...process.env, FERRY_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
const events = [];
let buffer = '';
child.stdout.setEncoding('utf8').on('data', (chunk) => {
  buffer += chunk;
  let nl;
  while ((nl = buffer.indexOf('\n')) >= 0) {
    events.push(JSON.parse(buffer.slice(0, nl)));
    buffer = buffer.slice(nl + 1);
  }
});

async function waitFor(what, test, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function betaHolds(generation) {
  // Every 97th file and the last one: a full comparison would take as long as the sync.
  for (let i = 0; i < files; i += 97) if (!readSafe(path.join(beta, fileName(i))).startsWith(`${generation} ${i} `)) return false;
  return readSafe(path.join(beta, fileName(files - 1))).startsWith(`${generation} ${files - 1} `);
}

function readSafe(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

try {
  const t0 = Date.now();
  await waitFor('the first sync', () => events.some((e) => e.event === 'synced' && e.scope === 'full'), 30 * 60_000);
  log(`first sync done in ${((Date.now() - t0) / 1000).toFixed(1)} s; letting it settle`);
  await sleep(3000);
  const idle = [];
  for (let i = 0; i < 20; i++) {
    idle.push(rssKiB(child.pid));
    await sleep(50);
  }
  const idleKiB = Math.max(...idle);
  let peakKiB = idleKiB;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakKiB = Math.max(peakKiB, rssKiB(child.pid) || 0);
      await sleep(50);
    }
  })();
  const stormStart = Date.now();
  log(`rewriting all ${files} files at once`);
  writeAll('second');
  await waitFor('beta to hold the new content', () => betaHolds('second'), 30 * 60_000);
  const stormMs = Date.now() - stormStart;
  await sleep(2000);
  sampling = false;
  await sampler;
  const rescans = events.filter((e) => e.event === 'scanning' && e.scope === 'full' && e.reason !== 'first scan').map((e) => e.reason);
  const result = {
    files,
    idleRssKiB: idleKiB,
    peakRssKiB: peakKiB,
    bytesPerChangedFile: Math.round(((peakKiB - idleKiB) * 1024) / files),
    stormSeconds: stormMs / 1000,
    fullRescans: rescans,
    passes: events.filter((e) => e.event === 'scanning').length,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  child.kill('SIGTERM');
  if (!values.keep) rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
