/**
 * The native Disk: ferry's N-API shims (native-shims/, built by node-gyp at
 * install). A tree is a directory fd pinned once; every path below it is
 * resolved by openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS, so no call reaches outside the root, whatever is
 * swapped in meanwhile (DESIGN rule 6). Directory scans and small copies run
 * in worker threads; syncfs(2) is the batched durability barrier.
 */

import { closeSync, fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { FerryError } from '../core/errors.js';
import { Batcher } from './batch.js';
import { RECORD_SIZE, type Disk, type FileStat, type RawListing, type ReadMany, type ReadRequest, type RootState, type Tree, rootStateOf, statFromRecord } from './disk.js';

interface Shims {
  openRoot(path: string): number;
  openAt(root: number, rel: string, flags: number, mode: number): number;
  statAt(root: number, rel: string): Buffer | null;
  mkdirAt(root: number, rel: string, mode: number): void;
  unlinkAt(root: number, rel: string, isDir: boolean): void;
  renameAt(root: number, from: string, to: string, mode: (typeof RENAME)[keyof typeof RENAME]): number;
  scanDir(root: number, rel: string, expect?: number): Promise<RawListing>;
  unchangedDirs(root: number, rels: readonly string[], expects: readonly number[]): Promise<Buffer>;
  syncfs(root: number): Promise<void>;
  fsyncAt(root: number, rels: readonly string[]): Promise<void>;
  renameBatch(root: number, froms: readonly string[], tos: readonly string[]): Promise<(number | Error)[]>;
  copyBatch(srcRoot: number, dstRoot: number, jobs: readonly CopyJob[]): Promise<(string | Error)[]>;
  readBatch(root: number, jobs: readonly ReadJob[]): Promise<[Buffer, (string | Error)[]]>;
  peerUid(fd: number): number;
  readonly RECORD_SIZE: number;
}

/** A small copy: source path, temporary to create, size, and the stamp the source must still have. */
type CopyJob = readonly [src: string, temp: string, size: number, stamp: Buffer | null];

/** A small read: path, size, and the stamp the file must still have. */
type ReadJob = readonly [path: string, size: number, stamp: Buffer | null];

/** renameAt's modes: replace, RENAME_NOREPLACE, RENAME_EXCHANGE. */
const RENAME = { replace: 0, noReplace: 1, exchange: 2 } as const;

/** Worker threads one tree's unchangedDirs uses: the tree's other side checks its own meanwhile. */
const UNCHANGED_PARALLEL = 2;

/** Worker threads a batch of copies may use at once (libuv's pool has 4 by default). */
const COPY_PARALLEL = 4;
/** Below this many copies a chunk, another chunk is not worth its hand-off. */
const COPY_MIN_CHUNK = 4;
/** Renames of one batch: a chunk each for this many threads, at least RENAME_MIN_CHUNK each. */
const RENAME_PARALLEL = 2;
const RENAME_MIN_CHUNK = 64;

/** Up to this many touched paths a barrier fsyncs each; beyond, one syncfs of the whole file system is cheaper. */
const FSYNC_EACH_MAX = 8;

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = join(here, '..', '..', 'native-shims', 'build', 'Release', 'ferry_shims.node');

let loaded: Disk | undefined;
let addon: Shims | undefined;

// Loads the shims from `path` (this installation's build by default; in the
// guest agent, the copy the host uploaded), once.
function shimsAddon(path = addonPath): Shims {
  if (addon !== undefined) return addon;
  let shims: Shims;
  try {
    shims = createRequire(import.meta.url)(path) as Shims;
  } catch (error) {
    throw new FerryError(
      'ENATIVE',
      `ferry's native shims are not built (${path}): run \`npm install\` (or \`npm rebuild\`) in the ferry checkout; it needs python3, make and a C compiler`,
      { cause: error },
    );
  }
  if (shims.RECORD_SIZE !== RECORD_SIZE || typeof shims.openRoot !== 'function') throw new FerryError('ENATIVE', "ferry's native shims are out of date; run `npm rebuild`");
  addon = shims;
  return shims;
}

/** shimsPath is where this installation's native shims are built. */
export function shimsPath(): string {
  return addonPath;
}

/** peerUid returns the uid of the process at the other end of a connected unix socket. */
export function peerUid(fd: number): number {
  return shimsAddon().peerUid(fd);
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

const NO_OPENAT2 =
  "this kernel has no openat2(2), which ferry needs to keep every host read and write beneath the directory it syncs (DESIGN rule 6); run ferry on Linux 5.6 or later";

/** openRoot pins root, refusing a kernel without openat2 with a clear error. */
function openRoot(shims: Shims, root: string): number {
  try {
    return shims.openRoot(root);
  } catch (error) {
    if (errnoCode(error) === 'ENOSYS') throw new FerryError('EKERNEL', NO_OPENAT2, { cause: error });
    throw error;
  }
}

class NativeTree implements Tree {
  private fd: number;
  private readonly dev: bigint;
  private readonly ino: bigint;
  private readonly renames: Batcher<readonly [string, string], number>;
  /** Copies into this tree, by source tree. */
  private readonly copies = new Map<NativeTree, Batcher<CopyJob, string>>();

  constructor(
    private readonly shims: Shims,
    readonly root: string,
  ) {
    this.fd = openRoot(shims, root);
    const st = fstatSync(this.fd, { bigint: true });
    this.dev = st.dev;
    this.ino = st.ino;
    this.renames = new Batcher(
      (pairs) =>
        shims.renameBatch(
          this.handle,
          pairs.map((p) => p[0]),
          pairs.map((p) => p[1]),
        ),
      RENAME_PARALLEL,
      RENAME_MIN_CHUNK,
    );
  }

  /** The root fd, for a copy between two native trees. */
  get handle(): number {
    if (this.fd < 0) throw new Error(`the tree at ${this.root} is closed`);
    return this.fd;
  }

  scanDir(dir: string, expect?: number): Promise<RawListing> {
    return this.shims.scanDir(this.handle, dir, expect);
  }

  // In UNCHANGED_PARALLEL chunks: a whole tree's directories at once, the
  // lstat of every entry being the work.
  async unchangedDirs(dirs: readonly string[], expects: readonly number[]): Promise<boolean[]> {
    const same = await inChunks(dirs.length, UNCHANGED_PARALLEL, 1, (start, end) => this.shims.unchangedDirs(this.handle, dirs.slice(start, end), expects.slice(start, end)));
    return same.map((byte) => byte === 1);
  }

  stat(path: string): FileStat | undefined {
    const record = this.shims.statAt(this.handle, path);
    return record === null ? undefined : statFromRecord(record);
  }

  open(path: string, flags: number, mode = 0): number {
    return this.shims.openAt(this.handle, path, flags, mode);
  }

  mkdir(path: string, mode: number): void {
    this.shims.mkdirAt(this.handle, path, mode);
  }

  rmdir(path: string): void {
    this.shims.unlinkAt(this.handle, path, true);
  }

  unlink(path: string): void {
    this.shims.unlinkAt(this.handle, path, false);
  }

  rename(from: string, to: string): void {
    this.shims.renameAt(this.handle, from, to, RENAME.replace);
  }

  exchange(a: string, b: string): void {
    this.shims.renameAt(this.handle, a, b, RENAME.exchange);
  }

  async renameNoReplace(from: string, to: string): Promise<number | undefined> {
    const digest = await this.renames.add([from, to]);
    return digest >= 0 ? digest : undefined;
  }

  // Straight to the worker threads, RENAME_PARALLEL chunks of at least
  // RENAME_MIN_CHUNK: the pairs are a whole batch already.
  async renameManyNoReplace(pairs: readonly (readonly [string, string])[]): Promise<(number | undefined | Error)[]> {
    const results = await inChunks(pairs.length, RENAME_PARALLEL, RENAME_MIN_CHUNK, (start, end) => {
      const chunk = pairs.slice(start, end);
      return this.shims.renameBatch(
        this.handle,
        chunk.map((p) => p[0]),
        chunk.map((p) => p[1]),
      );
    });
    return results.map((r) => (r instanceof Error ? r : r >= 0 ? r : undefined));
  }

  sync(touched: readonly string[]): Promise<void> {
    if (touched.length > 0 && touched.length <= FSYNC_EACH_MAX) return this.shims.fsyncAt(this.handle, touched);
    return this.shims.syncfs(this.handle);
  }

  copySmall(source: Tree, path: string, temp: string, size: number, stamp: Uint8Array | null): Promise<string> | undefined {
    if (!(source instanceof NativeTree)) return undefined;
    let copies = this.copies.get(source);
    if (copies === undefined) {
      copies = new Batcher((jobs) => this.shims.copyBatch(source.handle, this.handle, jobs), COPY_PARALLEL, COPY_MIN_CHUNK);
      this.copies.set(source, copies);
    }
    const bytes = stamp === null ? null : Buffer.from(stamp.buffer, stamp.byteOffset, stamp.byteLength);
    return copies.add([path, temp, size, bytes]);
  }

  readMany(files: readonly ReadRequest[]): Promise<ReadMany> {
    return this.shims
      .readBatch(
        this.handle,
        files.map((f) => [f.path, f.size, f.stamp === null ? null : Buffer.from(f.stamp.buffer, f.stamp.byteOffset, f.stamp.byteLength)] as const),
      )
      .then(([data, hashes]) => ({ data, hashes }));
  }

  rootState(): RootState {
    return rootStateOf(this.root, this.dev, this.ino);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * inChunks hands `count` jobs to a native batch call in at most `parallel`
 * chunks of at least `minChunk` (each [start, end) a trip to a worker
 * thread, all at once) and joins their results in order.
 */
async function inChunks<R>(count: number, parallel: number, minChunk: number, run: (start: number, end: number) => Promise<Iterable<R>>): Promise<R[]> {
  const size = Math.max(minChunk, Math.ceil(count / parallel));
  const chunks: Promise<Iterable<R>>[] = [];
  for (let start = 0; start < count; start += size) chunks.push(run(start, Math.min(start + size, count)));
  return (await Promise.all(chunks)).flatMap((results) => [...results]);
}

/**
 * nativeDisk loads the shims (once: from `path` if given, else this
 * installation's build) and returns the Disk they implement.
 */
export function nativeDisk(path?: string): Disk {
  if (loaded !== undefined) return loaded;
  const shims = shimsAddon(path);
  loaded = { open: (root) => new NativeTree(shims, root) };
  return loaded;
}

/**
 * requireOpenat2 fails with a clear error, at start, where the kernel has no
 * openat2: every host-side call of ferry depends on it.
 */
export function requireOpenat2(): void {
  nativeDisk().open('/').close();
}
