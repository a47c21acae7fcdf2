/**
 * The Endpoint interface: one side of a session, local or remote. The session
 * engine (src/sync) drives two of them; src/fs implements the local one.
 *
 * Every method that changes the tree is a compare-and-swap (DESIGN rule 1):
 * it checks that the destination still is what the plan expected just before
 * the rename or unlink, and fails with a `changed` error otherwise.
 */

import type { Entry, FileEntry, Hash, Side, UnsupportedReason } from './entry.js';

/**
 * Files up to this size are small: a local endpoint reads and stages them
 * whole and copies them between local trees in batches, and the engine has
 * more of them in flight at once.
 */
export const SMALL_FILE = 1 << 20;

/** ScanItem is one entry found by a scan, before hashing. */
export interface ScanItem {
  readonly path: string;
  readonly kind: 'file' | 'dir' | 'unsupported';
  readonly reason?: UnsupportedReason;
  readonly size: number;
  /** Permission and type bits as lstat reports them. */
  readonly mode: number;
  /** (dev, ino, size, mtime_ns, ctime_ns), 40 bytes; compared for compare-and-swap. */
  readonly stamp: Uint8Array;
  /** A 52-bit digest of the stamp; the hash cache key kept in the archive. */
  readonly digest: number;
}

/** Listing is one directory's entries in path order. */
export interface Listing {
  readonly items: ScanItem[];
  /** A digest of the whole listing (names, kinds, stamps of non-directories). */
  readonly digest: number;
  /** False when the digest matched the one expected and only subdirectories were returned. */
  readonly complete: boolean;
}

/** Staged is content written under a temporary name beside its destination, not yet visible. */
export interface Staged {
  readonly path: string;
  readonly size: number;
  readonly hash: Hash;
}

/** CommitOptions says how to commit a staged file. */
export interface CommitOptions {
  /** Clear exec bits of a replaced file (content from the guest landing on the host). */
  readonly stripExec: boolean;
}

/** CommitResult reports the new stamp digest of a committed file, and whether exec bits were stripped. */
export interface CommitResult {
  readonly digest: number;
  readonly strippedExec: boolean;
}

/**
 * WatchHint is what a watching side reports: directories whose listings may
 * have changed (and whether anything in them was deleted), or a full rescan
 * and why.
 */
export type WatchHint = { readonly dirs: readonly string[]; readonly deleted?: boolean } | { readonly rescan: string };

/** FileToRead: a scanned file to read with others (readMany). */
export interface FileToRead {
  readonly path: string;
  readonly entry: FileEntry;
}

/** ReadBatch: what readMany read. */
export interface ReadBatch {
  readonly data: Uint8Array;
  readonly hashes: readonly (Hash | Error)[];
}

/** Endpoint is one side of a session. */
export interface Endpoint {
  /** Which side of the session this is. */
  readonly side: Side;
  /** A description for people (a path or a URL). */
  readonly label: string;
  /** Whether what this side reports can be believed (false for a guest): decides if hashing can be left to the copy. */
  readonly trusted: boolean;
  /** prepare checks the root exists and is a directory. */
  prepare(): Promise<void>;
  /** list returns one directory's entries; only its subdirectories when its digest equals `expect`. */
  list(path: string, expect?: number): Promise<Listing>;
  /**
   * unchanged tells, for each directory, whether its listing digest still is
   * the one given, checking them all at once (false too for one that cannot
   * be listed). Undefined where this side cannot (then list each one).
   */
  unchanged?(dirs: readonly string[], digests: readonly number[]): Promise<boolean[]> | undefined;
  /** sweep removes the stale temporaries that listings met. */
  sweep(): Promise<void>;
  /** hash returns the content hash of a scanned file, failing if it changed since it was scanned. */
  hash(item: ScanItem): Promise<Hash>;
  /** read streams a file's content; the reader verifies it against `entry`. */
  read(path: string, entry: FileEntry): AsyncIterable<Uint8Array>;
  /** stage writes content under a temporary name in the destination's directory. */
  stage(path: string, content: AsyncIterable<Uint8Array>, expectedSize: number): Promise<Staged>;
  /**
   * copyFrom stages the file at path of `source` directly, when this side
   * can (two local disks); undefined means use read and stage instead.
   */
  copyFrom?(source: Endpoint, path: string, entry: FileEntry): Promise<Staged> | undefined;
  /**
   * readMany reads small files together, each checked against its scanned
   * entry: their contents one after another (a file that failed has none),
   * and each one's content hash or why it failed. Undefined where this side
   * cannot (then read each one).
   */
  readMany?(files: readonly FileToRead[]): Promise<ReadBatch> | undefined;
  /** discard removes a staged file. */
  discard(staged: Staged): Promise<void>;
  /** commit renames a staged file into place if the destination still is `expect`. */
  commit(staged: Staged, expect: Entry | undefined, options: CommitOptions): Promise<CommitResult>;
  /**
   * commitNew renames many staged files into place at once, each at a path
   * where nothing may be (commit with no `expect`): a result or an Error for
   * each, in order. Absent where commit per file is as good.
   */
  commitNew?(staged: readonly Staged[]): Promise<(CommitResult | Error)[]>;
  /** mkdir creates a directory, replacing the file `expect` if given. */
  mkdir(path: string, expect: Entry | undefined): Promise<void>;
  /** removeFile removes a file if it still is `expect` (by stamp, or else stamp digest). */
  removeFile(path: string, expect: FileEntry): Promise<void>;
  /** removeDir removes a directory that must be empty; one already gone is fine. */
  removeDir(path: string): Promise<void>;
  /** move renames path to a new name that must not exist (for keeping both versions of a conflict). */
  move(path: string, to: string, expect: Entry): Promise<void>;
  /** inspect returns what is at path now (hashing a file), or undefined. */
  inspect(path: string): Promise<Entry | undefined>;
  /** exists reports whether anything is at path. */
  exists(path: string): Promise<boolean>;
  /** barrier makes everything written so far durable. */
  barrier(): Promise<void>;
  /**
   * distrust ends an untrusted side whose lie only the engine could see (its
   * content does not match the hash it announced), logging it as a protocol
   * violation; returns the error that stops the session.
   */
  distrust?(reason: string): Error;
  /**
   * watch reports changes below the root as hints until the returned
   * function stops it. Hints are never facts: the engine rescans what they
   * name. With `only`, just that name at the top of the root is watched
   * (a file grant). Absent when this side cannot watch.
   */
  watch?(onHint: (hint: WatchHint) => void, only?: string): Promise<() => Promise<void>>;
  /** close releases the endpoint. */
  close(): Promise<void>;
}
