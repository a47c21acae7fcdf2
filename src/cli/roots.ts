/**
 * Checking the two roots given to `ferry sync` before anything is touched.
 */

import { realpathSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { SessionHalt, UsageError } from '../core/errors.js';
import { onPseudoFileSystem } from '../fs/pseudo.js';

/**
 * checkRoot resolves a root argument to a canonical directory path, or throws
 * UsageError. A root that ferry has synced before and that is gone now is not
 * a typo but a vanished root: SessionHalt (exit 1).
 */
export function checkRoot(arg: string, side: 'alpha' | 'beta', knownRoot: (path: string) => boolean): string {
  if (arg === '') throw new UsageError(`the ${side} path is empty`);
  const abs = resolve(arg);
  let st;
  try {
    st = statSync(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && knownRoot(abs)) {
      throw new SessionHalt(`the ${side} root ${abs} has vanished since the last sync; nothing was changed on either side. Restore it (or mount its disk) and sync again`);
    }
    if (code === 'ENOENT') throw new UsageError(`${side} ${arg}: no such directory; create it first (ferry syncs into existing directories)`);
    throw new UsageError(`${side} ${arg}: cannot be used (${(error as Error).message})`);
  }
  if (!st.isDirectory()) throw new UsageError(`${side} ${arg}: not a directory; ferry sync takes two directories`);
  const real = realpathSync(abs);
  const pseudo = onPseudoFileSystem(real);
  if (pseudo !== undefined) throw new UsageError(`${side} ${arg}: ${pseudo}, not files ferry can sync`);
  return real;
}

/** checkPair rejects the same directory twice and one root inside the other. */
export function checkPair(alpha: string, beta: string): void {
  if (alpha === beta) throw new UsageError(`alpha and beta are the same directory (${alpha}); give two different directories`);
  const inside = (a: string, b: string) => a.startsWith(b.endsWith(sep) ? b : b + sep);
  if (inside(alpha, beta)) throw new UsageError(`alpha ${alpha} is inside beta ${beta}; the two roots must not contain each other`);
  if (inside(beta, alpha)) throw new UsageError(`beta ${beta} is inside alpha ${alpha}; the two roots must not contain each other`);
}
