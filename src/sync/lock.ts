/**
 * One sync of a session at a time: a lock file under FERRY_HOME/locks holding
 * the owner's pid. A lock whose owner died is taken over.
 */

import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '../core/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SessionLock is a held lock; release it when the sync ends. */
export interface SessionLock {
  release(): void;
}

/** lockSession takes the lock of a session or throws when another live ferry holds it. */
export function lockSession(home: string, session: number): SessionLock {
  const dir = join(home, 'locks');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `session-${session}.lock`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return {
        release() {
          try {
            if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let owner = Number.NaN;
      try {
        owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
      } catch {
        continue;
      }
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new FerryError('ELOCKED', `another ferry (pid ${owner}) is syncing this pair; wait for it to finish or stop it`);
      }
      try {
        unlinkSync(file);
      } catch {
        // raced with another taker
      }
    }
  }
  throw new FerryError('ELOCKED', `unable to take the lock ${file}; remove it if no ferry is running`);
}
