/**
 * Loads ferry's native shims (native-shims/, built by node-gyp at install)
 * and decodes their directory records.
 */

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { FerryError } from '../core/errors.js';

/** RawListing is one directory as the native scanner returns it. */
export interface RawListing {
  readonly names: string[];
  readonly records: Buffer;
  readonly digest: number;
  readonly complete: boolean;
}

interface Shims {
  scanDir(path: string, expect?: number): Promise<RawListing>;
  syncfs(path: string): Promise<void>;
  renameNoReplace(from: string, to: string): void;
  readonly RECORD_SIZE: number;
}

/** Native kinds, as native-shims/src/shims.c defines them. */
export const NATIVE_KIND = { file: 0, dir: 1, symlink: 2, special: 3, unreadable: 4, badName: 5 } as const;

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = join(here, '..', '..', 'native-shims', 'build', 'Release', 'ferry_shims.node');

function load(): Shims {
  try {
    return createRequire(import.meta.url)(addonPath) as Shims;
  } catch (error) {
    throw new FerryError(
      'ENATIVE',
      `ferry's native shims are not built (${addonPath}): run \`npm install\` (or \`npm rebuild\`) in the ferry checkout; it needs python3, make and a C compiler`,
      { cause: error },
    );
  }
}

/** shims is the loaded native addon. */
export const shims: Shims = load();

/** RECORD_SIZE is the size of one record in RawListing.records. */
export const RECORD_SIZE = shims.RECORD_SIZE;
/** STAMP_OFFSET and STAMP_SIZE locate the stamp inside a record. */
export const STAMP_OFFSET = 16;
export const STAMP_SIZE = 40;
/** DIGEST_OFFSET locates the stamp digest (f64) inside a record. */
export const DIGEST_OFFSET = 56;
