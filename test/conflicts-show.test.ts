/**
 * `ferry conflicts show`: metadata of both sides and a unified diff for text,
 * checked against fixtures/conflict-text.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { makePair, runFerry } from './support/cli.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'conflict-text');

describe('ferry conflicts show', () => {
  test('shows both sides and the unified diff of a text conflict', async () => {
    const pair = makePair({ 'list.txt': 'Shopping\n' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'list.txt'), readFileSync(join(fixtures, 'alpha.txt')));
    writeFileSync(join(pair.beta, 'list.txt'), readFileSync(join(fixtures, 'beta.txt')));
    expect((await pair.sync()).status).toBe(3);
    const human = await runFerry(pair.home, ['conflicts', 'show', '1']);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain(readFileSync(join(fixtures, 'expected.diff'), 'utf8').trimEnd());
    expect(human.stdout).toMatch(/alpha: file, 66 B/);
    expect(human.stdout).toMatch(/beta : file, 79 B/);
    const json = await runFerry(pair.home, ['conflicts', 'show', '1', '--json']);
    const shown = JSON.parse(json.stdout) as { path: string; alpha: { size: number }; beta: { size: number }; diff: string };
    expect(shown.path).toBe('list.txt');
    expect([shown.alpha.size, shown.beta.size]).toEqual([66, 79]);
    expect(shown.diff).toContain('+- coffee');
  });

  test('two versions too different to diff in bounded time are said so, at once', async () => {
    // 20,000 lines in two unrelated orders (about 110 KB each): a line diff
    // of them took minutes.
    const lines = Array.from({ length: 20_000 }, (_, i) => `${i + 1}\n`);
    const pair = makePair({ 'numbers.txt': 'base\n' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'numbers.txt'), shuffled(lines, 1).join(''));
    writeFileSync(join(pair.beta, 'numbers.txt'), shuffled(lines, 2).join(''));
    expect((await pair.sync()).status).toBe(3);
    const started = Date.now();
    const human = await runFerry(pair.home, ['conflicts', 'show', '1'], 20_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain('(no diff: too many differences to show (20000 lines on alpha, 20000 on beta); compare the files directly)');
    expect(human.stdout).not.toMatch(/^@@/m);
    const json = await runFerry(pair.home, ['conflicts', 'show', '1', '--json'], 20_000);
    expect((JSON.parse(json.stdout) as { diff: unknown }).diff).toBeNull();
  });

  test('a binary conflict has metadata and no diff', async () => {
    const pair = makePair({ 'blob.bin': 'x' });
    expect((await pair.sync()).status).toBe(0);
    writeFileSync(join(pair.alpha, 'blob.bin'), Buffer.from([0, 1, 2, 3]));
    writeFileSync(join(pair.beta, 'blob.bin'), Buffer.from([0, 9, 9]));
    expect((await pair.sync()).status).toBe(3);
    const r = await runFerry(pair.home, ['conflicts', 'show', '1']);
    expect(r.stdout).toMatch(/no diff: a side is binary/);
    expect(r.stdout).not.toMatch(/^@@/m);
  });
});

// shuffled returns items in an order drawn from seed (a fixed Fisher–Yates shuffle).
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
