/**
 * The native Disk: ferry's N-API shims (native-shims/, built by node-gyp at
 * install): directory scans in worker threads, syncfs(2) as the batched
 * durability barrier, renameat2(RENAME_NOREPLACE).
 */

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { FerryError } from '../core/errors.js';
import { RECORD_SIZE, type Disk, type RawListing } from './disk.js';

interface Shims {
  scanDir(path: string, expect?: number): Promise<RawListing>;
  syncfs(path: string): Promise<void>;
  renameNoReplace(from: string, to: string): number;
  copySmall(src: string, temp: string, size: number, stamp: Uint8Array | null): Promise<string>;
  peerUid(fd: number): number;
  readonly RECORD_SIZE: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = join(here, '..', '..', 'native-shims', 'build', 'Release', 'ferry_shims.node');

let loaded: Disk | undefined;
let addon: Shims | undefined;

function shimsAddon(): Shims {
  if (addon !== undefined) return addon;
  let shims: Shims;
  try {
    shims = createRequire(import.meta.url)(addonPath) as Shims;
  } catch (error) {
    throw new FerryError(
      'ENATIVE',
      `ferry's native shims are not built (${addonPath}): run \`npm install\` (or \`npm rebuild\`) in the ferry checkout; it needs python3, make and a C compiler`,
      { cause: error },
    );
  }
  if (shims.RECORD_SIZE !== RECORD_SIZE || typeof shims.peerUid !== 'function') throw new FerryError('ENATIVE', "ferry's native shims are out of date; run `npm rebuild`");
  addon = shims;
  return shims;
}

/** peerUid returns the uid of the process at the other end of a connected unix socket. */
export function peerUid(fd: number): number {
  return shimsAddon().peerUid(fd);
}

/** nativeDisk loads the shims (once) and returns the Disk they implement. */
export function nativeDisk(): Disk {
  if (loaded !== undefined) return loaded;
  const shims = shimsAddon();
  loaded = {
    scanDir: (path, expect) => shims.scanDir(path, expect),
    renameNoReplace: (from, to) => {
      try {
        const digest = shims.renameNoReplace(from, to);
        return Promise.resolve(digest >= 0 ? digest : undefined);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    },
    sync: (root) => shims.syncfs(root),
    copySmall: (src, temp, size, stamp) => shims.copySmall(src, temp, size, stamp === null ? null : Buffer.from(stamp.buffer, stamp.byteOffset, stamp.byteLength)),
  };
  return loaded;
}
