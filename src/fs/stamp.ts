/**
 * Stamps: a file's identity for the hash cache and compare-and-swap,
 * (dev, ino, size, mtime_ns, ctime_ns) as five little-endian u64 in 40 bytes.
 */

import type { BigIntStats } from 'node:fs';
import { STAMP_SIZE } from './native.js';

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
