/**
 * Disk and Tree: every file-system call an endpoint makes, relative to a
 * pinned root, with two implementations — the native shims on the host and
 * in a guest agent of the host's platform (src/fs/native.ts: openat2 beneath
 * a root fd, DESIGN rule 6) and a portable one in plain Node for any other
 * guest agent (src/fs/portable-disk.ts). Both list directories into the same
 * records, sorted the same way, with the same digests.
 */

import { lstatSync } from 'node:fs';

/** RawListing is one directory: names and their fixed-size records. */
export interface RawListing {
  readonly names: string[];
  readonly records: Buffer;
  /** A digest of the whole listing (names, kinds, and the stamp digests of non-directories). */
  readonly digest: number;
  /** False when `digest` matched the expected one and only subdirectories are listed. */
  readonly complete: boolean;
}

/** FileStat is what lstat says of one path, in a record's terms. */
export interface FileStat {
  readonly kind: 'file' | 'dir' | 'symlink' | 'special';
  /** st_mode: type and permission bits. */
  readonly mode: number;
  readonly size: number;
  /** (dev, ino, size, mtime_ns, ctime_ns), STAMP_SIZE bytes. */
  readonly stamp: Buffer;
  /** The 52-bit digest of the stamp. */
  readonly digest: number;
}

/**
 * Tree is a directory tree pinned at its root: every call takes a path
 * relative to the root ('' is the root itself), never follows a link, and
 * never reaches outside the root. Errors carry errno codes (ENOENT, EEXIST,
 * ELOOP for a link met on the way, EXDEV for a path that would leave it).
 */
export interface Tree {
  /** The root's absolute path, for messages and the watcher. */
  readonly root: string;
  /** scanDir lists and lstats one directory, sorted by name bytes; only its subdirectories when its digest equals `expect`. */
  scanDir(dir: string, expect?: number): Promise<RawListing>;
  /**
   * unchangedDirs scans each directory as scanDir does and tells whether its
   * digest still is the one expected (false too where it cannot be listed),
   * keeping nothing else of the listings.
   */
  unchangedDirs(dirs: readonly string[], expects: readonly number[]): Promise<boolean[]>;
  /** stat is lstat of path; undefined when nothing is there. */
  stat(path: string): FileStat | undefined;
  /** open returns a file descriptor for path (O_NOFOLLOW always), to be closed by the caller. */
  open(path: string, flags: number, mode?: number): number;
  mkdir(path: string, mode: number): void;
  rmdir(path: string): void;
  unlink(path: string): void;
  /** rename moves `from` to `to`, replacing a file there. */
  rename(from: string, to: string): void;
  /** exchange swaps two existing names atomically (RENAME_EXCHANGE); only where it is native. */
  exchange?(a: string, b: string): void;
  /**
   * renameNoReplace moves `from` to `to`, failing with EEXIST if `to` exists;
   * returns the stamp digest of `to` after the move where that comes cheap.
   */
  renameNoReplace(from: string, to: string): Promise<number | undefined>;
  /** renameManyNoReplace is renameNoReplace for many independent pairs of files (not directories) at once: a result or an Error for each, in order. */
  renameManyNoReplace(pairs: readonly (readonly [from: string, to: string])[]): Promise<(number | undefined | Error)[]>;
  /** sync makes durable everything written below the root, or at least the files and directories named in `touched`. */
  sync(touched: readonly string[]): Promise<void>;
  /**
   * copySmall copies a small regular file of `source` to a new file `temp`
   * here in a worker thread, if the source still has `stamp` and `size`, and
   * returns its xxHash64; fails with code ECHANGED otherwise. Only where it
   * is native: undefined when `source` is not a native tree.
   */
  copySmall?(source: Tree, path: string, temp: string, size: number, stamp: Uint8Array | null): Promise<string> | undefined;
  /**
   * readMany reads small regular files, each checked against its size and
   * stamp, in a worker thread: their contents one after another, and each
   * one's xxHash64 or why it was not read (code ECHANGED when it is not the
   * file scanned). Only where it is native.
   */
  readMany?(files: readonly ReadRequest[]): Promise<ReadMany>;
  /** rootState tells whether the root's path still names the pinned directory. */
  rootState(): RootState;
  close(): void;
}

/** ReadRequest names a small file to read, with the size and stamp it must still have. */
export interface ReadRequest {
  readonly path: string;
  readonly size: number;
  readonly stamp: Uint8Array | null;
}

/** ReadMany: the files read, one after another, and per file its hash or why it was not read. */
export interface ReadMany {
  readonly data: Buffer;
  readonly hashes: readonly (string | Error)[];
}

/** RootState: what a tree's root path names now, against the directory pinned. */
export type RootState = 'same' | 'gone' | 'replaced' | 'not-a-directory';

/** rootStateOf compares what `root` names now with the directory (dev, ino) pinned. */
export function rootStateOf(root: string, dev: bigint, ino: bigint): RootState {
  let st;
  try {
    st = lstatSync(root, { bigint: true });
  } catch {
    return 'gone';
  }
  if (!st.isDirectory()) return 'not-a-directory';
  return st.dev === dev && st.ino === ino ? 'same' : 'replaced';
}

/** Disk opens trees: the native shims on the host (src/fs/native.ts), plain Node in the guest (src/fs/portable-disk.ts). */
export interface Disk {
  /** open pins the directory at root (an absolute path; its last component is not followed). */
  open(root: string): Tree;
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

/** statFromRecord reads a FileStat from one record. */
export function statFromRecord(record: Buffer): FileStat {
  const kind = record.readUInt32LE(0);
  return {
    kind: kind === RECORD_KIND.file ? 'file' : kind === RECORD_KIND.dir ? 'dir' : kind === RECORD_KIND.symlink ? 'symlink' : 'special',
    mode: record.readUInt32LE(4),
    size: record.readDoubleLE(8),
    stamp: record.subarray(STAMP_OFFSET, STAMP_OFFSET + STAMP_SIZE),
    digest: record.readDoubleLE(DIGEST_OFFSET),
  };
}
