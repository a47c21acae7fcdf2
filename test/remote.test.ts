/**
 * The remote endpoint against the real agent bundle, run as a local child
 * process (the SSH transport is tested in test/ssh.test.ts).
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk } from '../src/fs/native.js';
import { Store } from '../src/state/store.js';
import { syncSession } from '../src/sync/session.js';
import { RemoteEndpoint } from '../src/transport/remote.js';
import { childChannel, spawnAgent } from './support/agent.js';
import { readTree, tempDir, writeTree } from './support/cli.js';

async function withRemote<T>(betaRoot: string, fn: (beta: RemoteEndpoint) => Promise<T>): Promise<T> {
  const child = spawnAgent();
  const beta = new RemoteEndpoint('beta', `agent:${betaRoot}`, childChannel(child), betaRoot);
  try {
    await beta.start();
    return await fn(beta);
  } finally {
    await beta.close();
    child.kill();
  }
}

describe('remote endpoint over the agent', () => {
  test('syncs both ways, with conflicts, large files and removals', async () => {
    const top = tempDir('ferry-remote-');
    const alpha = join(top, 'alpha');
    const betaRoot = join(top, 'beta');
    mkdirSync(alpha);
    mkdirSync(betaRoot);
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 7);
    writeTree(alpha, { 'a.txt': 'a', 'd/e/f.txt': 'deep', 'gone/x': 'x' });
    writeFileSync(join(alpha, 'big.bin'), big);
    writeTree(betaRoot, { 'b.txt': 'b' });
    const store = Store.open(join(top, 'home'));
    try {
      const session = store.session(alpha, betaRoot, true);
      if (session === undefined) throw new Error('no session');
      const run = () => withRemote(betaRoot, (beta) => syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta }));
      const first = await run();
      expect(first.failures).toEqual([]);
      expect(readTree(betaRoot)).toEqual(readTree(alpha));
      expect(readFileSync(join(betaRoot, 'big.bin')).equals(big)).toBe(true);

      writeFileSync(join(betaRoot, 'd/e/f.txt'), 'changed on beta');
      writeFileSync(join(alpha, 'a.txt'), 'alpha edit');
      writeFileSync(join(betaRoot, 'a.txt'), 'beta edit');
      writeTree(alpha, { 'new/y': 'y' });
      const { rmSync } = await import('node:fs');
      rmSync(join(alpha, 'gone'), { recursive: true });
      const second = await run();
      expect(second.failures).toEqual([]);
      expect(second.conflicts.map((c) => c.path)).toEqual(['a.txt']);
      expect(readFileSync(join(alpha, 'd/e/f.txt'), 'utf8')).toBe('changed on beta');
      expect(readFileSync(join(betaRoot, 'new/y'), 'utf8')).toBe('y');
      expect(readTree(betaRoot).gone).toBeUndefined();
      expect(readFileSync(join(betaRoot, 'a.txt'), 'utf8')).toBe('beta edit');

      const third = await run();
      expect(third.copied).toEqual({ alpha: 0, beta: 0 });
    } finally {
      store.close();
    }
  });
});
