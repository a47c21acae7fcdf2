/**
 * Each test file works in a temporary directory of its own (TMPDIR, so every
 * `tempDir` and server directory lands in it), removed with the guest
 * directories its servers made when the file ends: a run of the tests
 * leaves nothing behind. FERRY_KEEP_TEST_FILES=1 keeps them and says where.
 */

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { removeGuestDirs } from './sshd.js';

const before = process.env.TMPDIR;
const root = mkdtempSync(join(tmpdir(), 'ferry-run-'));
// The guest's sshd reads authorized_keys below it as the guest.
chmodSync(root, 0o755);
process.env.TMPDIR = root;

afterAll(() => {
  if (before === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = before;
  if (process.env.FERRY_KEEP_TEST_FILES === '1') {
    process.stderr.write(`test files kept in ${root} and the guests' ferry-tests directories\n`);
    return;
  }
  removeGuestDirs();
  rmSync(root, { recursive: true, force: true, maxRetries: 3 });
});
