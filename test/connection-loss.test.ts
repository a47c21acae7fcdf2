/**
 * The SSH connection to the guest dies in the middle of an initial sync:
 * ferry must stop with a clear message, leave no torn file at a user-visible
 * name on either side (DESIGN rule 3), and a second sync must finish the job
 * and sweep every temporary.
 */

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Pair, makePair } from './support/cli.js';
import { type Sshd, startSshd, sshdUnavailable } from './support/sshd.js';

const TEMP_PREFIX = '.ferry-tmp-';
const FILES = 400;
const DIRS = 8;

/** Every regular file below root, by relative path, with its size and SHA-256 (comparing 14 MiB of Buffers with toEqual is slow). */
function files(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) out.set(path, digest(readFileSync(join(root, path))));
    }
  };
  walk('');
  return out;
}

/** The user-visible regular files below root, by name only (cheap enough to poll). */
function visibleNames(root: string): string[] {
  return regularNames(root).filter(userVisible);
}

/** Every regular file below root, ferry's temporaries included, by name only. */
function regularNames(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries;
    try {
      entries = readdirSync(join(root, rel), { withFileTypes: true });
    } catch {
      return; // a directory being created or removed right now
    }
    for (const entry of entries) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out.push(path);
    }
  };
  walk('');
  return out;
}

function digest(content: Buffer): string {
  return `${content.length} ${createHash('sha256').update(content).digest('hex')}`;
}

function userVisible(path: string): boolean {
  return !(path.split('/').at(-1) ?? '').startsWith(TEMP_PREFIX);
}

/** Paths whose content is not exactly what alpha had for them (a torn or foreign file). */
function torn(root: string, original: ReadonlyMap<string, string>): string[] {
  const bad: string[] = [];
  for (const [path, content] of files(root)) {
    if (!userVisible(path)) continue;
    const want = original.get(path);
    if (want === undefined) bad.push(`${path}: not one of alpha's files`);
    else if (want !== content) bad.push(`${path}: ${content}, not alpha's ${want}`);
  }
  return bad;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('losing the SSH connection mid-sync', () => {
  const unavailable = sshdUnavailable();
  let sshd: Sshd | undefined;
  beforeAll(async () => {
    if (unavailable === undefined) sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  test('ferry stops with a clear message, nothing is torn, and the next sync completes', async () => {
    if (sshd === undefined) throw new Error(`this test needs a real sshd: ${unavailable ?? 'sshd did not start'}`);
    const pair: Pair = makePair({}, {}, sshd);
    const original = new Map<string, string>();
    for (let i = 0; i < FILES; i++) {
      const content = randomBytes(8 * 1024 + Math.floor(Math.random() * 56 * 1024));
      const path = `d${i % DIRS}/f${String(i).padStart(3, '0')}.bin`;
      mkdirSync(dirname(join(pair.alpha, path)), { recursive: true });
      writeFileSync(join(pair.alpha, path), content);
      original.set(path, digest(content));
    }
    expect(files(pair.alpha)).toEqual(original);

    const running = pair.sync();
    let finished = false;
    void running.finally(() => (finished = true));
    // Drop the connection once the copy is under way in beta: files are
    // staged under temporary names, and renamed into place a batch at a time.
    const deadline = Date.now() + 60_000;
    let seen = 0;
    while (!finished && Date.now() < deadline) {
      seen = regularNames(pair.beta).length;
      if (seen > 0) break;
      await sleep(2);
    }
    expect(finished, 'the sync finished before the connection could be dropped').toBe(false);
    sshd.dropConnections();
    const first = await running;

    expect(seen).toBeGreaterThan(0);
    expect(first.status).toBe(1);
    expect(first.stderr).toMatch(/^ferry: sync halted: the connection to ssh:\/\/\S+ (closed|failed)/);
    expect(first.stderr).not.toMatch(/unexpected error/);
    expect(files(pair.alpha)).toEqual(original);
    expect(torn(pair.beta, original)).toEqual([]);
    expect(visibleNames(pair.beta).length).toBeLessThan(FILES);

    // The dead connection's agent may linger a moment (here: a zombie until
    // pid 1 reaps it), and ferry rightly leaves the temporaries of a live
    // stager alone. Wait until their owners are gone, as the next sync of a
    // real guest would find them.
    const owners = new Set([...files(pair.beta).keys()].filter((path) => !userVisible(path)).map((path) => (path.split('/').at(-1) ?? '').slice(TEMP_PREFIX.length).split('-')[0]));
    const gone = Date.now() + 20_000;
    while ([...owners].some((pid) => existsSync(`/proc/${pid}`)) && Date.now() < gone) await sleep(50);

    // The listener is still up: the next sync finishes the job.
    const second = await pair.sync();
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    expect(files(pair.alpha)).toEqual(original);
    expect(files(pair.beta)).toEqual(original);
  }, 90_000);
});
