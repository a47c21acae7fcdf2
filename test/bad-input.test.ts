/**
 * Bad input on the command line: a clear message, exit 2, nothing touched.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { makePair, readTree, runFerry } from './support/cli.js';

describe('bad input', () => {
  test.for([
    { what: 'a missing alpha', args: (a: string, b: string) => ['sync', join(a, 'nope'), b], message: /alpha .*nope: no such directory/ },
    { what: 'a missing beta', args: (a: string, b: string) => ['sync', a, join(b, 'nope')], message: /beta .*nope: no such directory/ },
    { what: 'a file where a directory is needed', args: (a: string, b: string) => ['sync', join(a, 'file.txt'), b], message: /file\.txt: not a directory/ },
    { what: 'the same directory twice', args: (a: string) => ['sync', a, a], message: /the same directory/ },
    { what: 'beta inside alpha', args: (a: string) => ['sync', a, join(a, 'sub')], message: /beta .* is inside alpha/ },
    { what: 'alpha inside beta', args: (_a: string, b: string) => ['sync', join(b, 'inner'), b], message: /alpha .* is inside beta/ },
    { what: 'one root only', args: (a: string) => ['sync', a], message: /usage: ferry sync/ },
    { what: 'a root on /proc', args: (_a: string, b: string) => ['sync', '/proc/sys/kernel', b], message: /alpha \/proc\/sys\/kernel: lies on proc, the kernel's view of the running system/ },
    { what: 'a root on /sys', args: (a: string) => ['sync', a, '/sys/kernel'], message: /beta \/sys\/kernel: lies on sysfs/ },
    { what: 'an unknown option', args: (a: string, b: string) => ['sync', a, b, '--frobnicate'], message: /frobnicate/ },
    { what: 'an unknown command', args: () => ['synchronise'], message: /unknown command/ },
    { what: 'an unknown conflict id', args: () => ['conflicts', 'show', '999'], message: /no conflict with id 999/ },
    { what: 'a conflict id that is not a number', args: () => ['resolve', 'abc', '--keep', 'alpha'], message: /not a conflict id/ },
    { what: 'resolve of an unknown id', args: () => ['resolve', '42', '--keep', 'beta'], message: /no conflict with id 42/ },
    { what: 'resolve without --keep', args: () => ['resolve', '1'], message: /no conflict with id 1|--keep/ },
  ])('$what: exit 2, a clear message, nothing touched', async ({ args, message }) => {
    const pair = makePair({ 'file.txt': 'f', 'sub/x': 'x' }, { 'inner/y': 'y' });
    const before = { alpha: readTree(pair.alpha), beta: readTree(pair.beta) };
    const r = await runFerry(pair.home, args(pair.alpha, pair.beta));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^ferry: /);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    expect({ alpha: readTree(pair.alpha), beta: readTree(pair.beta) }).toEqual(before);
  });

  test('a FERRY_HOME that cannot hold the state is one clear line, not a stack trace', async () => {
    const pair = makePair({ 'a.txt': 'a' });
    const file = join(pair.home, '..', 'not-a-dir');
    writeFileSync(file, 'a file where the state should go');
    for (const args of [['sync', pair.alpha, pair.beta], ['conflicts']]) {
      const r = await runFerry(file, args);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^ferry: unable to open ferry's state in .*not-a-dir: .*; ferry keeps its state in FERRY_HOME \(by default ~\/\.local\/state\/ferry\), which must be a directory it can write\n$/);
    }
    expect(readTree(pair.beta)).toEqual({});
  });

  test('resolve --keep with a bad side names the choices', async () => {
    const pair = makePair({ 'c.txt': 'base' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'c.txt'), 'a');
    writeFileSync(join(pair.beta, 'c.txt'), 'b');
    expect((await pair.sync()).status).toBe(3);
    const r = await runFerry(pair.home, ['resolve', '1', '--keep', 'mine']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/choose alpha, beta, host, guest or both/);
  });

  test('--help tells the truth about what exists', async () => {
    const home = join(makePair().home);
    mkdirSync(home, { recursive: true });
    const r = await runFerry(home, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ferry sync <alpha> <beta>/);
    expect(r.stdout).toMatch(/--watch keeps syncing/);
    expect(r.stdout).toMatch(/ferry grant VM HOSTPATH/);
    expect(r.stdout).toMatch(/Not yet available: run/);
    expect(r.stdout).toMatch(/ssh:\/\/\[user@\]host\[:port\]\/path/);
    const both = await runFerry(home, ['sync', '/tmp', '/var', '--watch', '--once']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--once and --watch exclude each other/);
    const verify = await runFerry(home, ['sync', '/tmp', '/var', '--watch', '--verify-every', 'soon']);
    expect(verify.status).toBe(2);
    expect(verify.stderr).toMatch(/--verify-every "soon": give a duration/);
  });
});

describe('ferry demo', () => {
  test('runs the main job on a built-in example and exits 0', async () => {
    const home = makePair().home;
    const r = await runFerry(home, ['demo']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/skipped passwords: a symbolic link on alpha, not synced/);
    expect(r.stdout).toMatch(/conflict \d+: todo\.txt: contents changed on both sides/);
    expect(r.stdout).toMatch(/resolved conflict \d+: todo\.txt \(kept both\)/);
  });
});
