/**
 * A sync session for engine tests: two fresh local directories (alpha made
 * of a tree, beta empty), a store in a fresh FERRY_HOME, and their session.
 */

import { type SessionRecord, Store } from '../../src/state/store.js';
import { type Tree, makePair } from './cli.js';

/** SessionPair is what withSession hands its body. */
export interface SessionPair {
  readonly alpha: string;
  readonly beta: string;
  readonly store: Store;
  readonly session: SessionRecord;
}

/** withSession runs `body` on a fresh pair and its session, closing the store after. */
export async function withSession(alphaTree: Tree, body: (pair: SessionPair) => Promise<void>): Promise<void> {
  const { alpha, beta, home } = makePair(alphaTree);
  const store = Store.open(home);
  try {
    const session = store.session(alpha, beta, true);
    if (session === undefined) throw new Error('no session');
    await body({ alpha, beta, store, session });
  } finally {
    store.close();
  }
}
