/**
 * Disk: the few file-system calls an endpoint needs beyond node:fs, with two
 * implementations — the native shims on the host (src/fs/native.ts) and a
 * portable one in plain Node for the guest agent (src/fs/portable-disk.ts).
 * Both list directories into the same records, sorted the same way, with the
 * same digests.
 */

/** RawListing is one directory: names and their fixed-size records. */
export interface RawListing {
  readonly names: string[];
  readonly records: Buffer;
  /** A digest of the whole listing (names, kinds, and the stamp digests of non-directories). */
  readonly digest: number;
  /** False when `digest` matched the expected one and only subdirectories are listed. */
  readonly complete: boolean;
}

/** Disk is how an endpoint lists, renames and makes durable. */
export interface Disk {
  /** scanDir lists and lstats one directory, sorted by name bytes; only its subdirectories when its digest equals `expect`. */
  scanDir(path: string, expect?: number): Promise<RawListing>;
  /**
   * renameNoReplace moves `from` to `to`, failing with EEXIST if `to` exists;
   * returns the stamp digest of `to` after the move where that comes cheap.
   */
  renameNoReplace(from: string, to: string): Promise<number | undefined>;
  /** sync makes durable everything written below root, or at least the files and directories named in `touched`. */
  sync(root: string, touched: readonly string[]): Promise<void>;
  /**
   * copySmall copies a small regular file to a new file `temp` in a worker
   * thread, if the source still has `stamp` and `size`, and returns its
   * xxHash64; fails with code ECHANGED otherwise. Only where it is native.
   */
  copySmall?(src: string, temp: string, size: number, stamp: Uint8Array | null): Promise<string>;
}

/** Record layout: u32 kind, u32 st_mode, f64 size, stamp (5 × u64: dev, ino, size, mtime_ns, ctime_ns), f64 stamp digest. */
export const RECORD_SIZE = 64;
/** STAMP_OFFSET and STAMP_SIZE locate the stamp inside a record. */
export const STAMP_OFFSET = 16;
export const STAMP_SIZE = 40;
/** DIGEST_OFFSET locates the stamp digest (f64) inside a record. */
export const DIGEST_OFFSET = 56;

/** Kinds in records, as native-shims/src/shims.c defines them. */
export const RECORD_KIND = { file: 0, dir: 1, symlink: 2, special: 3, unreadable: 4, badName: 5 } as const;
