/**
 * A resolution against what happens around it, through the engine on real
 * directories: a choice made, and the losing directory written to, while a
 * pass is already walking towards it. The CLI scenarios are in sync.test.ts.
 */

import { existsSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import type { Listing } from '../src/core/endpoint.js';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk } from '../src/fs/native.js';
import type { Store } from '../src/state/store.js';
import { type Summary, syncSession } from '../src/sync/session.js';
import { readTree } from './support/cli.js';
import { withSession } from './support/session.js';

/** A local beta that runs `meanwhile` once, when `at` is listed for the time number `nth` (from 1). */
class Interrupted extends LocalEndpoint {
  constructor(
    root: string,
    private readonly at: string,
    private meanwhile: (() => void) | undefined,
    private nth = 1,
  ) {
    super('beta', root, nativeDisk());
  }

  override list(path: string, expect?: number): Promise<Listing> {
    if (path === this.at && this.meanwhile !== undefined && --this.nth === 0) {
      const run = this.meanwhile;
      this.meanwhile = undefined;
      run();
    }
    return super.list(path, expect);
  }
}

test('a file written into the losing directory after the choice, while a pass is under way, is never removed', async () => {
  await withSession({ 'keep.txt': 'k', 'proj/a': 'a' }, async ({ alpha, beta, store, session }) => {
    const run = (meanwhile?: () => void) => syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta: new Interrupted(beta, 'proj', meanwhile) });
    expect((await run()).failures).toEqual([]);
    rmSync(join(alpha, 'proj'), { recursive: true });
    writeFileSync(join(alpha, 'proj'), 'alpha file');
    writeFileSync(join(beta, 'proj/b'), 'beta b');
    expect((await run()).conflicts.map((c) => c.path)).toEqual(['proj']);
    const [conflict] = store.openConflicts(session.id);
    if (conflict === undefined) throw new Error('no conflict');

    // A pass starts with nothing chosen; before its walk reaches proj, the
    // user chooses alpha, and then the guest writes into proj.
    await run(() => {
      store.setConflictState(conflict.id, 'pending', 'alpha');
      writeFileSync(join(beta, 'proj/c'), 'written after the choice');
    });
    const next = await run();
    expect(next.failures.map((f) => f.message)).toEqual([expect.stringMatching(/^proj: beta changed after `ferry resolve \d+ --keep alpha` was chosen \(it is a directory whose contents changed\)/)]);
    expect(readFileSync(join(beta, 'proj/c'), 'utf8')).toBe('written after the choice');
    expect(store.openConflicts(session.id).map((c) => [c.path, c.state])).toEqual([['proj', 'open']]);
  });
});

// The choice is made before the pass; the losing side changes after the
// pass has checked it and before its walk reaches the path.
test.for([
  ['directory', 'proj/c'],
  ['file', 'doc.txt'],
] as const)('a losing %s that changes after the pass checked the choice is not overwritten', async ([kind, written]) => {
  await withSession({ 'keep.txt': 'k', 'proj/a': 'a', 'doc.txt': 'base' }, async ({ alpha, beta, store, session }) => {
    const run = (meanwhile?: () => void) => syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta: new Interrupted(beta, '', meanwhile) });
    expect((await run()).failures).toEqual([]);
    const path = kind === 'directory' ? 'proj' : 'doc.txt';
    if (kind === 'directory') {
      rmSync(join(alpha, 'proj'), { recursive: true });
      writeFileSync(join(alpha, 'proj'), 'alpha file');
      writeFileSync(join(beta, 'proj/b'), 'beta b');
    } else {
      writeFileSync(join(alpha, 'doc.txt'), 'alpha edit');
      writeFileSync(join(beta, 'doc.txt'), 'beta edit');
    }
    expect((await run()).conflicts.map((c) => c.path)).toEqual([path]);
    const [conflict] = store.openConflicts(session.id);
    if (conflict === undefined) throw new Error('no conflict');
    store.setConflictState(conflict.id, 'pending', 'alpha');

    const raced = await run(() => writeFileSync(join(beta, written), 'written while the pass ran'));
    expect(readFileSync(join(beta, written), 'utf8')).toBe('written while the pass ran');
    expect(raced.failures.map((f) => f.message)).toEqual([expect.stringMatching(new RegExp(`^${path.replace('.', '\\.')}: beta changed after \`ferry resolve \\d+ --keep alpha\` was chosen`))]);
    expect(store.openConflicts(session.id).map((c) => [c.path, c.state])).toEqual([[path, 'open']]);
  });
});

interface Chosen {
  readonly alpha: string;
  readonly beta: string;
  readonly store: Store;
  readonly sessionId: number;
  /** A pass, running `meanwhile` at beta's listing number `nth` of the directory given. */
  readonly run: (meanwhile?: () => void) => Promise<Summary>;
  /** Chooses alpha for the open conflict. */
  readonly choose: () => void;
}

// A synced pair where alpha replaced directory `dir` (fifty files in ten
// subdirectories, enough rows that the walk decides `dir` before it lists
// `dir`/d10/deep) by a file and beta added one in it: a conflict on `dir`,
// alpha's version chosen.
async function chosenDirectory(dir: string, extra: Record<string, string>, nth: number, body: (c: Chosen) => Promise<void>): Promise<void> {
  const tree: Record<string, string> = { ...extra, [`${dir}/d10/deep/z`]: 'z' };
  for (let d = 1; d <= 10; d++) for (let f = 1; f <= 5; f++) tree[`${dir}/d${String(d).padStart(2, '0')}/f${f}`] = `${d}.${f}`;
  await withSession(tree, async ({ alpha, beta, store, session }) => {
    const run = (meanwhile?: () => void) => syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta: new Interrupted(beta, `${dir}/d10/deep`, meanwhile, nth) });
    const choose = () => {
      const [conflict] = store.openConflicts(session.id);
      if (conflict === undefined) throw new Error('no conflict');
      store.setConflictState(conflict.id, 'pending', 'alpha');
    };
    expect((await run()).failures).toEqual([]);
    rmSync(join(alpha, dir), { recursive: true });
    writeFileSync(join(alpha, dir), 'alpha file');
    writeFileSync(join(beta, dir, 'b'), 'beta b');
    expect((await run()).conflicts.map((c) => c.path)).toEqual([dir]);
    choose();
    await body({ alpha, beta, store, sessionId: session.id, run, choose });
  });
}

// Each listing of proj/d10/deep in turn: 1 the check at the start of the
// pass, 2 the check as the walk reaches proj (which walks the whole
// directory), 3 the walk's own listing, 4 the removal's. A file written
// into it at any of them is kept, and the conflict stands; choosing again
// then applies.
test.for([1, 2, 3, 4])('a file written below the losing directory at its listing number %i is kept', (nth) =>
  chosenDirectory('proj', { 'proj/a': 'a' }, nth, async ({ beta, store, sessionId, run, choose }) => {
    const raced = await run(() => writeFileSync(join(beta, 'proj/d10/deep/late'), 'written while the pass ran'));
    expect(readFileSync(join(beta, 'proj/d10/deep/late'), 'utf8')).toBe('written while the pass ran');
    expect(raced.failures.map((f) => f.message)).toEqual([
      expect.stringMatching(
        nth === 3
          ? /^proj: beta changed after `ferry resolve \d+ --keep alpha` was chosen \(proj\/d10\/deep\/late is a file of 26 bytes that was not there when the choice was checked\); what the choice removed before that is gone, the rest is left as it is, and the conflict stands: choose again$/
          : /^proj: beta changed after `ferry resolve \d+ --keep alpha` was chosen \(it is a directory whose contents changed\)/,
      ),
    ]);
    // What the choice saw went as chosen only where the walk got to it first.
    expect(existsSync(join(beta, 'proj/d10/deep/z'))).toBe(nth !== 4);
    expect(existsSync(join(beta, 'proj/d01/f1'))).toBe(nth <= 2);
    expect(store.openConflicts(sessionId).map((c) => [c.path, c.state])).toEqual([['proj', 'open']]);

    // The conflict as it is now, chosen again.
    expect((await run()).conflicts.map((c) => c.path)).toEqual(['proj']);
    choose();
    expect((await run()).failures).toEqual([]);
    expect(readFileSync(join(beta, 'proj'), 'utf8')).toBe('alpha file');
    expect(store.openConflicts(sessionId)).toEqual([]);
  }),
);

// A choice waiting below a directory the pass skips (alpha made it a link)
// is not applied there: dropping it must not end the skip, or everything
// after it in that directory would read as deleted on alpha. The guest
// writes below the losing directory at each of its listings in turn.
test.for([1, 2, 3, 4])('a choice below a skipped directory is left alone, and nothing in that directory is removed (write at listing %i)', (nth) =>
  chosenDirectory('A/D', { 'A/y': 'y', 'A/z': 'z' }, nth, async ({ alpha, beta, run }) => {
    renameSync(join(alpha, 'A'), join(alpha, 'A.real'));
    symlinkSync('A.real', join(alpha, 'A'));
    const inA = () => Object.keys(readTree(beta)).filter((path) => path === 'A' || path.startsWith('A/'));
    const before = inA();
    let wrote = false;
    const raced = await run(() => {
      wrote = true;
      writeFileSync(join(beta, 'A/D/d10/deep/late'), 'written while the pass ran');
    });
    expect(raced.removed.beta).toBe(0);
    expect(inA().sort()).toEqual([...before, ...(wrote ? ['A/D/d10/deep/late'] : [])].sort());
  }),
);
