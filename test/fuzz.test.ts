/**
 * The protocol fuzzer (bench/fuzz.mjs) in CI: 10,000 hostile inputs through
 * the built frame decoder and message checks, with a fresh seed each run
 * (printed, to replay). Zero crashes, zero hangs, no path accepted that
 * climbs out of the root. The million-input run is `node bench/fuzz.mjs`.
 */

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const FUZZ = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'fuzz.mjs');

interface Found {
  inputs: number;
  seed: number;
  crashes: unknown[];
  hangs: unknown[];
  breaches: unknown[];
  accepted: number;
  refused: number;
  framesDecoded: number;
}

test('10,000 fuzzed inputs: no crash, no hang, no path out of the root accepted', () => {
  const seed = Math.floor(Math.random() * 2 ** 32);
  const run = spawnSync(process.execPath, [FUZZ, '--inputs', '10000', '--seed', String(seed), '--json'], { encoding: 'utf8', timeout: 120_000 });
  expect(run.status, `seed ${seed}: ${run.stdout}${run.stderr}`).toBe(0);
  const found = JSON.parse(run.stdout) as Found;
  expect(found).toMatchObject({ inputs: 10000, seed, crashes: [], hangs: [], breaches: [] });
  // The inputs reach the checks: some messages pass, many are refused.
  expect(found.framesDecoded).toBeGreaterThan(5000);
  expect(found.accepted).toBeGreaterThan(100);
  expect(found.refused).toBeGreaterThan(10000);
}, 150_000);
