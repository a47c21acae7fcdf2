/**
 * The watch's Settler on a clock the test moves: which changes are held,
 * when a held file goes, and what is forgotten. The watch test drives the
 * same code through the built CLI with real writers. Then the engine with
 * a file held: nothing is done to it, and nothing is concluded from it.
 */

import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk } from '../src/fs/native.js';
import type { SessionRecord, Store } from '../src/state/store.js';
import { type Summary, syncSession } from '../src/sync/session.js';
import { SETTLE_HOT_MS, SETTLE_MAX_MS, SETTLE_QUIET_MS, SETTLE_RETRIES, SETTLE_RETRY_BYTES, SETTLE_RETRY_MS, type Settle, Settler } from '../src/sync/settle.js';
import { readTree } from './support/cli.js';
import { withSession } from './support/session.js';

function clocked(): { settler: Settler; holds: string[]; advance: (ms: number) => void } {
  let now = 1_000_000;
  const holds: string[] = [];
  const settler = new Settler(
    (side, path) => holds.push(`${side}:${path}`),
    () => now,
  );
  return { settler, holds, advance: (ms) => (now += ms) };
}

describe('Settler', () => {
  test('a first change goes at once; a change soon after ferry copied the file is held', () => {
    const { settler, holds, advance } = clocked();
    expect(settler.hold('alpha', 'f', 1)).toBe(false);
    settler.busy('f', 'alpha');
    advance(SETTLE_HOT_MS - 1);
    expect(settler.hold('alpha', 'f', 2)).toBe(true);
    expect(holds).toEqual(['alpha:f']);
    // The same file changed on the other side is not held: only its writer is.
    expect(settler.hold('beta', 'f', 9)).toBe(false);
  });

  test('a change long after the last copy goes at once', () => {
    const { settler, advance } = clocked();
    settler.busy('f', 'alpha');
    advance(SETTLE_HOT_MS);
    expect(settler.hold('alpha', 'f', 2)).toBe(false);
  });

  test('a held file goes once unchanged for the quiet time, and each change restarts it', () => {
    const { settler, advance } = clocked();
    settler.busy('d/f', 'beta');
    expect(settler.hold('beta', 'd/f', 1)).toBe(true);
    advance(SETTLE_QUIET_MS - 1);
    expect(settler.hold('beta', 'd/f', 2)).toBe(true);
    advance(SETTLE_QUIET_MS - 1);
    expect(settler.hold('beta', 'd/f', 2)).toBe(true);
    expect(settler.dueDirs()).toEqual([]);
    advance(1);
    expect(settler.nextDue()).toBeLessThanOrEqual(1_000_000 + 2 * SETTLE_QUIET_MS);
    expect(settler.dueDirs()).toEqual(['d']);
    expect(settler.hold('beta', 'd/f', 2)).toBe(false);
    expect(settler.size).toBe(0);
  });

  test('a file that never stops changing goes after the longest hold', () => {
    const { settler, advance } = clocked();
    settler.busy('log', 'alpha');
    let digest = 1;
    expect(settler.hold('alpha', 'log', digest)).toBe(true);
    let held = 0;
    while (settler.hold('alpha', 'log', ++digest)) {
      held += 100;
      advance(100);
      expect(held).toBeLessThanOrEqual(SETTLE_MAX_MS);
    }
    expect(held).toBe(SETTLE_MAX_MS);
  });

  test('a file whose longest hold ran out and whose try met it changing is tried again soon, a few times, then held long again', () => {
    const { settler, advance } = clocked();
    let digest = 0;
    // How long the file, changing every `step` ms, is held from its next change on.
    const heldFor = (step: number) => {
      expect(settler.hold('alpha', 'log', ++digest)).toBe(true);
      let held = 0;
      while (settler.hold('alpha', 'log', ++digest)) {
        advance(step);
        held += step;
        if (held > SETTLE_MAX_MS) throw new Error('held past the longest hold');
      }
      return held;
    };
    settler.busy('log', 'alpha');
    expect(heldFor(100)).toBe(SETTLE_MAX_MS);
    for (let retry = 1; retry <= SETTLE_RETRIES; retry++) {
      // The try met it changing.
      settler.busy('log');
      expect(heldFor(50)).toBe(SETTLE_RETRY_MS);
    }
    settler.busy('log');
    expect(heldFor(100)).toBe(SETTLE_MAX_MS);
    // A copy that lands ends the quick retries: the next longest hold that runs out starts them afresh.
    settler.busy('log');
    expect(heldFor(50)).toBe(SETTLE_RETRY_MS);
    settler.busy('log', 'alpha');
    expect(heldFor(100)).toBe(SETTLE_MAX_MS);
    settler.busy('log');
    expect(heldFor(50)).toBe(SETTLE_RETRY_MS);
  });

  // Holds `path` (changed on alpha) from a copy of it, and lets it go `ms` later, as changed again then or not.
  const letGo = (settler: Settler, advance: (ms: number) => void, path: string, ms: number, changed: boolean, size = 0): void => {
    settler.busy(path, 'alpha');
    expect(settler.hold('alpha', path, 1, size)).toBe(true);
    advance(ms);
    expect(settler.hold('alpha', path, changed ? 2 : 1, size)).toBe(false);
  };

  // After a try of `path` (changed on alpha) that met it changing: whether it is still held SETTLE_RETRY_MS later.
  const heldPastQuickRetry = (settler: Settler, advance: (ms: number) => void, path: string, size = 0): boolean => {
    settler.busy(path);
    expect(settler.hold('alpha', path, 100, size)).toBe(true);
    advance(SETTLE_RETRY_MS);
    return settler.hold('alpha', path, 101, size);
  };

  test('a first try that meets a file changing is retried soon too, not held for the longest hold', () => {
    const { settler, advance } = clocked();
    expect(heldPastQuickRetry(settler, advance, 'new')).toBe(false);
  });

  test('quick retries spent are followed by the longest hold when the next try meets the file changing too', () => {
    const { settler, advance } = clocked();
    settler.busy('f');
    for (let retry = 1; retry <= SETTLE_RETRIES; retry++) expect(heldPastQuickRetry(settler, advance, 'f')).toBe(false);
    expect(heldPastQuickRetry(settler, advance, 'f')).toBe(true);
  });

  test('quick retries spent long ago (their last try ended otherwise, in a conflict say) start afresh', () => {
    const { settler, advance } = clocked();
    settler.busy('f');
    for (let retry = 1; retry <= SETTLE_RETRIES; retry++) expect(heldPastQuickRetry(settler, advance, 'f')).toBe(false);
    advance(3_600_000);
    expect(heldPastQuickRetry(settler, advance, 'f')).toBe(false);
  });

  test('a file larger than the quick retries allow is held for the longest hold again after a try that met it changing', () => {
    const { settler, advance } = clocked();
    const size = SETTLE_RETRY_BYTES + 1;
    letGo(settler, advance, 'big', SETTLE_MAX_MS, true, size);
    expect(heldPastQuickRetry(settler, advance, 'big', size)).toBe(true);
    advance(SETTLE_MAX_MS - SETTLE_RETRY_MS - 1);
    expect(settler.hold('alpha', 'big', 4, size)).toBe(true);
    advance(1);
    expect(settler.hold('alpha', 'big', 5, size)).toBe(false);
  });

  test('a file held again and again is announced once a minute', () => {
    const { settler, holds, advance } = clocked();
    for (let i = 0; i < 7; i++) {
      settler.busy('log', 'alpha');
      expect(settler.hold('alpha', 'log', i)).toBe(true);
      advance(SETTLE_MAX_MS);
      expect(settler.hold('alpha', 'log', i + 100)).toBe(false);
    }
    expect(holds).toEqual(['alpha:log', 'alpha:log']);
  });

  test('release gives the directories of every held file and holds nothing more', () => {
    const { settler } = clocked();
    for (const path of ['a/x', 'a/y', 'b/z', 'top']) {
      settler.busy(path, 'beta');
      expect(settler.hold('beta', path, 1)).toBe(true);
    }
    expect(settler.release().sort()).toEqual(['', 'a', 'b']);
    expect(settler.size).toBe(0);
    expect(settler.nextDue()).toBeUndefined();
  });

  test('a change met during a copy holds the file on both sides', () => {
    const { settler } = clocked();
    settler.busy('f');
    expect(settler.hold('alpha', 'f', 1)).toBe(true);
    expect(settler.hold('beta', 'f', 1)).toBe(true);
  });

  test('a held file its rescan did not meet (removed, renamed) is forgotten', () => {
    const { settler, advance } = clocked();
    settler.busy('gone', 'alpha');
    expect(settler.hold('alpha', 'gone', 1)).toBe(true);
    advance(SETTLE_QUIET_MS);
    expect(settler.dueDirs()).toEqual(['']);
    // The pass over '' did not list it; the next look forgets it.
    expect(settler.dueDirs()).toEqual([]);
    expect(settler.size).toBe(0);
    expect(settler.nextDue()).toBeUndefined();
  });

  test('recent copies are remembered for the hot time only, and at most 10,000 of them', () => {
    const { settler, advance } = clocked();
    for (let i = 0; i < 10_050; i++) settler.busy(`f${i}`, 'alpha');
    // The oldest were forgotten; the newest are still hot.
    expect(settler.hold('alpha', 'f0', 1)).toBe(false);
    expect(settler.hold('alpha', 'f10049', 1)).toBe(true);
    advance(SETTLE_HOT_MS);
    settler.busy('other', 'alpha');
    expect(settler.hold('alpha', 'f10048', 1)).toBe(false);
  });
});

describe('a pass with a file held', () => {
  // Holds every change to `path`, on either side.
  const holding = (path: string): Settle => ({ hold: (_side, p) => p === path, busy: () => undefined });

  // A session between two fresh local directories, alpha made of `tree`, synced once; `run` syncs it again.
  const synced = async (
    tree: Record<string, string>,
    body: (pair: { alpha: string; beta: string; store: Store; session: SessionRecord; run: (settle?: Settle) => Promise<Summary> }) => Promise<void>,
  ) => {
    await withSession(tree, async ({ alpha, beta, store, session }) => {
      const run = (settle?: Settle) =>
        syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta: new LocalEndpoint('beta', beta, nativeDisk()), ...(settle ? { settle } : {}) });
      expect((await run()).failures).toEqual([]);
      await body({ alpha, beta, store, session, run });
    });
  };

  test('a file met changing while it is hashed is noted as busy, as one met changing while it is copied', async () => {
    await synced({ 'app.log': 'line 1\n' }, async ({ alpha, beta, run }) => {
      appendFileSync(join(alpha, 'app.log'), 'line 2\n');
      const busy: string[] = [];
      let appended = false;
      // The first look at it (after its listing, before its hash) appends once more.
      const summary = await run({
        hold: (_side, path) => {
          if (path === 'app.log' && !appended) {
            appended = true;
            appendFileSync(join(alpha, 'app.log'), 'line 3\n');
          }
          return false;
        },
        busy: (path, side) => busy.push(`${side ?? 'either side'}: ${path}`),
      });
      expect(summary.failures).toEqual([]);
      expect(summary.retried).toBe(1);
      expect(busy).toEqual(['either side: app.log', 'alpha: app.log']);
      expect(readFileSync(join(beta, 'app.log'), 'utf8')).toBe('line 1\nline 2\nline 3\n');
    });
  });

  test('a directory removed on one side while a file in it is held on the other is a conflict, and nothing below it is removed', async () => {
    await synced({ 'keep.txt': 'k', 'D/a.txt': 'a', 'D/sub/c.txt': 'c', 'D/z.log': 'log 1' }, async ({ alpha, beta, run }) => {
      writeFileSync(join(alpha, 'D/z.log'), 'log 2');
      rmSync(join(beta, 'D'), { recursive: true });
      const summary = await run(holding('D/z.log'));
      expect(summary.conflicts.map((c) => c.path)).toEqual(['D']);
      expect(summary.removed).toEqual({ alpha: 0, beta: 0 });
      expect(readTree(alpha)).toEqual({ 'keep.txt': 'k', D: null, 'D/a.txt': 'a', 'D/sub': null, 'D/sub/c.txt': 'c', 'D/z.log': 'log 2' });
    });
  });

  test('leaves the file as it is on both sides, copies the rest, and closes no conflict or resolution on it', async () => {
    await synced({ 'busy.txt': 'base', 'calm.txt': 'calm' }, async ({ alpha, beta, store, session, run }) => {
      // Held while it changes: not copied, while calm.txt's change goes.
      writeFileSync(join(alpha, 'busy.txt'), 'alpha 1');
      writeFileSync(join(alpha, 'calm.txt'), 'calm 2');
      const held = await run(holding('busy.txt'));
      expect(held.held).toBe(1);
      expect(held.copied).toEqual({ alpha: 0, beta: 1 });
      expect(readFileSync(join(beta, 'busy.txt'), 'utf8')).toBe('base');
      expect(readFileSync(join(beta, 'calm.txt'), 'utf8')).toBe('calm 2');

      // A conflict on it, then a resolution chosen: while it is held, neither is concluded.
      writeFileSync(join(beta, 'busy.txt'), 'beta 1');
      expect((await run()).conflicts.map((c) => c.path)).toEqual(['busy.txt']);
      const [conflict] = store.openConflicts(session.id);
      if (conflict === undefined) throw new Error('no conflict');
      await run(holding('busy.txt'));
      expect(store.openConflicts(session.id).map((c) => [c.path, c.state])).toEqual([['busy.txt', 'open']]);
      store.setConflictState(conflict.id, 'pending', 'beta');
      const pending = await run(holding('busy.txt'));
      expect(pending.resolved).toEqual([]);
      expect(store.openConflicts(session.id).map((c) => [c.path, c.state])).toEqual([['busy.txt', 'pending']]);
      expect(readFileSync(join(alpha, 'busy.txt'), 'utf8')).toBe('alpha 1');
      // Once it is no longer held, the resolution is applied.
      expect((await run()).resolved.map((r) => r.path)).toEqual(['busy.txt']);
      expect(readFileSync(join(alpha, 'busy.txt'), 'utf8')).toBe('beta 1');
    });
  });
});
