/**
 * Stamps: a file's identity for the hash cache and compare-and-swap,
 * (dev, ino, size, mtime_ns, ctime_ns) as five little-endian u64 in 40 bytes.
 *
 * Compare-and-swap compares whole stamps. The archive keeps, for each side, a
 * 52-bit digest of the stamp (the same splitmix64 chain the native scanner
 * computes), so that reading the archive makes numbers, not buffers: a file
 * is rehashed whenever its stamp digest differs. A changed file whose new
 * stamp collides with the old digest (chance 2^-52) would be missed until its
 * stamp changes again.
 */

import type { BigIntStats } from 'node:fs';
import { STAMP_SIZE } from './disk.js';
import { SEED, type U64, chain, top52 } from './mix64.js';

/** stampDigest returns the 52-bit digest of a 40-byte stamp, as the native scanner does. */
export function stampDigest(stamp: Uint8Array): number {
  const view = new DataView(stamp.buffer, stamp.byteOffset, stamp.byteLength);
  let h: U64 = SEED;
  for (let i = 0; i < 5; i++) h = chain(h, view.getUint32(8 * i + 4, true), view.getUint32(8 * i, true));
  return top52(h);
}

/** stampOf encodes the stamp of lstat/fstat results taken with { bigint: true }. */
export function stampOf(st: BigIntStats): Buffer {
  const b = Buffer.allocUnsafe(STAMP_SIZE);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.dev), 0);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.ino), 8);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.size), 16);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.mtimeNs), 24);
  b.writeBigUInt64LE(BigInt.asUintN(64, st.ctimeNs), 32);
  return b;
}

/** sameStamp compares two stamps byte for byte. */
export function sameStamp(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  if (a == null || b == null) return false;
  return Buffer.compare(a, b) === 0;
}
