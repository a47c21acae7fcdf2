/**
 * The portable Disk (plain Node, for the guest agent) must list exactly as
 * the native shims do: same names, order, records and digests; and the
 * engine must sync through it.
 */

import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { DIGEST_OFFSET, RECORD_SIZE } from '../src/fs/disk.js';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk } from '../src/fs/native.js';
import { portableDisk } from '../src/fs/portable-disk.js';
import { stampDigest, stampOf } from '../src/fs/stamp.js';
import { type SessionRecord, Store } from '../src/state/store.js';
import { type EarlyCheck, checkEarly, syncSession } from '../src/sync/session.js';
import { readTree, tempDir, writeTree } from './support/cli.js';
import { withSession } from './support/session.js';

function sampleDir(): string {
  const dir = tempDir('ferry-disk-');
  writeTree(dir, { 'b.txt': 'bee', 'a.txt': 'a', 'sub/x': 'x', 'ünïcode ☃.txt': 'snow', 'a-b': 'dash', 'a.b/': null, '.hidden': 'h' });
  symlinkSync('/etc/passwd', join(dir, 'link'));
  execFileSync('mkfifo', [join(dir, 'pipe')]);
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]), 'invalid utf-8 name');
  chmodSync(join(dir, 'a.txt'), 0o4755);
  return dir;
}

describe('portable disk', () => {
  test('lists exactly as the native shims: names, order, records, digest', async () => {
    const dir = sampleDir();
    const native = await nativeDisk().open(dir).scanDir('');
    const portable = await portableDisk.open(dir).scanDir('');
    expect(portable.names).toEqual(native.names);
    expect(portable.names.length).toBe(10);
    expect(portable.records.length).toBe(native.names.length * RECORD_SIZE);
    expect(portable.records.equals(native.records)).toBe(true);
    expect(portable.digest).toBe(native.digest);
    expect(portable.complete).toBe(true);
  });

  test('an unchanged listing returns only subdirectories, and any change shows', async () => {
    const dir = sampleDir();
    const portableTree = portableDisk.open(dir);
    const nativeTree = nativeDisk().open(dir);
    const first = await portableTree.scanDir('');
    const again = await portableTree.scanDir('', first.digest);
    const nativeAgain = await nativeTree.scanDir('', first.digest);
    expect(again.complete).toBe(false);
    expect(again.names).toEqual(['a.b', 'sub']);
    expect(nativeAgain.names).toEqual(again.names);
    writeFileSync(join(dir, 'b.txt'), 'changed');
    const changed = await portableTree.scanDir('', first.digest);
    expect(changed.complete).toBe(true);
    expect(changed.digest).not.toBe(first.digest);
    expect(changed.digest).toBe((await nativeTree.scanDir('')).digest);
    expect(portableTree.stat('b.txt')).toEqual(nativeTree.stat('b.txt'));
    expect(portableTree.stat('link')?.kind).toBe('symlink');
    expect(nativeTree.stat('link')?.kind).toBe('symlink');
    expect(nativeTree.stat('pipe')?.kind).toBe('special');
    nativeTree.close();
    const records = changed.records;
    for (let i = 0; i < changed.names.length; i++) expect(Number.isInteger(records.readDoubleLE(i * RECORD_SIZE + DIGEST_OFFSET))).toBe(true);
  });

  test('renameNoReplace never replaces, for files and directories', async () => {
    const dir = tempDir('ferry-disk-');
    writeTree(dir, { from: 'new', to: 'old', 'dfrom/x': 'x', 'dto/': null });
    const tree = portableDisk.open(dir);
    await expect(tree.renameNoReplace('from', 'to')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(tree.renameNoReplace('dfrom', 'dto')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(join(dir, 'to'), 'utf8')).toBe('old');
    await tree.renameNoReplace('from', 'fresh');
    await tree.renameNoReplace('dfrom', 'dfresh');
    expect(readTree(dir)).toEqual({ dfresh: null, 'dfresh/x': 'x', dto: null, fresh: 'new', to: 'old' });
  });

  test('native renameNoReplace refuses to replace and returns the stamp digest of the moved file', async () => {
    const dir = tempDir('ferry-disk-');
    writeTree(dir, { from: 'new', to: 'old' });
    const tree = nativeDisk().open(dir);
    await expect(tree.renameNoReplace('from', 'to')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(join(dir, 'to'), 'utf8')).toBe('old');
    const digest = await tree.renameNoReplace('from', 'fresh');
    tree.close();
    expect(digest).toBe(stampDigest(stampOf(lstatSync(join(dir, 'fresh'), { bigint: true }))));
  });

  test('the engine syncs both ways with beta on the portable disk', async () => {
    const top = tempDir('ferry-disk-');
    const alpha = join(top, 'alpha');
    const beta = join(top, 'beta');
    mkdirSync(alpha);
    mkdirSync(beta);
    writeTree(alpha, { 'a.txt': 'a', 'd/e/f.txt': 'deep' });
    writeTree(beta, { 'b.txt': 'b' });
    const store = Store.open(join(top, 'home'));
    try {
      const session = store.session(alpha, beta, true);
      if (session === undefined) throw new Error('no session');
      const run = () => syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta: new LocalEndpoint('beta', beta, portableDisk) });
      const first = await run();
      expect(first.failures).toEqual([]);
      expect(readTree(beta)).toEqual(readTree(alpha));
      writeFileSync(join(beta, 'd/e/f.txt'), 'changed on beta');
      writeTree(alpha, { 'new/x': 'x' });
      const second = await run();
      expect(second.copied).toEqual({ alpha: 1, beta: 1 });
      expect(readTree(alpha)).toEqual(readTree(beta));
      expect(readFileSync(join(alpha, 'd/e/f.txt'), 'utf8')).toBe('changed on beta');
    } finally {
      store.close();
    }
  });
});

describe('native copy', () => {
  test('xxh64 in the shims equals xxhash-wasm for every length class', async () => {
    const { hashBytes, initHash } = await import('../src/fs/hash.js');
    const { createRequire } = await import('node:module');
    await initHash();
    const shims = createRequire(import.meta.url)('../native-shims/build/Release/ferry_shims.node') as { xxh64(b: Buffer): string };
    for (const n of [0, 1, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 1000, 4096, 65537, 1 << 20]) {
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i++) data[i] = (i * 2654435761 + n) >>> 24;
      expect(shims.xxh64(data)).toBe(hashBytes(data));
    }
  });

  test('copySmall copies, hashes, and refuses a source that changed since its scan', async () => {
    const dir = tempDir('ferry-copy-');
    writeTree(dir, { 'src.txt': 'hello world' });
    const tree = nativeDisk().open(dir);
    if (tree.copySmall === undefined) throw new Error('the native tree has no copySmall');
    const copySmall = tree.copySmall.bind(tree);
    const copy = (src: string, temp: string, size: number, stamp: Uint8Array | null) => copySmall(tree, src, temp, size, stamp) ?? Promise.reject(new Error('no copy'));
    const { stampOf } = await import('../src/fs/stamp.js');
    const { lstatSync } = await import('node:fs');
    const stamp = stampOf(lstatSync(join(dir, 'src.txt'), { bigint: true }));
    const hash = await copy('src.txt', 'out.tmp', 11, stamp);
    expect(readFileSync(join(dir, 'out.tmp'), 'utf8')).toBe('hello world');
    const { hashBytes } = await import('../src/fs/hash.js');
    expect(hash).toBe(hashBytes(Buffer.from('hello world')));
    writeFileSync(join(dir, 'src.txt'), 'hello WORLD');
    await expect(copy('src.txt', 'out2.tmp', 11, stamp)).rejects.toMatchObject({ code: 'ECHANGED' });
    await expect(copy('src.txt', 'out.tmp', 11, null)).rejects.toMatchObject({ code: 'EEXIST' });
    symlinkSync(join(dir, 'src.txt'), join(dir, 'link'));
    await expect(copy('link', 'out3.tmp', 11, null)).rejects.toMatchObject({ code: 'ECHANGED' });
  });
});

describe('batched native calls', () => {
  test('many copies and renames at once: each gets its own outcome, in the right place', async () => {
    const dir = tempDir('ferry-batch-');
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}`] = `content ${i} `.repeat(i % 50);
    writeTree(dir, files);
    const tree = nativeDisk().open(dir);
    const { hashBytes, initHash } = await import('../src/fs/hash.js');
    await initHash();
    const stampAt = (path: string) => stampOf(lstatSync(join(dir, path), { bigint: true }));
    // Every 10th source changes after its stamp is taken; every 25th is gone.
    const stamps = Object.keys(files).map((path) => stampAt(path));
    Object.keys(files).forEach((path, i) => {
      if (i % 25 === 0) execFileSync('rm', [join(dir, path)]);
      else if (i % 10 === 0) writeFileSync(join(dir, path), `${files[path]!}changed`);
    });
    const copies = Object.keys(files).map((path, i) => tree.copySmall?.(tree, path, `${path}.tmp`, Buffer.byteLength(files[path]!), stamps[i]!));
    const outcomes = await Promise.allSettled(copies.map((copy) => copy ?? Promise.reject(new Error('no copy'))));
    Object.keys(files).forEach((path, i) => {
      const outcome = outcomes[i]!;
      if (i % 25 === 0 || i % 10 === 0) {
        expect(outcome.status, path).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'ECHANGED' });
      } else {
        expect(outcome, path).toEqual({ status: 'fulfilled', value: hashBytes(Buffer.from(files[path]!)) });
        expect(readFileSync(join(dir, `${path}.tmp`), 'utf8')).toBe(files[path]);
      }
    });
    // Renames: one target is taken, so that one alone fails with EEXIST.
    const good = Object.keys(files).filter((_, i) => i % 25 !== 0 && i % 10 !== 0);
    writeFileSync(join(dir, `${good[7]!}.new`), 'taken');
    const renames = await Promise.allSettled(good.map((path) => tree.renameNoReplace(`${path}.tmp`, `${path}.new`)));
    good.forEach((path, i) => {
      if (i === 7) {
        expect(renames[i]).toMatchObject({ status: 'rejected', reason: { code: 'EEXIST' } });
        expect(readFileSync(join(dir, `${path}.new`), 'utf8')).toBe('taken');
      } else {
        expect(renames[i]).toEqual({ status: 'fulfilled', value: stampDigest(stampAt(`${path}.new`)) });
        expect(readFileSync(join(dir, `${path}.new`), 'utf8')).toBe(files[path]);
      }
    });
    tree.close();
  });
});

describe('committing new files together', () => {
  for (const [name, disk] of [
    ['native', nativeDisk()],
    ['portable', portableDisk],
  ] as const) {
    test(`${name}: every staged file gets its own outcome, and a failed one leaves no temporary`, async () => {
      const dir = tempDir('ferry-commit-');
      writeTree(dir, { 'd/': null, 'gone/': null });
      const side = new LocalEndpoint('beta', dir, disk);
      await side.prepare();
      const paths = Array.from({ length: 40 }, (_, i) => (i === 13 ? 'gone/x' : `d/f${i}`));
      const staged = await Promise.all(
        paths.map((path) =>
          side.stage(path, Readable.from([Buffer.from(`content of ${path}`)]), Buffer.byteLength(`content of ${path}`)),
        ),
      );
      // Meanwhile one name is taken and one directory is replaced by a file.
      writeFileSync(join(dir, 'd/f7'), 'written by someone else');
      execFileSync('rm', ['-r', join(dir, 'gone')]);
      writeFileSync(join(dir, 'gone'), 'a file now');
      const results = await (side.commitNew?.(staged) ?? Promise.reject(new Error('no commitNew')));
      expect(results).toHaveLength(paths.length);
      paths.forEach((path, i) => {
        const result = results[i];
        if (path === 'd/f7') {
          expect(result).toMatchObject({ code: 'ECHANGED' });
          expect((result as Error).message).toContain('created meanwhile');
          expect(readFileSync(join(dir, path), 'utf8')).toBe('written by someone else');
        } else if (path === 'gone/x') {
          expect(result).toBeInstanceOf(Error);
        } else {
          expect(result, path).toEqual({ digest: stampDigest(stampOf(lstatSync(join(dir, path), { bigint: true }))), strippedExec: false });
          expect(readFileSync(join(dir, path), 'utf8')).toBe(`content of ${path}`);
        }
      });
      // Nothing staged is left behind: the failed files' temporaries are gone too.
      expect(Object.keys(readTree(dir)).filter((p) => p.includes('.ferry-tmp-'))).toEqual([]);
      await side.close();
    });
  }
});

describe('reading many files at once', () => {
  test('readMany gives the good files back to back with their hashes, and an error for each changed one', async () => {
    const dir = tempDir('ferry-readmany-');
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`d${i % 3}/f${i}`] = `file ${i} `.repeat(i);
    writeTree(dir, files);
    const side = new LocalEndpoint('alpha', dir, nativeDisk());
    await side.prepare();
    const { hashBytes, initHash } = await import('../src/fs/hash.js');
    await initHash();
    const paths = Object.keys(files);
    const entries = paths.map((path) => {
      const st = lstatSync(join(dir, path), { bigint: true });
      return { path, entry: { kind: 'file' as const, size: Number(st.size), hash: '', stamp: stampOf(st) } };
    });
    // Every 7th changes after its scan (same size, new content), every 11th is gone.
    paths.forEach((path, i) => {
      if (i % 11 === 0) execFileSync('rm', [join(dir, path)]);
      else if (i % 7 === 0) writeFileSync(join(dir, path), (files[path] as string).toUpperCase());
    });
    const read = await (side.readMany(entries) ?? Promise.reject(new Error('no readMany on a native tree')));
    let expected = Buffer.alloc(0);
    paths.forEach((path, i) => {
      const hash = read.hashes[i];
      if (i % 11 === 0 || i % 7 === 0) {
        expect(hash, path).toBeInstanceOf(Error);
        expect((hash as Error & { code?: string }).code, path).toBe('ECHANGED');
      } else {
        const content = Buffer.from(files[path] as string);
        expect(hash, path).toBe(hashBytes(content));
        expected = Buffer.concat([expected, content]);
      }
    });
    expect(Buffer.from(read.data).equals(expected)).toBe(true);
    await side.close();
  });
});

describe('reading a file that is written to meanwhile', () => {
  test.for([
    ['native', nativeDisk()],
    ['portable', portableDisk],
  ] as const)('on the %s disk, a write in place during the read ends it with "changed", after the bytes', async ([, disk]) => {
    const dir = tempDir('ferry-readwrite-');
    writeFileSync(join(dir, 'db'), Buffer.alloc(4 << 20, 1));
    const side = new LocalEndpoint('beta', dir, disk);
    await side.prepare();
    const st = lstatSync(join(dir, 'db'), { bigint: true });
    const entry = { kind: 'file' as const, size: Number(st.size), hash: '', stamp: stampOf(st) };
    let received = 0;
    const reading = (async () => {
      for await (const chunk of side.read('db', entry)) {
        // After the first chunk, a writer changes a page in place.
        if (received === 0) {
          const fd = openSync(join(dir, 'db'), 'r+');
          writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 3 << 20);
          closeSync(fd);
        }
        received += chunk.length;
      }
    })();
    await expect(reading).rejects.toThrow(/db changed during the sync \(modified while it was read\)/);
    expect(received).toBe(4 << 20);
    // Untouched, the same read ends whole.
    const again = lstatSync(join(dir, 'db'), { bigint: true });
    let whole = 0;
    for await (const chunk of side.read('db', { ...entry, stamp: stampOf(again) })) whole += chunk.length;
    expect(whole).toBe(4 << 20);
    await side.close();
  });
});

describe('temporaries in flight', () => {
  test("a listing by another endpoint of this process leaves this one's staged file alone", async () => {
    const dir = tempDir('ferry-inflight-');
    writeTree(dir, { 'd/old.txt': 'old' });
    // Two grants of one daemon, over the same host directory.
    const writer = new LocalEndpoint('alpha', dir, nativeDisk());
    const lister = new LocalEndpoint('alpha', dir, nativeDisk());
    await writer.prepare();
    await lister.prepare();
    const staged = await writer.stage('d/new.txt', Readable.from([Buffer.from('new')]), 3);
    const listing = await lister.list('d');
    expect(listing.items.map((item) => item.path)).toEqual(['d/old.txt']);
    await lister.sweep();
    await writer.commit(staged, undefined, { stripExec: false });
    expect(readTree(dir)).toEqual({ d: null, 'd/old.txt': 'old', 'd/new.txt': 'new' });
    // Once put in place, a leftover of this process under a temporary name is stale again.
    writeFileSync(join(dir, 'd', `.ferry-tmp-${process.pid}-zzzz`), 'left over');
    await lister.list('d');
    expect(readTree(dir)).toEqual({ d: null, 'd/old.txt': 'old', 'd/new.txt': 'new' });
    await writer.close();
    await lister.close();
  });
});

describe('a sync that fails between staging and putting in place', () => {
  // A real local side whose durability barrier fails (a disk gone bad).
  class FailingBarrier extends LocalEndpoint {
    override barrier(): Promise<void> {
      return Promise.reject(new Error('the disk failed the barrier'));
    }
  }

  test('leaves no staged file behind, in the batch that failed or the one staged meanwhile', async () => {
    const files: Record<string, string> = {};
    // More than one batch (1,024 copies), so a second is staged while the first fails.
    for (let i = 0; i < 1500; i++) files[`d${i % 10}/f${i}`] = `file ${i}\n`;
    await withSession(files, async ({ alpha, beta, store, session }) => {
      const run = syncSession({ store, session, alpha: new LocalEndpoint('alpha', alpha, nativeDisk()), beta: new FailingBarrier('beta', beta, nativeDisk()) });
      await expect(run).rejects.toThrow('the disk failed the barrier');
      const left = Object.keys(readTree(beta)).filter((path) => path.includes('.ferry-tmp-'));
      expect(left).toEqual([]);
    });
  });
});

describe('subtrees found unchanged', () => {
  test('unchangedDirs judges each directory by its own listing, as scanDir digests it, on both disks', async () => {
    const dir = tempDir('ferry-disk-');
    const files: Record<string, string | null> = { 'p/q/r': 'r', 'p/s': 's', 'gone/x': 'x', 'flip/': null, 'same/': null };
    for (let i = 0; i < 40; i++) files[`many/m${i}/f`] = `f${i}`;
    writeTree(dir, files);
    const dirs = ['p', 'p/q', 'gone', 'flip', 'same', ...Array.from({ length: 40 }, (_, i) => `many/m${i}`)];
    for (const disk of [nativeDisk(), portableDisk]) {
      const tree = disk.open(dir);
      const digests = await Promise.all(dirs.map(async (d) => (await tree.scanDir(d)).digest));
      expect(await tree.unchangedDirs(dirs, digests)).toEqual(dirs.map(() => true));
      tree.close();
    }
    const before = await nativeDisk().open(dir).scanDir('p/q');
    const digests = await Promise.all(dirs.map(async (d) => (await nativeDisk().open(dir).scanDir(d)).digest));
    writeFileSync(join(dir, 'p/q/r'), 'changed');
    execFileSync('rm', ['-r', join(dir, 'gone')]);
    execFileSync('rm', ['-r', join(dir, 'flip')]);
    symlinkSync('/tmp', join(dir, 'flip'));
    for (let i = 0; i < 40; i += 3) writeFileSync(join(dir, `many/m${i}/new`), 'new');
    const expected = [true, false, false, false, true, ...Array.from({ length: 40 }, (_, i) => i % 3 !== 0)];
    for (const disk of [nativeDisk(), portableDisk]) {
      const tree = disk.open(dir);
      expect(await tree.unchangedDirs(dirs, digests)).toEqual(expected);
      tree.close();
    }
    expect(before.digest).toBe(digests[1]);
  });

  // Under vitest this module is TypeScript, which a worker thread cannot
  // load (the check above falls back to one thread): the helper thread is
  // tried on the built module, in a node of its own.
  test('the helper thread of the built portable disk answers each check it is sent', async () => {
    const dir = tempDir('ferry-disk-');
    writeTree(dir, { 'a/f': 'a', 'b/f': 'b', 'c/f': 'c' });
    const paths = ['a', 'b', 'c', 'gone'].map((d) => join(dir, d));
    const tree = portableDisk.open(dir);
    const expects = await Promise.all(['a', 'b', 'c'].map(async (d) => (await tree.scanDir(d)).digest));
    writeFileSync(join(dir, 'b/f'), 'changed');
    const built = new URL('../dist/fs/portable-disk.js', import.meta.url).href;
    const script = `const { checkInHelper } = await import(${JSON.stringify(built)});
const task = ${JSON.stringify({ paths, expects: [...expects, 0] })};
const answers = await Promise.all([checkInHelper(task), checkInHelper({ paths: task.paths.slice(0, 1), expects: task.expects.slice(0, 1) })]);
process.stdout.write(JSON.stringify(answers));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out)).toEqual([[true, false, true, false], [true]]);
  });

  test('the portable disk answers in order for a check large enough to split', async () => {
    const dir = tempDir('ferry-disk-');
    const files: Record<string, string> = {};
    for (let i = 0; i < 260; i++) files[`d${i}/f`] = `f${i}`;
    writeTree(dir, files);
    const dirs = Object.keys(files).map((path) => path.slice(0, -2));
    const tree = portableDisk.open(dir);
    const digests = await Promise.all(dirs.map(async (d) => (await tree.scanDir(d)).digest));
    for (const i of [3, 200, 259]) writeFileSync(join(dir, `d${i}/f`), 'changed');
    const same = await tree.unchangedDirs(dirs, digests);
    expect(same.map((s, i) => (s ? -1 : i)).filter((i) => i >= 0)).toEqual([3, 200, 259]);
  });

  // A real local side that notes which directories the walk listed.
  class Listed extends LocalEndpoint {
    readonly listed: string[] = [];
    override list(path: string, expect?: number) {
      this.listed.push(path);
      return super.list(path, expect);
    }
  }

  // Ten subtrees t0..t9 (t/g, t/u/v/f) in alpha and an empty beta, a store and their session.
  const withTenTrees = async (fn: (store: Store, session: SessionRecord, alpha: string, beta: string) => Promise<void>) => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 10; i++) Object.assign(files, { [`t${i}/g`]: `g${i}`, [`t${i}/u/v/f`]: `f${i}` });
    await withSession(files, ({ store, session, alpha, beta }) => fn(store, session, alpha, beta));
  };

  // Syncs a pair once on Listed sides (alpha's side of the check started
  // early by `early`, if given): the summary and the directories each side listed.
  const listedSync = async (store: Store, session: SessionRecord, alpha: string, beta: string, early?: (alpha: LocalEndpoint) => EarlyCheck | undefined) => {
    const sides = { alpha: new Listed('alpha', alpha, nativeDisk()), beta: new Listed('beta', beta, nativeDisk()) };
    const summary = await syncSession({ store, session, ...sides, early: early?.(sides.alpha) });
    await Promise.all([sides.alpha.close(), sides.beta.close()]);
    return { summary, alpha: [...new Set(sides.alpha.listed)].sort(), beta: [...new Set(sides.beta.listed)].sort() };
  };

  test('a full pass lists only the directories at or above a change, and still finds every change', () =>
    withTenTrees(async (store, session, alpha, beta) => {
      const run = () => listedSync(store, session, alpha, beta);
      await run(); // copies everything
      const recording = await run(); // in agreement: listings recorded
      expect(recording.alpha.length).toBe(31);
      // Nothing changed anywhere: not even the root is listed.
      const quiet = await run();
      expect(quiet.alpha).toEqual([]);
      expect(quiet.beta).toEqual([]);
      expect(quiet.summary.scanned).toBe(30);

      writeFileSync(join(beta, 't3/u/v/f'), 'changed on beta');
      writeFileSync(join(alpha, 't7/g'), 'changed on alpha');
      writeTree(beta, { 't5/u/new/n': 'new on beta' });
      writeFileSync(join(alpha, 't9/u/v/f'), 'alpha');
      writeFileSync(join(beta, 't9/u/v/f'), 'beta');
      const changed = await run();
      expect(changed.alpha).toEqual(['', 't3', 't3/u', 't3/u/v', 't5', 't5/u', 't7', 't9', 't9/u', 't9/u/v']);
      expect(changed.beta).toEqual(['', 't3', 't3/u', 't3/u/v', 't5', 't5/u', 't5/u/new', 't7', 't9', 't9/u', 't9/u/v']);
      expect(changed.summary.copied).toEqual({ alpha: 2, beta: 1 });
      expect(store.openConflicts(session.id).map((c) => c.path)).toEqual(['t9/u/v/f']);
      expect(readFileSync(join(alpha, 't3/u/v/f'), 'utf8')).toBe('changed on beta');
      expect(readFileSync(join(beta, 't7/g'), 'utf8')).toBe('changed on alpha');
      expect(readFileSync(join(alpha, 't5/u/new/n'), 'utf8')).toBe('new on beta');

      // The conflict's directories are listed on every pass until it is resolved.
      await run();
      const later = await run();
      expect(later.alpha).toEqual(['', 't9', 't9/u', 't9/u/v']);
      expect(store.openConflicts(session.id).map((c) => c.path)).toEqual(['t9/u/v/f']);
    }));

  test('a change, a conflict or a choice at the root is found though every directory below is unchanged', () =>
    withTenTrees(async (store, session, alpha, beta) => {
      const run = () => listedSync(store, session, alpha, beta);
      writeTree(alpha, { 'top.txt': 'top' });
      await run();
      await run(); // listings recorded
      expect((await run()).alpha).toEqual([]);

      writeFileSync(join(beta, 'top.txt'), 'changed on beta');
      const changed = await run();
      expect(changed.alpha).toEqual(['']);
      expect(changed.summary.copied).toEqual({ alpha: 1, beta: 0 });
      expect(readFileSync(join(alpha, 'top.txt'), 'utf8')).toBe('changed on beta');

      await run(); // listings recorded again
      expect((await run()).alpha).toEqual([]);
      // An open conflict keeps the root walked, though everything lists as recorded.
      store.recordConflict(session.id, 'top.txt', 'changed on both sides', undefined, undefined, undefined);
      expect((await run()).alpha).toEqual(['']);
      writeFileSync(join(alpha, 'top.txt'), 'alpha');
      writeFileSync(join(beta, 'top.txt'), 'beta');
      await run();
      const [conflict] = store.openConflicts(session.id);
      expect(conflict?.path).toBe('top.txt');
      // Open, it keeps the root listed on every pass, the two sides as they were.
      expect((await run()).alpha).toEqual(['']);
      store.setConflictState(conflict?.id ?? 0, 'pending', 'beta');
      const chosen = await run();
      expect(chosen.summary.copied).toEqual({ alpha: 1, beta: 0 });
      expect(readFileSync(join(alpha, 'top.txt'), 'utf8')).toBe('beta');
      expect(store.openConflicts(session.id)).toEqual([]);
    }));

  // `ferry sync` to a guest starts alpha's side of the check while it connects.
  test("an early check of alpha's listings stands for the first pass's, and only while the listings are still those it checked", () =>
    withTenTrees(async (store, session, alpha, beta) => {
      const run = (early?: (a: LocalEndpoint) => EarlyCheck | undefined) => listedSync(store, session, alpha, beta, early);
      await run();
      await run(); // listings recorded
      expect(checkEarly(store, session.id, new LocalEndpoint('alpha', alpha, nativeDisk()))?.recorded).toHaveLength(31);
      // A root that cannot be opened is left to the pass to meet.
      expect(checkEarly(store, session.id, new LocalEndpoint('alpha', join(alpha, 'gone'), nativeDisk()))).toBeUndefined();

      // Checked, then changed: the pass takes the tree as the check found it.
      const quietAlpha = new LocalEndpoint('alpha', alpha, nativeDisk());
      const early = checkEarly(store, session.id, quietAlpha);
      expect(await early?.same).toEqual(Array(31).fill(true));
      writeFileSync(join(alpha, 't7/g'), 'changed after the check');
      const trusted = await run(() => early);
      expect(trusted.alpha).toEqual([]);
      expect(trusted.summary.copied).toEqual({ alpha: 0, beta: 0 });
      const next = await run();
      expect(next.summary.copied).toEqual({ alpha: 0, beta: 1 });
      expect(readFileSync(join(beta, 't7/g'), 'utf8')).toBe('changed after the check');

      // Checked, then the listings changed (another sync ran): the check is not used.
      await run(); // listings recorded again
      const stale = checkEarly(store, session.id, quietAlpha);
      writeFileSync(join(beta, 't3/u/v/f'), 'changed on beta');
      expect((await run()).summary.copied).toEqual({ alpha: 1, beta: 0 });
      writeFileSync(join(alpha, 't1/g'), 'changed on alpha');
      const notTrusted = await run(() => stale);
      expect(notTrusted.alpha).toContain('t1');
      expect(notTrusted.summary.copied).toEqual({ alpha: 0, beta: 1 });
      expect(readFileSync(join(beta, 't1/g'), 'utf8')).toBe('changed on alpha');
    }));
});
