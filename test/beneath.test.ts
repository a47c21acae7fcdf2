/**
 * The native tree: every host-side call of ferry resolves its path with
 * openat2 beneath a pinned root fd (DESIGN rule 6). No path, link, magic
 * link or directory swapped for a link meanwhile takes a read or a write
 * outside the root; a kernel without openat2 is refused at start.
 */

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants as C, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { SessionHalt } from '../src/core/errors.js';
import type { Disk, Tree } from '../src/fs/disk.js';
import { LocalEndpoint } from '../src/fs/local.js';
import { nativeDisk } from '../src/fs/native.js';
import { FERRY_BIN, readTree, tempDir, writeTree } from './support/cli.js';

const NO_OPENAT2 = join(dirname(fileURLToPath(import.meta.url)), 'support', 'no-openat2.py');
const CREATE = C.O_WRONLY | C.O_CREAT | C.O_EXCL;

/** A root to pin, and beside it an `outside` directory that nothing may touch. */
function setup(): { top: string; root: string; outside: string; tree: Tree } {
  const top = tempDir('ferry-beneath-');
  const root = join(top, 'root');
  const outside = join(top, 'outside');
  writeTree(root, { 'a.txt': 'a', 'sub/b.txt': 'b' });
  writeTree(outside, { 'secret.txt': 'outside the root' });
  return { top, root, outside, tree: nativeDisk().open(root) };
}

function errno(call: () => unknown): string | undefined {
  try {
    call();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
  return undefined;
}

describe('a native tree', () => {
  test('refuses every path that would leave the root, for every call', async () => {
    const { top, outside, tree } = setup();
    const before = readTree(top);
    for (const escape of ['../outside/secret.txt', 'sub/../../outside/secret.txt', `${outside}/secret.txt`, '/etc/passwd']) {
      expect(errno(() => tree.open(escape, C.O_RDONLY)), escape).toBe('EXDEV');
      expect(errno(() => tree.stat(escape)), escape).toBe('EXDEV');
      expect(errno(() => tree.open(`${escape}.new`, CREATE, 0o644)), escape).toBe('EXDEV');
      expect(errno(() => tree.unlink(escape)), escape).toBe('EXDEV');
      expect(errno(() => tree.mkdir(`${escape}.d`, 0o755)), escape).toBe('EXDEV');
      expect(errno(() => tree.rename('a.txt', `${escape}.moved`)), escape).toBe('EXDEV');
      expect(errno(() => tree.exchange?.('a.txt', escape)), escape).toBe('EXDEV');
      await expect(tree.renameNoReplace('a.txt', `${escape}.moved`), escape).rejects.toMatchObject({ code: 'EXDEV' });
      await expect(tree.scanDir(dirname(escape)), escape).rejects.toMatchObject({ code: 'EXDEV' });
    }
    expect(readTree(top)).toEqual(before);
    tree.close();
  });

  test('never follows a link, on the way or at the end; a link itself can be listed and removed', async () => {
    const { top, root, outside, tree } = setup();
    symlinkSync(outside, join(root, 'door'));
    symlinkSync(join(outside, 'secret.txt'), join(root, 'secret-link'));
    symlinkSync('/proc/self/root/etc', join(root, 'magic'));
    const outsideBefore = readTree(outside);
    for (const through of ['door/secret.txt', 'magic/passwd']) {
      expect(errno(() => tree.open(through, C.O_RDONLY)), through).toBe('ELOOP');
      expect(errno(() => tree.stat(through)), through).toBe('ELOOP');
      expect(errno(() => tree.open(`${dirname(through)}/planted`, CREATE, 0o644)), through).toBe('ELOOP');
      expect(errno(() => tree.mkdir(`${dirname(through)}/d`, 0o755)), through).toBe('ELOOP');
      expect(errno(() => tree.rename('a.txt', `${dirname(through)}/moved`)), through).toBe('ELOOP');
      expect(errno(() => tree.exchange?.('a.txt', through)), through).toBe('ELOOP');
      expect(errno(() => tree.unlink(through)), through).toBe('ELOOP');
      await expect(tree.scanDir(dirname(through))).rejects.toMatchObject({ code: 'ELOOP' });
    }
    expect(errno(() => tree.open('secret-link', C.O_RDONLY))).toBe('ELOOP');
    expect(errno(() => tree.open('secret-link', C.O_WRONLY | C.O_TRUNC))).toBe('ELOOP');
    expect(tree.stat('secret-link')?.kind).toBe('symlink');
    await expect(tree.copySmall?.(tree, 'secret-link', 'copied', 16, null)).rejects.toMatchObject({ code: 'ECHANGED' });
    tree.unlink('secret-link');
    expect(existsSync(join(root, 'secret-link'))).toBe(false);
    expect(readTree(outside)).toEqual(outsideBefore);
    expect(readdirSync(top).sort()).toEqual(['outside', 'root']);
    tree.close();
  });

  // A directory of the tree swapped for a link to outside, over and over,
  // by another process while this one creates, renames and lists in it.
  test('a directory swapped for a link while files are written into it: nothing lands outside', async () => {
    const { root, outside, tree } = setup();
    const count = join(dirname(root), 'swaps');
    const swapper = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         const [sub, real, target, out] = process.argv.slice(1);
         const end = Date.now() + 2500;
         let n = 0;
         while (Date.now() < end) {
           fs.renameSync(sub, real);
           fs.symlinkSync(target, sub);
           fs.unlinkSync(sub);
           fs.renameSync(real, sub);
           n++;
         }
         fs.writeFileSync(out, String(n));`,
        join(root, 'sub'),
        join(root, 'sub-real'),
        outside,
        count,
      ],
      { stdio: 'inherit' },
    );
    const exited = new Promise((resolve) => swapper.on('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const outcomes = new Map<string, number>();
    const note = (code: string | undefined) => outcomes.set(code ?? 'ok', (outcomes.get(code ?? 'ok') ?? 0) + 1);
    const end = Date.now() + 2000;
    for (let i = 0; Date.now() < end; i++) {
      note(
        errno(() => {
          const fd = tree.open(`sub/f${i}`, CREATE, 0o644);
          writeSync(fd, 'written through the tree');
          closeSync(fd);
        }),
      );
      note(errno(() => tree.rename(`sub/f${i}`, `sub/g${i}`)));
      note(errno(() => tree.mkdir(`sub/d${i}`, 0o755)));
      note(errno(() => tree.stat(`sub/g${i}`)));
    }
    await exited;
    const swaps = Number(readFileSync(count, 'utf8'));
    expect(swaps).toBeGreaterThan(200);
    // The link was met, and refused, many times; writes between swaps went through.
    expect(outcomes.get('ELOOP') ?? 0).toBeGreaterThan(10);
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(10);
    expect(readTree(outside)).toEqual({ 'secret.txt': 'outside the root' });
    tree.close();
  }, 30_000);

  test('the pinned root is kept when its path is taken by another directory; the endpoint halts', async () => {
    const { top, root } = setup();
    const endpoint = new LocalEndpoint('alpha', root, nativeDisk());
    await endpoint.prepare();
    expect((await endpoint.list('')).items.map((i) => i.path)).toEqual(['a.txt', 'sub']);
    renameSync(root, join(top, 'moved-away'));
    mkdirSync(root);
    writeFileSync(join(root, 'impostor.txt'), 'a different directory at the same path');
    await expect(endpoint.prepare()).rejects.toThrow(SessionHalt);
    await expect(endpoint.prepare()).rejects.toThrow(/the alpha root .* was replaced by another directory; nothing was changed/);
    // What the endpoint still holds is the directory it pinned, wherever it went.
    expect((await endpoint.list('')).items.map((i) => i.path)).toEqual(['a.txt', 'sub']);
    await endpoint.close();
  });
});

describe('replacing a file', () => {
  const bytes = (text: string): AsyncIterable<Uint8Array> => Readable.from([Buffer.from(text)]);

  /** A native disk whose first exchange is preceded by `meanwhile` (another writer's timing, made certain). */
  function racingDisk(meanwhile: () => void): Disk {
    let raced = false;
    return {
      open: (root) => {
        const tree = nativeDisk().open(root);
        const exchange = tree.exchange?.bind(tree);
        if (exchange === undefined) throw new Error('the native tree has no exchange');
        tree.exchange = (a, b) => {
          if (!raced) {
            raced = true;
            meanwhile();
          }
          exchange(a, b);
        };
        return tree;
      },
    };
  }

  test('swaps the new content in, in one step, and leaves no temporary', async () => {
    const root = tempDir('ferry-replace-');
    writeTree(root, { 'doc.txt': 'first' });
    const endpoint = new LocalEndpoint('alpha', root, nativeDisk());
    await endpoint.prepare();
    const seen = await endpoint.inspect('doc.txt');
    const staged = await endpoint.stage('doc.txt', bytes('second'), 6);
    await endpoint.commit(staged, seen, { stripExec: false });
    expect(readTree(root)).toEqual({ 'doc.txt': 'second' });
    await endpoint.close();
  });

  test('a write that lands between the check and the swap is swapped back, not lost', async () => {
    const root = tempDir('ferry-replace-');
    writeTree(root, { 'doc.txt': 'first' });
    const endpoint = new LocalEndpoint('alpha', root, racingDisk(() => writeFileSync(join(root, 'doc.txt'), 'edited meanwhile')));
    await endpoint.prepare();
    const seen = await endpoint.inspect('doc.txt');
    const staged = await endpoint.stage('doc.txt', bytes('second'), 6);
    await expect(endpoint.commit(staged, seen, { stripExec: false })).rejects.toThrow(/modified while it was being replaced/);
    expect(readTree(root)).toEqual({ 'doc.txt': 'edited meanwhile' });
    await endpoint.close();
  });
});

describe('a kernel without openat2', () => {
  const python = spawnSync('python3', ['--version']).status === 0;
  test.skipIf(!python)('`ferry sync` and `ferry daemon` refuse to start, and say why', () => {
    const top = tempDir('ferry-no-openat2-');
    writeTree(top, { 'a/x.txt': 'x', 'b/': null });
    const env = { ...process.env, FERRY_HOME: join(top, 'home') };
    const sync = spawnSync('python3', [NO_OPENAT2, process.execPath, FERRY_BIN, 'sync', join(top, 'a'), join(top, 'b'), '--once'], { env, encoding: 'utf8' });
    expect(sync.stderr).toMatch(/this kernel has no openat2\(2\), which ferry needs .*; run ferry on Linux 5\.6 or later/);
    expect(sync.status).toBe(1);
    expect(existsSync(join(top, 'b', 'x.txt'))).toBe(false);
    const daemon = spawnSync('python3', [NO_OPENAT2, process.execPath, FERRY_BIN, 'daemon'], { env, encoding: 'utf8', timeout: 20_000 });
    expect(daemon.stderr).toMatch(/this kernel has no openat2\(2\)/);
    expect(daemon.status).toBe(1);
    // The same commands, without the filter, work.
    const control = spawnSync(process.execPath, [FERRY_BIN, 'sync', join(top, 'a'), join(top, 'b'), '--once'], { env, encoding: 'utf8' });
    expect(control.status, control.stderr).toBe(0);
    expect(readFileSync(join(top, 'b', 'x.txt'), 'utf8')).toBe('x');
  });
});
