/**
 * The local scanner: walks a tree depth-first in ferry's path order, listing
 * each directory with the native scanner (getdents + lstat in a worker
 * thread) and never following a link.
 *
 * Memory stays bounded: each level of the walk holds one sorted listing and
 * at most PREFETCH listings of its next subdirectories, fetched ahead so the
 * thread pool stays busy while JavaScript merges and reconciles.
 */

import { join } from 'node:path';
import type { ScanItem } from '../core/endpoint.js';
import type { UnsupportedReason } from '../core/entry.js';
import { compareNames, componentProblem, joinPath } from '../core/path.js';
import { NATIVE_KIND, RECORD_SIZE, STAMP_OFFSET, STAMP_SIZE, shims, type RawListing } from './native.js';

/** TEMP_PREFIX starts the name of every file ferry stages; such files are never synced. */
export const TEMP_PREFIX = '.ferry-tmp-';

const PREFETCH = 8;
const BATCH = 512;

interface Listing {
  readonly items: ScanItem[];
}

interface Frame {
  readonly listing: Listing;
  index: number;
  /** Indices (into listing.items) of subdirectories, in order, and how many have been prefetched. */
  readonly dirs: number[];
  nextPrefetch: number;
  readonly pending: Map<number, Promise<Listing | Error>>;
}

/** Walker lists a tree below `root`, calling `onTemp` for each staged temporary it meets. */
export class Walker {
  constructor(
    private readonly root: string,
    private readonly onTemp: (dir: string, name: string) => void,
  ) {}

  /** list returns the sorted entries of one directory (relative path `dir`). */
  async list(dir: string): Promise<Listing> {
    const raw = await shims.scanDir(dir === '' ? this.root : join(this.root, dir));
    return { items: this.decode(dir, raw) };
  }

  private decode(dir: string, raw: RawListing): ScanItem[] {
    const items: ScanItem[] = [];
    const { names, records } = raw;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      if (name.startsWith(TEMP_PREFIX)) {
        this.onTemp(dir, name);
        continue;
      }
      const off = i * RECORD_SIZE;
      const nativeKind = records.readUInt32LE(off);
      let kind: ScanItem['kind'];
      let reason: UnsupportedReason | undefined;
      switch (nativeKind) {
        case NATIVE_KIND.file:
          kind = 'file';
          break;
        case NATIVE_KIND.dir:
          kind = 'dir';
          break;
        case NATIVE_KIND.symlink:
          kind = 'unsupported';
          reason = 'symlink';
          break;
        case NATIVE_KIND.special:
          kind = 'unsupported';
          reason = 'special';
          break;
        case NATIVE_KIND.unreadable:
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
        ...(reason === undefined ? {} : { reason }),
      };
      items.push(item);
    }
    items.sort((a, b) => compareNames(a.path, b.path));
    // Two names that are not valid UTF-8 can decode to the same string; keep
    // the first so that paths stay strictly increasing.
    return items.filter((item, i) => i === 0 || items[i - 1]?.path !== item.path);
  }

  private frame(listing: Listing): Frame {
    const dirs: number[] = [];
    listing.items.forEach((item, i) => {
      if (item.kind === 'dir') dirs.push(i);
    });
    const frame: Frame = { listing, index: 0, dirs, nextPrefetch: 0, pending: new Map() };
    this.prefetch(frame);
    return frame;
  }

  private prefetch(frame: Frame): void {
    while (frame.nextPrefetch < frame.dirs.length && frame.pending.size < PREFETCH) {
      const i = frame.dirs[frame.nextPrefetch++] as number;
      const item = frame.listing.items[i] as ScanItem;
      frame.pending.set(
        i,
        this.list(item.path).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
      );
    }
  }

  /** batches walks the tree below the root listing `top`, yielding items in path order. */
  async *batches(top: Listing): AsyncGenerator<ScanItem[]> {
    const stack: Frame[] = [this.frame(top)];
    let batch: ScanItem[] = [];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as Frame;
      if (frame.index >= frame.listing.items.length) {
        stack.pop();
        continue;
      }
      const i = frame.index++;
      const item = frame.listing.items[i] as ScanItem;
      if (item.kind !== 'dir') {
        batch.push(item);
      } else {
        const pending = frame.pending.get(i);
        frame.pending.delete(i);
        this.prefetch(frame);
        const child = pending === undefined ? await this.list(item.path).catch((e: unknown) => e as Error) : await pending;
        if (child instanceof Error) {
          const code = (child as NodeJS.ErrnoException).code;
          // Vanished or replaced since its parent was listed: it is absent now.
          if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue;
          batch.push({ ...item, kind: 'unsupported', reason: 'unreadable' });
        } else {
          batch.push(item);
          stack.push(this.frame(child));
        }
      }
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }
}
