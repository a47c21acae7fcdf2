/**
 * Entries: what one side holds at one path.
 *
 * "Absent" is not an entry: it is `undefined`. Mode bits are not part of an
 * entry, so a change of mode alone is not a change (DESIGN rule 4).
 */

/** A 64-bit xxHash of a file's content, as 16 lowercase hex digits. */
export type Hash = string;

/** Why an entry cannot be synced. */
export type UnsupportedReason = 'symlink' | 'special' | 'unreadable' | 'bad-name';

/** FileEntry is a regular file, identified by size and content hash. */
export interface FileEntry {
  readonly kind: 'file';
  readonly size: number;
  readonly hash: Hash;
  /**
   * The scanner's identity of the file on its own side (device, inode, size,
   * mtime, ctime), used for compare-and-swap and the hash cache. Never part of
   * equality.
   */
  readonly stamp?: Uint8Array;
  /** The 52-bit digest of `stamp`, the key of the hash cache. Never part of equality. */
  readonly digest?: number;
}

/** DirEntry is a directory. */
export interface DirEntry {
  readonly kind: 'dir';
  /**
   * A digest of everything below it, as a conflict recorded it: a
   * resolution removes a directory only if it still holds just that. Never
   * part of equality.
   */
  readonly tree?: string;
}

/** UnsupportedEntry is anything ferry never syncs: a symlink, a special file, an unreadable entry or a name that is not valid UTF-8. */
export interface UnsupportedEntry {
  readonly kind: 'unsupported';
  readonly reason: UnsupportedReason;
}

/** Entry is one side's content at one path. */
export type Entry = FileEntry | DirEntry | UnsupportedEntry;

/** The two sides of a session. */
export type Side = 'alpha' | 'beta';

/** otherSide returns the side that is not side. */
export function otherSide(side: Side): Side {
  return side === 'alpha' ? 'beta' : 'alpha';
}

/** DIR is the one directory entry. */
export const DIR: DirEntry = Object.freeze({ kind: 'dir' });

/** sameEntry reports whether two entries (or absences) hold the same content. */
export function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  switch (a.kind) {
    case 'file':
      return b.kind === 'file' && a.size === b.size && a.hash === b.hash;
    case 'dir':
      return b.kind === 'dir';
    case 'unsupported':
      return b.kind === 'unsupported' && a.reason === b.reason;
  }
}

/** describeEntry names an entry for people: "a file of 12 bytes", "a directory", "absent". */
export function describeEntry(entry: Entry | undefined): string {
  if (entry === undefined) return 'absent';
  switch (entry.kind) {
    case 'file':
      return `a file of ${entry.size} byte${entry.size === 1 ? '' : 's'}`;
    case 'dir':
      return 'a directory';
    case 'unsupported':
      return describeUnsupported(entry.reason);
  }
}

/** describeUnsupported says what an unsupported entry is. */
export function describeUnsupported(reason: UnsupportedReason): string {
  switch (reason) {
    case 'symlink':
      return 'a symbolic link';
    case 'special':
      return 'a special file (fifo, socket or device)';
    case 'unreadable':
      return 'an entry that cannot be read';
    case 'bad-name':
      return 'an entry whose name is not valid UTF-8 or contains a control character';
  }
}
