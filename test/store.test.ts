/**
 * The store's intents while batches overlap: a batch is recorded while the
 * walk already announces the next batch's changes, and recording one batch
 * must not forget what the next announced (a crash then would lose it).
 */

import { describe, expect, test } from 'vitest';
import { Store } from '../src/state/store.js';
import { tempDir } from './support/cli.js';

describe('intents of overlapping batches', () => {
  test("recording a batch clears its own intents and keeps the next batch's", () => {
    const store = Store.open(tempDir('ferry-store-'));
    const session = store.session('/a', '/b', true)!.id;
    // Batch 1's walk made a directory; batch 2's walk then removes a file and makes a directory.
    store.putIntent(session, 'beta', 'one', 'mkdir');
    store.putIntent(session, 'beta', 'two/gone.txt', 'remove');
    store.putIntent(session, 'alpha', 'three', 'mkdir');
    // Batch 1's copies are announced as it is put in place.
    store.transaction(() =>
      store.putCopyIntents(
        session,
        Array.from({ length: 70 }, (_, i) => ({ side: 'beta' as const, path: `one/f${i}`, size: i, hash: i.toString(16).padStart(16, '0') })),
      ),
    );
    expect(store.intents(session)).toHaveLength(73);
    expect(store.intents(session).find((i) => i.path === 'one/f69')).toEqual({ side: 'beta', path: 'one/f69', op: 'copy', file: { kind: 'file', size: 69, hash: '0000000000000045' } });
    store.transaction(() => store.clearBatchIntents(session, [{ side: 'beta', path: 'one' }]));
    expect(store.intents(session)).toEqual(
      expect.arrayContaining([
        { side: 'beta', path: 'two/gone.txt', op: 'remove' },
        { side: 'alpha', path: 'three', op: 'mkdir' },
      ]),
    );
    expect(store.intents(session)).toHaveLength(2);
    store.close();
  });
});
