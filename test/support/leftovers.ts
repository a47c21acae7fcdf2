/**
 * vitest's global setup: when the whole run ends, removes the per-file
 * directories (cleanup.ts) of test files that never ran their own teardown,
 * as one that failed to load: those are empty, and made during this run.
 */

import { readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const started = Date.now();
  return () => {
    if (process.env.FERRY_KEEP_TEST_FILES === '1') return;
    const top = tmpdir();
    for (const name of readdirSync(top)) {
      if (!name.startsWith('ferry-run-')) continue;
      const dir = join(top, name);
      try {
        // Another run's, or one with something in it, stays.
        if (statSync(dir).mtimeMs >= started) rmdirSync(dir);
      } catch {
        // Not empty, or gone already.
      }
    }
  };
}
