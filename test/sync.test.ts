/**
 * End-to-end tests of `ferry sync --once` through the built CLI on real
 * temp directories.
 */

import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Pair, type Tree, makePair as makeLocalOrRemotePair, readTree, runFerry, writeTree } from './support/cli.js';
import { type Sshd, startSshd, sshdUnavailable } from './support/sshd.js';

interface ConflictJson {
  id: number;
  path: string;
  reason: string;
  state: string;
}

// The SHA256 fingerprint of the host key in a known_hosts line, as OpenSSH prints it.
function hostKeyFingerprint(knownHostsLine: string): string {
  const blob = knownHostsLine.trim().split(/\s+/)[2] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

async function conflicts(home: string): Promise<ConflictJson[]> {
  const r = await runFerry(home, ['conflicts', '--json']);
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as ConflictJson[];
}

// Every scenario runs three times: beta a local directory, and beta a
// directory in the guest behind a real sshd on 127.0.0.1, with the guest
// agent on ferry's native shims (as for a guest of the host's platform) and
// on plain Node (as for any other).
const modes = ['local', 'ssh', 'ssh, portable agent'] as const;

// The SSH scenarios need root (sshd, the guest user); without it they are
// skipped, and as root a missing sshd fails them rather than skipping.
for (const mode of modes) describe.skipIf(mode !== 'local' && process.getuid?.() !== 0)(`ferry sync --once (beta ${mode})`, () => {
  let sshd: Sshd | undefined;
  const unavailable = mode !== 'local' ? sshdUnavailable() : undefined;
  beforeAll(async () => {
    if (mode !== 'local' && unavailable === undefined) sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });
  // What ferry runs with in this mode: the guest agent on plain Node, or on the native shims.
  const env = mode === 'ssh, portable agent' ? { FERRY_GUEST_DISK: 'portable' } : {};
  const makePair = (alphaTree?: Tree, betaTree?: Tree): Pair => {
    if (mode !== 'local' && sshd === undefined) throw new Error(`the SSH scenarios cannot run: ${unavailable ?? 'sshd did not start'}`);
    return makeLocalOrRemotePair(alphaTree, betaTree, sshd, env);
  };

  test('an initial sync merges both trees and a second run has nothing to do', async () => {
    const pair = makePair({ 'a.txt': 'alpha', 'dir/': null, 'dir/x': 'x', 'deep/er/file': 'deep' }, { 'b.txt': 'beta', 'other/y': 'y' });
    const first = await pair.sync();
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(readTree(pair.alpha)).toEqual(readTree(pair.beta));
    expect(readTree(pair.alpha)).toMatchObject({ 'a.txt': 'alpha', 'b.txt': 'beta', 'deep/er/file': 'deep', 'other/y': 'y' });
    const second = await pair.sync('--json');
    expect(second.status).toBe(0);
    const summary = JSON.parse(second.stdout) as { copied: { alpha: number; beta: number }; status: string; agent?: { disk: string } };
    expect(summary.status).toBe('in-sync');
    expect(summary.copied).toEqual({ alpha: 0, beta: 0 });
    // The mode is what it says: the agent reports the disk it works on.
    expect(summary.agent?.disk).toBe(mode === 'local' ? undefined : mode === 'ssh' ? 'native' : 'portable');
  });

  for (const [from, to] of [
    ['alpha', 'beta'],
    ['beta', 'alpha'],
  ] as const) {
    test(`every kind of change on ${from} reaches ${to}`, async () => {
      const pair = makePair({ 'keep.txt': 'k', 'mod.txt': 'old', 'del.txt': 'gone soon', 'deldir/a': 'a', 'deldir/sub/b': 'b', 'f2d': 'file', 'd2f/inner': 'i' });
      expect((await pair.sync()).status).toBe(0);
      const src = pair[from];
      writeFileSync(join(src, 'mod.txt'), 'new content');
      unlinkSync(join(src, 'del.txt'));
      rmSync(join(src, 'deldir'), { recursive: true });
      unlinkSync(join(src, 'f2d'));
      writeTree(src, { 'f2d/child': 'now a dir', 'created/x/y.txt': 'created', 'emptydir/': null });
      rmSync(join(src, 'd2f'), { recursive: true });
      writeFileSync(join(src, 'd2f'), 'now a file');
      const r = await pair.sync();
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const dst = readTree(pair[to]);
      expect(dst).toEqual(readTree(src));
      expect(dst).toEqual({
        'keep.txt': 'k',
        'mod.txt': 'new content',
        f2d: null,
        'f2d/child': 'now a dir',
        created: null,
        'created/x': null,
        'created/x/y.txt': 'created',
        emptydir: null,
        d2f: 'now a file',
      });
    });
  }

  test("a name that only starts like ferry's temporaries is the user's file and syncs; a stale temporary of ferry's is swept", async () => {
    const pair = makePair({ '.ferry-tmp-notes.txt': 'mine', 'sub/.ferry-tmp-99999-3-x': 'mine too', 'sub/.ferry-tmp-': 'bare' }, { '.ferry-tmp-draft': 'beta draft', '.ferry-tmp-4194301-1z': 'stale' });
    const r = await pair.sync();
    expect(r.status, r.stderr).toBe(0);
    const mine = { '.ferry-tmp-draft': 'beta draft', '.ferry-tmp-notes.txt': 'mine', sub: null, 'sub/.ferry-tmp-': 'bare', 'sub/.ferry-tmp-99999-3-x': 'mine too' };
    expect(readTree(pair.alpha)).toEqual(mine);
    expect(readTree(pair.beta)).toEqual(mine);
  });

  test('identical changes on both sides agree silently', async () => {
    const pair = makePair({ 'same.txt': 'v1' }, {});
    expect((await pair.sync()).status).toBe(0);
    for (const root of [pair.alpha, pair.beta]) writeTree(root, { 'same.txt': 'v2', 'new/both.txt': 'identical' });
    const r = await pair.sync();
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/conflict/);
    expect(await conflicts(pair.home)).toEqual([]);
  });

  test('modify/modify halts only that path, leaves both versions intact, and persists until resolved', async () => {
    const pair = makePair({ 'clash.txt': 'base\n', 'other.txt': 'o' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'clash.txt'), 'alpha edit\n');
    writeFileSync(join(pair.beta, 'clash.txt'), 'beta edit\n');
    writeFileSync(join(pair.alpha, 'other.txt'), 'still flows');
    writeFileSync(join(pair.beta, 'fresh.txt'), 'new on beta');
    const r = await pair.sync();
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/conflict \d+: clash\.txt: contents changed on both sides/);
    expect(readFileSync(join(pair.alpha, 'clash.txt'), 'utf8')).toBe('alpha edit\n');
    expect(readFileSync(join(pair.beta, 'clash.txt'), 'utf8')).toBe('beta edit\n');
    expect(readFileSync(join(pair.beta, 'other.txt'), 'utf8')).toBe('still flows');
    expect(readFileSync(join(pair.alpha, 'fresh.txt'), 'utf8')).toBe('new on beta');

    const listed = await conflicts(pair.home);
    expect(listed).toHaveLength(1);
    const id = listed[0]?.id ?? 0;
    // It persists across runs with the same id.
    const again = await pair.sync();
    expect(again.status).toBe(3);
    expect((await conflicts(pair.home)).map((c) => c.id)).toEqual([id]);
    expect(readFileSync(join(pair.beta, 'clash.txt'), 'utf8')).toBe('beta edit\n');

    const show = await runFerry(pair.home, ['conflicts', 'show', String(id), ...(pair.remote && sshd !== undefined ? ['--key', sshd.clientKey] : [])]);
    expect(show.stderr).toBe('');
    expect(show.status).toBe(0);
    expect(show.stdout).toContain('-alpha edit');
    expect(show.stdout).toContain('+beta edit');
  });

  test('modify/delete halts that path and deletes nothing', async () => {
    const pair = makePair({ 'md.txt': 'base', 'dm.txt': 'base' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'md.txt'), 'modified on alpha');
    unlinkSync(join(pair.beta, 'md.txt'));
    unlinkSync(join(pair.alpha, 'dm.txt'));
    writeFileSync(join(pair.beta, 'dm.txt'), 'modified on beta');
    const r = await pair.sync();
    expect(r.status).toBe(3);
    expect(readFileSync(join(pair.alpha, 'md.txt'), 'utf8')).toBe('modified on alpha');
    expect(existsSync(join(pair.beta, 'md.txt'))).toBe(false);
    expect(readFileSync(join(pair.beta, 'dm.txt'), 'utf8')).toBe('modified on beta');
    expect(existsSync(join(pair.alpha, 'dm.txt'))).toBe(false);
    expect((await conflicts(pair.home)).map((c) => c.path).sort()).toEqual(['dm.txt', 'md.txt']);
  });

  test('a directory deleted on one side while its contents changed on the other is one conflict', async () => {
    const pair = makePair({ 'keep.txt': 'k', 'proj/a': 'a', 'proj/sub/b': 'b' });
    expect((await pair.sync()).status).toBe(0);
    rmSync(join(pair.alpha, 'proj'), { recursive: true });
    writeFileSync(join(pair.beta, 'proj/sub/b'), 'changed');
    const r = await pair.sync();
    expect(r.status).toBe(3);
    expect((await conflicts(pair.home)).map((c) => c.path)).toEqual(['proj']);
    expect(readTree(pair.beta)).toEqual({ 'keep.txt': 'k', proj: null, 'proj/a': 'a', 'proj/sub': null, 'proj/sub/b': 'changed' });
    expect(readTree(pair.alpha)).toEqual({ 'keep.txt': 'k' });
  });

  test('a conflict on a directory supersedes older conflicts below it', async () => {
    const pair = makePair({ 'keep.txt': 'k', 'a/x': 'x0', 'a/y': 'y0' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'a/x'), 'x alpha');
    writeFileSync(join(pair.beta, 'a/x'), 'x beta');
    expect((await pair.sync()).status).toBe(3);
    expect((await conflicts(pair.home)).map((c) => c.path)).toEqual(['a/x']);
    rmSync(join(pair.beta, 'a'), { recursive: true });
    const r = await pair.sync();
    expect(r.status).toBe(3);
    const now = await conflicts(pair.home);
    expect(now.map((c) => c.path)).toEqual(['a']);
    expect(now[0]?.reason).toMatch(/directory deleted on beta while its contents changed on alpha/);
    const resolved = await runFerry(pair.home, ['resolve', String(now[0]?.id), '--keep', 'alpha']);
    expect(resolved.status).toBe(0);
    expect((await pair.sync()).status).toBe(0);
    expect(readTree(pair.beta)).toEqual({ 'keep.txt': 'k', a: null, 'a/x': 'x alpha', 'a/y': 'y0' });
    expect(await conflicts(pair.home)).toEqual([]);
  });

  for (const keep of ['alpha', 'beta', 'host', 'guest'] as const) {
    test(`resolve --keep ${keep} makes that version win on the next sync`, async () => {
      const pair = makePair({ 'c.txt': 'base' });
      expect((await pair.sync()).status).toBe(0);
      writeFileSync(join(pair.alpha, 'c.txt'), 'from alpha');
      writeFileSync(join(pair.beta, 'c.txt'), 'from beta');
      expect((await pair.sync()).status).toBe(3);
      const [conflict] = await conflicts(pair.home);
      const res = await runFerry(pair.home, ['resolve', String(conflict?.id), '--keep', keep]);
      expect(res.status).toBe(0);
      expect(res.stdout).toMatch(/applied by the next/);
      const r = await pair.sync();
      expect(r.status).toBe(0);
      const winner = keep === 'alpha' || keep === 'host' ? 'from alpha' : 'from beta';
      expect(readFileSync(join(pair.alpha, 'c.txt'), 'utf8')).toBe(winner);
      expect(readFileSync(join(pair.beta, 'c.txt'), 'utf8')).toBe(winner);
      expect(await conflicts(pair.home)).toEqual([]);
      expect((await pair.sync()).status).toBe(0);
    });
  }

  test('a losing side changed after the choice is not overwritten: the choice is dropped, the conflict stands, and a new choice is applied', async () => {
    const pair = makePair({ 'c.txt': 'base', 'd/x.txt': 'x' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'c.txt'), 'from alpha');
    writeFileSync(join(pair.beta, 'c.txt'), 'from beta');
    writeFileSync(join(pair.alpha, 'd/x.txt'), 'alpha x');
    rmSync(join(pair.beta, 'd'), { recursive: true });
    writeFileSync(join(pair.beta, 'd'), 'beta made d a file');
    expect((await pair.sync()).status).toBe(3);
    const found = await conflicts(pair.home);
    const id = (path: string) => String(found.find((c) => c.path === path)?.id);
    for (const path of ['c.txt', 'd']) expect((await runFerry(pair.home, ['resolve', id(path), '--keep', 'alpha'])).status).toBe(0);
    // After the choice: beta's work goes on, in the file and where the directory was.
    writeFileSync(join(pair.beta, 'c.txt'), 'beta, later and precious');
    rmSync(join(pair.beta, 'd'));
    writeTree(pair.beta, { 'd/precious.txt': 'made after the choice' });
    const r = await pair.sync('--json');
    expect(r.status).toBe(1);
    const summary = JSON.parse(r.stdout) as { failures: { path: string; message: string }[]; conflicts: { path: string }[] };
    expect(summary.failures.map((f) => f.path).sort()).toEqual(['c.txt', 'd']);
    expect(summary.failures.find((f) => f.path === 'c.txt')?.message).toBe(
      `c.txt: beta changed after \`ferry resolve ${id('c.txt')} --keep alpha\` was chosen (it is now a file of 24 bytes); nothing that changed was overwritten, and the conflict stands: choose again`,
    );
    expect(readFileSync(join(pair.beta, 'c.txt'), 'utf8')).toBe('beta, later and precious');
    expect(readFileSync(join(pair.beta, 'd/precious.txt'), 'utf8')).toBe('made after the choice');
    // d is a directory on both sides again: what is in it is synced (x.txt, edited on alpha, removed on beta, is a conflict of its own).
    expect(readFileSync(join(pair.alpha, 'd/precious.txt'), 'utf8')).toBe('made after the choice');
    expect((await conflicts(pair.home)).map((c) => c.path)).toEqual(expect.arrayContaining(['c.txt', 'd/x.txt']));
    // Chosen again, now that both are known: applied.
    expect((await runFerry(pair.home, ['resolve', id('c.txt'), '--keep', 'alpha'])).status).toBe(0);
    expect((await pair.sync()).status).toBe(3);
    expect(readFileSync(join(pair.beta, 'c.txt'), 'utf8')).toBe('from alpha');
  });

  // A conflict on proj: alpha made it a file while beta added proj/b (and whatever `onBeta` adds).
  const directoryConflict = async (onBeta: (beta: string) => void = () => undefined) => {
    const pair = makePair({ 'keep.txt': 'k', 'proj/a': 'a' });
    expect((await pair.sync()).status).toBe(0);
    rmSync(join(pair.alpha, 'proj'), { recursive: true });
    writeFileSync(join(pair.alpha, 'proj'), 'alpha made proj a file');
    writeFileSync(join(pair.beta, 'proj/b'), 'beta b');
    onBeta(pair.beta);
    expect((await pair.sync()).status).toBe(3);
    const found = await conflicts(pair.home);
    expect(found.map((c) => c.path)).toEqual(['proj']);
    return { pair, conflict: found[0] };
  };

  test('a losing directory that gained a file after the choice is not removed: the choice is dropped, and applied once made again', async () => {
    const { pair, conflict } = await directoryConflict();
    expect((await runFerry(pair.home, ['resolve', String(conflict?.id), '--keep', 'alpha'])).status).toBe(0);
    writeTree(pair.beta, { 'proj/c': 'made after the choice' });
    const r = await pair.sync('--json');
    expect(r.status).toBe(1);
    const summary = JSON.parse(r.stdout) as { failures: { path: string; message: string }[] };
    expect(summary.failures).toEqual([
      {
        path: 'proj',
        message: `proj: beta changed after \`ferry resolve ${conflict?.id} --keep alpha\` was chosen (it is a directory whose contents changed); nothing that changed was overwritten, and the conflict stands: choose again`,
      },
    ]);
    expect(readTree(pair.beta)).toEqual({ 'keep.txt': 'k', proj: null, 'proj/a': 'a', 'proj/b': 'beta b', 'proj/c': 'made after the choice' });
    expect((await conflicts(pair.home)).map((c) => c.path)).toEqual(['proj']);
    // Chosen again with proj/c in view: applied.
    expect((await runFerry(pair.home, ['resolve', String(conflict?.id), '--keep', 'alpha'])).status).toBe(0);
    expect((await pair.sync()).status).toBe(0);
    expect(readTree(pair.beta)).toEqual({ 'keep.txt': 'k', proj: 'alpha made proj a file' });
    expect(await conflicts(pair.home)).toEqual([]);
  });

  test('a choice blocked by a link in the losing directory is applied once the link is removed', async () => {
    const { pair, conflict } = await directoryConflict((beta) => symlinkSync('b', join(beta, 'proj/link')));
    expect((await runFerry(pair.home, ['resolve', String(conflict?.id), '--keep', 'alpha'])).status).toBe(0);
    expect((await pair.sync()).status).toBe(3);
    const [blocked] = await conflicts(pair.home);
    expect(blocked?.reason).toMatch(/cannot be removed from beta: .*remove them there and sync again/);
    expect(lstatSync(join(pair.beta, 'proj/link')).isSymbolicLink()).toBe(true);
    // Done as it says: the choice is applied, not dropped.
    unlinkSync(join(pair.beta, 'proj/link'));
    const r = await pair.sync();
    expect(r.stdout + r.stderr).not.toMatch(/choose again/);
    expect(r.status).toBe(0);
    expect(readTree(pair.beta)).toEqual({ 'keep.txt': 'k', proj: 'alpha made proj a file' });
    expect(await conflicts(pair.home)).toEqual([]);
  });

  test('resolve --keep both on a directory keeps alpha at the path and beta beside it', async () => {
    const { pair, conflict } = await directoryConflict();
    expect((await runFerry(pair.home, ['resolve', String(conflict?.id), '--keep', 'both'])).status).toBe(0);
    const r = await pair.sync();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const tree = readTree(pair.alpha);
    expect(tree).toEqual(readTree(pair.beta));
    expect(tree.proj).toBe('alpha made proj a file');
    const aside = Object.keys(tree).find((p) => /^proj \(conflict beta \d{4}-\d\d-\d\d \d{6}\)$/.test(p));
    expect(aside).toBeDefined();
    expect(tree[`${aside}/a`]).toBe('a');
    expect(tree[`${aside}/b`]).toBe('beta b');
  });

  test('resolve --keep both keeps alpha at the path and beta beside it on both sides', async () => {
    const pair = makePair({ 'notes.md': 'base' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'notes.md'), 'alpha notes');
    writeFileSync(join(pair.beta, 'notes.md'), 'beta notes');
    expect((await pair.sync()).status).toBe(3);
    const [conflict] = await conflicts(pair.home);
    expect((await runFerry(pair.home, ['resolve', String(conflict?.id), '--keep', 'both'])).status).toBe(0);
    const r = await pair.sync();
    expect(r.status).toBe(0);
    const alpha = readTree(pair.alpha);
    expect(alpha).toEqual(readTree(pair.beta));
    expect(alpha['notes.md']).toBe('alpha notes');
    const copies = Object.keys(alpha).filter((p) => /^notes \(conflict beta \d{4}-\d\d-\d\d \d{6}\)\.md$/.test(p));
    expect(copies).toHaveLength(1);
    expect(alpha[copies[0] ?? '']).toBe('beta notes');
  });

  test('the exec bit is never copied and setuid never survives', async () => {
    const pair = makePair({ 'tool.sh': '#!/bin/sh\necho hi\n', 'replace.sh': 'v1' });
    chmodSync(join(pair.alpha, 'tool.sh'), 0o4755);
    expect((await pair.sync()).status).toBe(0);
    const copied = statSync(join(pair.beta, 'tool.sh')).mode & 0o7777;
    expect(copied & 0o111).toBe(0);
    expect(copied & 0o7000).toBe(0);

    // A replaced file keeps its own bits without setuid; content from beta clears exec on alpha.
    chmodSync(join(pair.alpha, 'replace.sh'), 0o4755);
    writeFileSync(join(pair.beta, 'replace.sh'), 'v2 from beta');
    chmodSync(join(pair.beta, 'replace.sh'), 0o777);
    const r = await pair.sync();
    expect(r.status).toBe(0);
    const replaced = statSync(join(pair.alpha, 'replace.sh')).mode & 0o7777;
    expect(readFileSync(join(pair.alpha, 'replace.sh'), 'utf8')).toBe('v2 from beta');
    expect(replaced & 0o7000).toBe(0);
    expect(replaced & 0o111).toBe(0);
    expect(r.stdout).toMatch(/cleared exec bits/);

    // A change of mode alone is not a change.
    chmodSync(join(pair.beta, 'tool.sh'), 0o700);
    const modeOnly = await pair.sync('--json');
    expect(modeOnly.status).toBe(0);
    expect((JSON.parse(modeOnly.stdout) as { copied: object }).copied).toEqual({ alpha: 0, beta: 0 });
  });

  test('symlinks and fifos are reported, never followed, never created', async () => {
    const pair = makePair({ 'real.txt': 'r', 'secretdir/s': 'secret' });
    const outside = join(pair.home, '..', 'outside.txt');
    writeFileSync(outside, 'outside the root');
    symlinkSync(outside, join(pair.alpha, 'link-out'));
    symlinkSync('secretdir', join(pair.alpha, 'link-dir'));
    execFileSync('mkfifo', [join(pair.alpha, 'pipe')]);
    const r = await pair.sync('--json');
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout) as { unsupported: { path: string; side: string; reason: string }[] };
    expect(summary.unsupported).toEqual(
      expect.arrayContaining([
        { path: 'link-out', side: 'alpha', reason: 'symlink' },
        { path: 'link-dir', side: 'alpha', reason: 'symlink' },
        { path: 'pipe', side: 'alpha', reason: 'special' },
      ]),
    );
    expect(readTree(pair.beta)).toEqual({ 'real.txt': 'r', secretdir: null, 'secretdir/s': 'secret' });
    const human = await pair.sync();
    expect(human.stdout).toMatch(/skipped link-out: a symbolic link on alpha, not synced/);
    expect(readFileSync(outside, 'utf8')).toBe('outside the root');
  });

  test('a file that changes through every pass is reported as not synced, not left out in silence; calm again, it syncs', async () => {
    const pair = makePair({ 'calm.txt': 'c' });
    const busy = join(pair.beta, 'busy.log');
    writeFileSync(busy, Buffer.alloc(64 << 20, 0x2e));
    // Appends a byte at a time, far faster than 64 MiB can be copied, ahead
    // of the other processes.
    const writer = spawn('nice', ['-n', '-15', 'sh', '-c', `while :; do printf x >> '${busy}'; done`], { stdio: 'ignore' });
    // Each sync either copies a consistent snapshot (a loaded machine may
    // pause the writer) or says it did not: never 'in sync' without it.
    const message = 'busy.log: it kept changing while ferry synced it (3 passes); left as it is on both sides until the next sync';
    let reported = 0;
    try {
      for (let attempt = 0; attempt < 4 && reported < 2; attempt++) {
        const r = await pair.sync('--json');
        const summary = JSON.parse(r.stdout) as { status: string; failures: { path: string; message: string }[]; copied: { alpha: number } };
        if (summary.failures.length > 0) {
          expect(summary.failures).toEqual([{ path: 'busy.log', message }]);
          expect([summary.status, r.status]).toEqual(['error', 1]);
          reported++;
        } else {
          expect([summary.status, r.status, summary.copied.alpha]).toEqual(['in-sync', 0, 1]);
        }
      }
      expect(reported).toBeGreaterThan(0);
      const human = await pair.sync();
      if (human.status === 1) expect(human.stdout).toMatch(/: 1 error; \d+ paths? scanned\nerror: busy\.log: it kept changing while ferry synced it/);
    } finally {
      writer.kill();
    }
    await new Promise((resolve) => writer.once('exit', resolve));
    const again = await pair.sync();
    expect(again.status).toBe(0);
    expect(readFileSync(join(pair.alpha, 'busy.log')).equals(readFileSync(busy))).toBe(true);
  });

  test('a name holding terminal escapes or a line break is shown escaped, never sent to the terminal as it is', async () => {
    const pair = makePair({ 'a.txt': 'a' });
    writeFileSync(join(pair.beta, 'g\u001b[2J\u001b[31mEVIL'), 'x');
    writeFileSync(join(pair.beta, 'two\nlines'), 'x');
    const r = await pair.sync();
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('\u001b');
    expect(r.stdout).toContain('skipped g\\x1b[2J\\x1b[31mEVIL: ');
    expect(r.stdout).toContain('skipped two\\x0alines: ');
    expect(r.stdout.split('\n').filter((line) => line.startsWith('skipped '))).toHaveLength(2);
  });

  test('a vanished root deletes nothing and exits 1 with a clear message', async () => {
    const pair = makePair({ 'a.txt': 'a', 'd/b.txt': 'b' });
    expect((await pair.sync()).status).toBe(0);
    renameSync(pair.alpha, `${pair.alpha}.moved`);
    const r = await pair.sync();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/sync halted: the alpha root .* has vanished since the last sync; nothing was changed/);
    expect(readTree(pair.beta)).toEqual({ 'a.txt': 'a', d: null, 'd/b.txt': 'b' });
  });

  test('a root emptied wholesale halts the session instead of deleting the other side', async () => {
    const pair = makePair({ 'a.txt': 'a', 'd/b.txt': 'b' });
    expect((await pair.sync()).status).toBe(0);
    rmSync(join(pair.alpha, 'a.txt'));
    rmSync(join(pair.alpha, 'd'), { recursive: true });
    const r = await pair.sync();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/sync halted: the alpha root is empty/);
    expect(readTree(pair.beta)).toEqual({ 'a.txt': 'a', d: null, 'd/b.txt': 'b' });
  });

  test('a large file is streamed and arrives intact', async () => {
    const pair = makePair();
    const big = Buffer.alloc(5 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    mkdirSync(join(pair.alpha, 'big'));
    writeFileSync(join(pair.alpha, 'big', 'blob.bin'), big);
    expect((await pair.sync()).status).toBe(0);
    expect(readFileSync(join(pair.beta, 'big', 'blob.bin')).equals(big)).toBe(true);
  });

  // localhost for 127.0.0.1, ~/dir for /home/user/dir: one guest directory
  // under another name would be a session of its own, with no record of
  // what the first synced, and a file deleted since would come back.
  test.skipIf(mode === 'local')('one guest directory under another name is refused, which would not know what was deleted', async () => {
    const pair = makePair({ 'kept.txt': 'k', 'gone.txt': 'g' });
    expect((await pair.sync()).status).toBe(0);
    unlinkSync(join(pair.alpha, 'gone.txt'));
    const before = readTree(pair.beta);
    const server = sshd as Sshd;
    const names = [
      `ssh://ferry-guest@127.0.0.1:${server.port}/~/${relative(server.guestHome, pair.beta)}`,
      `ssh://ferry-guest@localhost:${server.port}${pair.beta}`,
    ];
    for (const name of names) {
      const other = await runFerry(pair.home, ['sync', pair.alpha, name, '--once', '--key', server.clientKey, '--accept-new-host-key'], undefined, env);
      expect(other.stderr).toContain(`beta ${name} is the guest directory already synced with ${pair.alpha} as ${pair.betaArg}`);
      expect(other.stderr).toContain(`run \`ferry sync ${pair.alpha} ${pair.betaArg}\``);
      expect(other.status).toBe(2);
      // Nothing came back, nothing went.
      expect(existsSync(join(pair.alpha, 'gone.txt'))).toBe(false);
      expect(readTree(pair.beta)).toEqual(before);
    }
    // The same refusal in watch mode, before anything is synced, and no pair is made.
    const watching = await runFerry(pair.home, ['sync', pair.alpha, names[0] as string, '--watch', '--key', server.clientKey], undefined, env);
    expect(watching.status).toBe(2);
    expect(watching.stderr).toContain('is the guest directory already synced with');
    expect(readTree(pair.beta)).toEqual(before);
    const sessions = new Database(join(pair.home, 'ferry.db'), { readonly: true });
    expect(sessions.prepare('SELECT beta FROM sessions').all()).toEqual([{ beta: pair.betaArg }]);
    sessions.close();
    // Under its own name the pair goes on, and the deletion goes through.
    expect((await pair.sync()).status).toBe(0);
    expect(existsSync(join(pair.beta, 'gone.txt'))).toBe(false);
    // What was recorded: the server (loopback, its port, its host key), the user, the real path.
    const db = new Database(join(pair.home, 'ferry.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT beta, beta_where AS "where" FROM sessions').all() as { beta: string; where: string }[];
      expect(rows).toEqual([{ beta: pair.betaArg, where: `loopback:${server.port} ${hostKeyFingerprint(server.knownHostsLine)} ferry-guest ${realpathSync(pair.beta)}` }]);
    } finally {
      db.close();
    }
    // Another directory of the same guest is another pair.
    const elsewhere = server.guestDir('elsewhere');
    const third = await runFerry(pair.home, ['sync', pair.alpha, server.url(elsewhere), '--once', '--key', server.clientKey], undefined, env);
    expect(third.stderr).toBe('');
    expect(third.status).toBe(0);
  });

  // A pair synced before ferry recorded where its guest is: a second name
  // cannot be told apart then, but the pair under its first name goes on.
  test.skipIf(mode === 'local')('a pair from before the place was recorded goes on under its name', async () => {
    const pair = makePair({ 'a.txt': 'a' });
    expect((await pair.sync()).status).toBe(0);
    const db = new Database(join(pair.home, 'ferry.db'));
    db.prepare('UPDATE sessions SET beta_where = NULL').run();
    db.close();
    const server = sshd as Sshd;
    const tilde = `ssh://ferry-guest@127.0.0.1:${server.port}/~/${relative(server.guestHome, pair.beta)}`;
    expect((await runFerry(pair.home, ['sync', pair.alpha, tilde, '--once', '--key', server.clientKey], undefined, env)).status).toBe(0);
    const again = await pair.sync();
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
  });
});

describe('one pair, one order', () => {
  test('a pair synced one way round is refused the other way, which would not know what was deleted', async () => {
    const pair = makeLocalOrRemotePair({ 'kept.txt': 'k', 'gone.txt': 'g' });
    expect((await pair.sync()).status).toBe(0);
    unlinkSync(join(pair.alpha, 'gone.txt'));
    const before = readTree(pair.beta);
    const swapped = await runFerry(pair.home, ['sync', pair.beta, pair.alpha, '--once']);
    expect(swapped.status).toBe(2);
    expect(swapped.stderr).toContain('already synced the other way round');
    expect(swapped.stderr).toContain(`ferry sync ${pair.alpha} ${pair.beta}`);
    // Nothing came back, nothing went.
    expect(existsSync(join(pair.alpha, 'gone.txt'))).toBe(false);
    expect(readTree(pair.beta)).toEqual(before);
    expect((await pair.sync()).status).toBe(0);
    expect(existsSync(join(pair.beta, 'gone.txt'))).toBe(false);
  });
});

// A kernel pseudo file system mounted inside a synced tree (a chroot's
// /proc) is never walked or copied: its directory is skipped as special.
describe.skipIf(process.getuid?.() !== 0)('a pseudo file system inside the tree', () => {
  test('a proc mounted below the root is skipped, and the rest syncs', async (context) => {
    const pair = makeLocalOrRemotePair({ 'file.txt': 'real', 'proc/': null, 'etc/hostname': 'chroot' });
    try {
      execFileSync('mount', ['-t', 'proc', 'proc', join(pair.alpha, 'proc')], { stdio: 'pipe' });
    } catch (error) {
      // A container without the right to mount.
      context.skip(`cannot mount proc here: ${(error as Error).message}`);
      return;
    }
    try {
      const r = await pair.sync('--json');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const summary = JSON.parse(r.stdout) as { unsupported: { path: string; side: string; reason: string }[] };
      expect(summary.unsupported).toEqual([{ path: 'proc', side: 'alpha', reason: 'special' }]);
      expect(readTree(pair.beta)).toEqual({ etc: null, 'etc/hostname': 'chroot', 'file.txt': 'real' });
    } finally {
      execFileSync('umount', [join(pair.alpha, 'proc')]);
    }
  });
});
