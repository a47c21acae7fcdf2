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
