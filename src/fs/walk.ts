/**
 * The local scanner: lists one directory at a time through a Tree (the
 * native scanner on the host, plain Node in the guest), never following a
 * link, sorted in ferry's path order.
 */

import type { Listing, ScanItem } from '../core/endpoint.js';
import type { UnsupportedReason } from '../core/entry.js';
import { compareNames, componentProblem, joinPath } from '../core/path.js';
import { DIGEST_OFFSET, RECORD_KIND, RECORD_SIZE, STAMP_OFFSET, STAMP_SIZE, type RawListing } from './disk.js';

/** TEMP_PREFIX starts the name of every file ferry stages. */
export const TEMP_PREFIX = '.ferry-tmp-';

/**
 * The whole name of a file ferry stages (a regular expression, for the
 * watcher's ignore list too): the prefix, the pid of the process that
 * staged it, and a counter (base 36). Only such names are temporaries,
 * never synced and swept once stale; any other name, prefix or not, is the
 * user's.
 */
export const TEMP_NAME_PATTERN = '\\.ferry-tmp-([1-9][0-9]{0,9})-[0-9a-z]{1,13}';
const TEMP_NAME = new RegExp(`^${TEMP_NAME_PATTERN}$`);

/** tempOwner returns the pid that staged a temporary, or undefined for a name that is not one. */
export function tempOwner(name: string): number | undefined {
  const match = TEMP_NAME.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/** Walker lists directories through `scan` (a tree's scanDir), calling `onTemp` for each staged temporary it meets, with the pid that staged it. */
export class Walker {
  constructor(
    private readonly scan: (dir: string, expect?: number) => Promise<RawListing>,
    private readonly onTemp: (dir: string, name: string, owner: number) => void,
  ) {}

  /**
   * list returns the sorted entries of one directory (relative path `dir`).
   * When `expect` equals the listing's digest, only subdirectories are
   * returned (complete: false).
   */
  async list(dir: string, expect?: number): Promise<Listing> {
    const raw = await this.scan(dir, expect);
    return { items: this.decode(dir, raw), digest: raw.digest, complete: raw.complete };
  }
  private decode(dir: string, raw: RawListing): ScanItem[] {
    const items: ScanItem[] = [];
    const { names, records } = raw;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      // The prefix first: most names are not temporaries, and the pattern costs more.
      const owner = name.startsWith(TEMP_PREFIX) ? tempOwner(name) : undefined;
      if (owner !== undefined) {
        this.onTemp(dir, name, owner);
        continue;
      }
      const off = i * RECORD_SIZE;
      const nativeKind = records.readUInt32LE(off);
      let kind: ScanItem['kind'];
      let reason: UnsupportedReason | undefined;
      switch (nativeKind) {
        case RECORD_KIND.file:
          kind = 'file';
          break;
        case RECORD_KIND.dir:
          kind = 'dir';
          break;
        case RECORD_KIND.symlink:
          kind = 'unsupported';
          reason = 'symlink';
          break;
        case RECORD_KIND.special:
          kind = 'unsupported';
          reason = 'special';
          break;
        case RECORD_KIND.unreadable:
          kind = 'unsupported';
          reason = 'unreadable';
          break;
        default:
          kind = 'unsupported';
          reason = 'bad-name';
      }
      if (reason === undefined && componentProblem(name) !== undefined) {
        kind = 'unsupported';
        reason = 'bad-name';
      }
      const item: ScanItem = {
        path: joinPath(dir, name),
        kind,
        size: records.readDoubleLE(off + 8),
        mode: records.readUInt32LE(off + 4),
        stamp: records.subarray(off + STAMP_OFFSET, off + STAMP_OFFSET + STAMP_SIZE),
        digest: records.readDoubleLE(off + DIGEST_OFFSET),
        ...(reason === undefined ? {} : { reason }),
      };
      items.push(item);
    }
    // The native scanner sorts by bytes, which is ferry's order for valid
    // UTF-8; a name that is not valid UTF-8 decodes with U+FFFD and may land
    // out of order, or on the name of another.
    for (let i = 1; i < items.length; i++) {
      if (compareNames((items[i - 1] as ScanItem).path, (items[i] as ScanItem).path) >= 0) {
        items.sort((a, b) => compareNames(a.path, b.path));
        return items.filter((item, k) => k === 0 || items[k - 1]?.path !== item.path);
      }
    }
    return items;
  }

}
