/**
 * Content hashing with xxHash64 (xxhash-wasm). It detects change and
 * corruption; it is not a security boundary and nothing relies on it being one.
 */

import xxhash from 'xxhash-wasm';
import type { Hash } from '../core/entry.js';

type Hasher = Awaited<ReturnType<typeof xxhash>>;

let hasher: Hasher | undefined;

/** initHash loads the wasm hasher; call once before hashing. */
export async function initHash(): Promise<void> {
  hasher ??= await xxhash();
}

function api(): Hasher {
  if (hasher === undefined) throw new Error('initHash() was not awaited');
  return hasher;
}

/** hex formats a 64-bit hash as 16 hex digits. */
function hex(h: bigint): Hash {
  return h.toString(16).padStart(16, '0');
}

/** hashBytes hashes one buffer. */
export function hashBytes(data: Uint8Array): Hash {
  return hex(api().h64Raw(data));
}

/** StreamHasher hashes content that arrives in chunks. */
export class StreamHasher {
  private readonly state = api().create64();
  private bytes = 0;

  /** update adds a chunk. */
  update(chunk: Uint8Array): void {
    this.state.update(chunk);
    this.bytes += chunk.length;
  }

  /** size is the number of bytes hashed so far. */
  get size(): number {
    return this.bytes;
  }

  /** digest returns the hash of everything added. */
  digest(): Hash {
    return hex(this.state.digest());
  }
}
