/**
 * The remote endpoint against the real agent bundle, run as a local child
 * process (the SSH transport is tested in test/ssh.test.ts).
 */

import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk, shimsPath } from '../src/fs/native.js';
import { Store } from '../src/state/store.js';
import { syncSession } from '../src/sync/session.js';
import { peerOf } from '../src/transport/ssh.js';
import type { WatchHint } from '../src/core/endpoint.js';
import { bindingPath, hostPlatform } from '../src/fs/watcher-binding.js';
import { AGENT_MAGIC, PROTOCOL_VERSION, encodeJson } from '../src/protocol/frame.js';
import { type Channel, RemoteEndpoint } from '../src/transport/remote.js';
import { AGENT_BUNDLE, childChannel, spawnAgent } from './support/agent.js';
import { makePair, readTree, tempDir, writeTree } from './support/cli.js';

async function withRemote<T>(betaRoot: string, fn: (beta: RemoteEndpoint) => Promise<T>, env: Readonly<Record<string, string>> = {}): Promise<T> {
  const child = spawnAgent(undefined, [], env);
  const beta = new RemoteEndpoint('beta', `agent:${betaRoot}`, childChannel(child), betaRoot);
  try {
    await beta.start();
    return await fn(beta);
  } finally {
    await beta.close();
    child.kill();
  }
}

// The agent on plain Node (no FERRY_SHIMS: a guest of another platform),
// on the native shims the host uploads to a guest of its own platform, and
// given shims it cannot load (it falls back to plain Node).
const disks = [
  { name: 'portable', env: {} },
  { name: 'native', env: { FERRY_SHIMS: shimsPath() } },
  { name: 'portable', env: { FERRY_SHIMS: AGENT_BUNDLE } },
] as const;

describe.each(disks)('remote endpoint over the agent, disk $name, env $env', ({ name, env }) => {
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
      const run = () =>
        withRemote(
          betaRoot,
          (beta) => {
            expect(beta.agent?.disk).toBe(name);
            return syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta });
          },
          env,
        );
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

  // Enough directories for the agent to check half of them in a worker thread (where the guest has 2 cores).
  test('a synced tree of 300 directories: changes in any of them come through the one-request check', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`d${String(i).padStart(3, '0')}/f`] = `file ${i}`;
    const { alpha, beta: betaRoot, home } = makePair(files);
    const store = Store.open(home);
    try {
      const session = store.session(alpha, betaRoot, true);
      if (session === undefined) throw new Error('no session');
      const run = () => withRemote(betaRoot, (beta) => syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta }), env);
      await run();
      await run(); // records the listings
      expect(store.listingCount(session.id)).toBe(301);
      const quiet = await run();
      expect(quiet.scanned).toBe(300);
      expect(quiet.copied).toEqual({ alpha: 0, beta: 0 });
      // One change in each half of the directories, on the guest.
      writeFileSync(join(betaRoot, 'd010/f'), 'changed early');
      writeFileSync(join(betaRoot, 'd290/f'), 'changed late');
      const changed = await run();
      expect(changed.copied).toEqual({ alpha: 2, beta: 0 });
      expect(readFileSync(join(alpha, 'd010/f'), 'utf8')).toBe('changed early');
      expect(readFileSync(join(alpha, 'd290/f'), 'utf8')).toBe('changed late');
      expect(readTree(alpha)).toEqual(readTree(betaRoot));
    } finally {
      store.close();
    }
  });
});

// A peer that says hello properly and then sends whatever the test gives it.
function scriptedChannel(): { channel: Channel; raw(bytes: Uint8Array): void; send(message: unknown): void } {
  const events = new EventEmitter();
  const channel: Channel = {
    write: () => true,
    once: () => undefined,
    on: (event: string, listener: (...args: never[]) => void) => events.on(event, listener as (...args: unknown[]) => void),
    end: () => events.emit('close'),
  };
  return {
    channel,
    raw: (bytes) => events.emit('data', Buffer.from(bytes)),
    send: (message) => events.emit('data', Buffer.from(encodeJson(message))),
  };
}

test('many large files in flight to the agent wait for one drain of the channel, not one listener each', async () => {
  const top = tempDir('ferry-remote-drain-');
  const alpha = join(top, 'alpha');
  const betaRoot = join(top, 'beta');
  mkdirSync(betaRoot);
  writeTree(alpha, Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`f${i}.bin`, String(i).repeat(3 << 20)])));
  const store = Store.open(join(top, 'home'));
  const child = spawnAgent(undefined, [], { FERRY_SHIMS: shimsPath() });
  // The most drain listeners the agent's stdin ever had at once.
  let most = 0;
  child.stdin.on('newListener', (event) => {
    if (event === 'drain') most = Math.max(most, child.stdin.listenerCount('drain') + 1);
  });
  const beta = new RemoteEndpoint('beta', `agent:${betaRoot}`, childChannel(child), betaRoot);
  try {
    const session = store.session(alpha, betaRoot, true);
    if (session === undefined) throw new Error('no session');
    await beta.start();
    const summary = await syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta });
    expect(summary.failures).toEqual([]);
    expect(summary.copied.beta).toBe(16);
    expect(readTree(betaRoot)).toEqual(readTree(alpha));
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(2);
  } finally {
    await beta.close();
    child.kill();
    store.close();
  }
}, 60_000);

describe('peerOf', () => {
  test('names every loopback address alike, and others by address and port', () => {
    expect(peerOf('127.0.0.1', 22)).toBe('loopback:22');
    expect(peerOf('127.1.2.3', 2222)).toBe('loopback:2222');
    expect(peerOf('::1', 22)).toBe('loopback:22');
    expect(peerOf('::ffff:127.0.0.1', 22)).toBe('loopback:22');
    expect(peerOf('::ffff:10.0.0.7', 22)).toBe('10.0.0.7:22');
    expect(peerOf('192.168.1.20', 22)).toBe('192.168.1.20:22');
    expect(peerOf('fe80::1', 22)).toBe('[fe80::1]:22');
    expect(peerOf('10.0.0.7', 2222)).not.toBe(peerOf('10.0.0.7', 22));
  });
});

describe('watching through the agent', () => {
  test.runIf(process.platform === 'linux')("the host's C library, read from the process's maps, is the one Node's diagnostic report names", () => {
    const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    expect(hostPlatform().libc).toBe(header?.glibcVersionRuntime !== undefined ? 'glibc' : 'musl');
  });

  test('the agent reports the directory of each change and never its own temporaries', async () => {
    const root = tempDir('ferry-remote-watch-');
    writeTree(root, { 'sub/a.txt': 'a' });
    const binding = bindingPath(hostPlatform());
    expect(binding).toBeDefined();
    const child = spawn(process.execPath, [AGENT_BUNDLE], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FERRY_WATCHER: binding } });
    const beta = new RemoteEndpoint('beta', `agent:${root}`, childChannel(child), root);
    const hints: WatchHint[] = [];
    try {
      await beta.start();
      const stop = await beta.watch((hint) => hints.push(hint));
      writeFileSync(join(root, '.ferry-tmp-1-0'), 'a temporary');
      writeFileSync(join(root, 'sub', 'b.txt'), 'b');
      const deadline = Date.now() + 5000;
      while (!hints.some((h) => 'dirs' in h && h.dirs.includes('sub')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(hints.some((h) => 'dirs' in h && h.dirs.includes('sub'))).toBe(true);
      // The temporary in the root names no directory: '' only comes from it.
      expect(hints.some((h) => 'dirs' in h && h.dirs.includes(''))).toBe(false);
      await stop();
    } finally {
      await beta.close();
      child.kill();
    }
  });

  test('an agent without a watcher binding refuses to watch, clearly', async () => {
    const root = tempDir('ferry-remote-watch-');
    const child = spawn(process.execPath, [AGENT_BUNDLE], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FERRY_WATCHER: '' } });
    const beta = new RemoteEndpoint('beta', `agent:${root}`, childChannel(child), root);
    try {
      await beta.start();
      await expect(beta.watch(() => undefined)).rejects.toThrow(/cannot be watched: .*no file watcher for this guest's platform/);
    } finally {
      await beta.close();
      child.kill();
    }
  });

  test.each([
    ['a change notice nobody asked for', { t: 'changed', id: 77, dirs: ['a'] }, /change notice under id 77, which is not an accepted watch/],
    ['a change notice with a path that climbs out', { t: 'changed', id: 1, dirs: ['a/../../etc'] }, /changed dir 0/],
    ['a change notice with too many directories', { t: 'changed', id: 1, dirs: Array.from({ length: 5000 }, (_, i) => `d${i}`) }, /changed dirs is not an array of 1\.\.4096 paths/],
    ['a change notice naming both directories and a rescan', { t: 'changed', id: 1, dirs: ['a'], rescan: 'x' }, /neither or both/],
  ])('%s ends the channel as a violation', async (_name, notice, reason) => {
    const scripted = scriptedChannel();
    const { channel } = scripted;
    const raw = (bytes: Uint8Array) => scripted.raw(bytes);
    const send = (message: unknown) => scripted.send(message);
    const violations: string[] = [];
    const beta = new RemoteEndpoint('beta', 'scripted', channel, '/nowhere', (why) => violations.push(why));
    const started = beta.start();
    raw(AGENT_MAGIC);
    send({ t: 'hello', version: PROTOCOL_VERSION, node: '20.0.0', disk: 'portable' });
    await started;
    const watching = beta.watch(() => undefined);
    send({ t: 'ok', id: 1 });
    await watching;
    send(notice);
    expect(beta.halted?.message).toMatch(reason);
    expect(violations).toHaveLength(1);
    await beta.close();
  });
});
