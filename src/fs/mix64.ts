/**
 * 64-bit mixing in 32-bit halves (no BigInt: this runs once per listed
 * entry in the guest agent). Computes exactly what native-shims/src/shims.c
 * computes with uint64_t: splitmix64's finaliser, FNV-1a, and the digests
 * built from them.
 */

/** U64 is a 64-bit value as [high, low] unsigned 32-bit halves. */
export type U64 = [number, number];

/** mul64 returns a × b mod 2^64. */
export function mul64(ah: number, al: number, bh: number, bl: number): U64 {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  const hi = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  return [hi, lo];
}

function shr(hi: number, lo: number, n: number): U64 {
  return [hi >>> n, ((lo >>> n) | (hi << (32 - n))) >>> 0];
}

/** mix64 is splitmix64's finaliser. */
export function mix64(hi: number, lo: number): U64 {
  let [sh, sl] = shr(hi, lo, 30);
  [hi, lo] = mul64((hi ^ sh) >>> 0, (lo ^ sl) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  [sh, sl] = shr(hi, lo, 27);
  [hi, lo] = mul64((hi ^ sh) >>> 0, (lo ^ sl) >>> 0, 0x94d049bb, 0x133111eb);
  [sh, sl] = shr(hi, lo, 31);
  return [(hi ^ sh) >>> 0, (lo ^ sl) >>> 0];
}

/** SEED is 0x9E3779B97F4A7C15, the start of every chain. */
export const SEED: U64 = [0x9e3779b9, 0x7f4a7c15];

/** chain returns mix64(h ^ w). */
export function chain(h: U64, whi: number, wlo: number): U64 {
  return mix64((h[0] ^ whi) >>> 0, (h[1] ^ wlo) >>> 0);
}

/** top52 returns the top 52 bits of h as a number. */
export function top52(h: U64): number {
  return h[0] * 0x100000 + (h[1] >>> 12);
}

/** fnv1a64 hashes bytes (FNV-1a, 64-bit). */
export function fnv1a64(bytes: Uint8Array): U64 {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (const byte of bytes) {
    [hi, lo] = mul64(hi, (lo ^ byte) >>> 0, 0x00000100, 0x000001b3);
  }
  return [hi, lo];
}

/** splitNumber splits a non-negative integer below 2^53 into halves. */
export function splitNumber(n: number): U64 {
  return [Math.floor(n / 0x100000000) >>> 0, n >>> 0];
}
