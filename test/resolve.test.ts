/**
 * A resolution against what happens around it, through the engine on real
 * directories: a choice made, and the losing directory written to, while a
 * pass is already walking towards it. The CLI scenarios are in sync.test.ts.
 */

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import type { Listing } from '../src/core/endpoint.js';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk } from '../src/fs/native.js';
import { Store } from '../src/state/store.js';
import { syncSession } from '../src/sync/session.js';
import { tempDir, writeTree } from './support/cli.js';

/** A local beta that runs `meanwhile` once, when the walk first lists `at`. */
class Interrupted extends LocalEndpoint {
  constructor(
    root: string,
    private readonly at: string,
    private meanwhile: (() => void) | undefined,
  ) {
    super('beta', root, nativeDisk());
  }

  override list(path: string, expect?: number): Promise<Listing> {
    if (path === this.at && this.meanwhile !== undefined) {
      const run = this.meanwhile;
      this.meanwhile = undefined;
      run();
    }
    return super.list(path, expect);
  }
}

test('a file written into the losing directory after the choice, while a pass is under way, is never removed', async () => {
  const top = tempDir('ferry-resolve-');
  const alpha = join(top, 'alpha');
  const beta = join(top, 'beta');
  writeTree(alpha, { 'keep.txt': 'k', 'proj/a': 'a' });
  mkdirSync(beta);
  const store = Store.open(join(top, 'home'));
  try {
    const session = store.session(alpha, beta, true);
    if (session === undefined) throw new Error('no session');
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
  } finally {
    store.close();
  }
});
