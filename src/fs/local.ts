/**
 * The local endpoint: one side of a session on this machine's disk.
 *
 * Every call goes through a Tree pinned at the root: on the host, the native
 * shims' openat2 beneath the root's fd (DESIGN rule 6), so no path, link or
 * swapped directory takes a read or a write outside it. Writes follow DESIGN
 * rules 1-4: content is staged under a temporary name in the destination's
 * directory, made durable by the batch barrier, and renamed into place only
 * after a compare-and-swap on the destination. No mode bits are copied, no
 * link is followed or made.
 */

import { closeSync, constants as C, fchmodSync, fstatSync, lstatSync, read, readFileSync, readSync, write, writeSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMALL_FILE, type CommitOptions, type CommitResult, type Endpoint, type FileToRead, type Listing, type ReadBatch, type ScanItem, type Staged, type WatchHint } from '../core/endpoint.js';
import { DIR, type Entry, type FileEntry, type Hash, type Side } from '../core/entry.js';
import { ChangedError, FerryError, PathError, SessionHalt } from '../core/errors.js';
import { NEW_DIR_MODE, NEW_FILE_MODE, replacedFileMode } from '../core/mode.js';
import { baseName, joinPath, parentOf } from '../core/path.js';
import { StreamHasher, hashBytes, initHash } from './hash.js';
import type { Disk, FileStat, Tree } from './disk.js';
import { pseudoFileSystem } from './pseudo.js';
import { sameStamp, stampOf } from './stamp.js';
import { TEMP_PREFIX, Walker } from './walk.js';
import { TreeWatcher, type WatcherBinding } from './watch.js';

const CHUNK = 1 << 20;
// Trees never follow a link; O_NONBLOCK keeps a fifo swapped in from blocking the open.
const OPEN_READ = C.O_RDONLY | C.O_NONBLOCK;
const OPEN_STAGE = C.O_WRONLY | C.O_CREAT | C.O_EXCL;
const readAt = promisify(read);
const writeAt = promisify(write);

interface LocalStaged extends Staged {
  readonly temp: string;
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
  // A zombie has exited: its temporaries are stale.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/**
 * The temporaries this process staged and has not yet put in place or
 * removed, by name (unique in the process). One of this process's pid is
 * stale only when it is not among them: a daemon serving many grants lists
 * directories where its other syncs have files in flight.
 */
const liveTemps = new Set<string>();
let tempCounter = 0;

/**
 * moved turns the errno of a path that no longer leads where it did (gone,
 * a directory on the way replaced by a file or a link) into a ChangedError;
 * EXDEV, a path that would leave the root, is refused outright.
 */
function moved(path: string, error: unknown, gone: string): Error | undefined {
  switch (errnoCode(error)) {
    case 'ENOENT':
      return new ChangedError(path, gone);
    case 'ENOTDIR':
      return new ChangedError(path, 'a directory on its way was replaced by a file');
    case 'ELOOP':
      return new ChangedError(path, 'it or a directory on its way was replaced by a link');
    case 'EXDEV':
      return new PathError(path, `${path} leads outside the root; refused`, { cause: error });
    default:
      return undefined;
  }
}

/** LocalEndpoint is a directory tree on this machine. */
export class LocalEndpoint implements Endpoint {
  readonly label: string;
  readonly trusted = true;
  private readonly walker: Walker;
  private readonly staleTemps: string[] = [];
  /** Files and directories (relative paths) written since the last barrier. */
  private touched = new Set<string>();
  private pinned: Tree | undefined;

  constructor(
    readonly side: Side,
    /** Absolute, canonical path of the root directory. */
    readonly root: string,
    private readonly disk: Disk,
    /** Loads the watcher binding, for a side that can watch. */
    private readonly watcher?: () => WatcherBinding,
  ) {
    this.label = root;
    this.walker = new Walker(
      (dir, expect) => this.tree.scanDir(dir, expect),
      (dir, name, owner) => {
        const stale = owner === process.pid ? !liveTemps.has(name) : !isAlive(owner);
        if (stale) this.staleTemps.push(joinPath(dir, name));
      },
    );
  }

  /** The tree pinned at the root, opened on first use. */
  private get tree(): Tree {
    this.pinned ??= this.pin();
    return this.pinned;
  }

  private pin(): Tree {
    try {
      return this.disk.open(this.root);
    } catch (error) {
      if (error instanceof FerryError) throw error;
      const code = errnoCode(error);
      if (code === 'ENOENT') throw new SessionHalt(`the ${this.side} root ${this.root} is gone (ENOENT); nothing was changed on either side`, { cause: error });
      if (code === 'ENOTDIR' || code === 'ELOOP') throw new SessionHalt(`the ${this.side} root ${this.root} is no longer a directory; nothing was changed on either side`, { cause: error });
      throw new SessionHalt(`unable to open the ${this.side} root ${this.root}: ${(error as Error).message}`, { cause: error });
    }
  }

  prepare(): Promise<void> {
    // A pass learns afresh what is mounted where (a device number is reused once unmounted).
    this.rootDevice = undefined;
    this.pseudoDevices.clear();
    if (this.pinned === undefined) {
      this.pinned = this.pin();
      return Promise.resolve();
    }
    const state = this.pinned.rootState();
    if (state === 'same') return Promise.resolve();
    const what = { gone: 'is gone', replaced: 'was replaced by another directory', 'not-a-directory': 'is no longer a directory' }[state];
    return Promise.reject(new SessionHalt(`the ${this.side} root ${this.root} ${what}; nothing was changed on either side`));
  }

  async list(path: string, expect?: number): Promise<Listing> {
    const listing = await this.walker.list(path, expect);
    if (this.staleTemps.length > 0) await this.sweep();
    return this.withoutPseudo(listing);
  }

  // The device of the root, and for each other device met below it whether
  // it is a pseudo file system (one statfs per device).
  private rootDevice: string | undefined;
  private readonly pseudoDevices = new Map<string, boolean>();

  // A kernel pseudo file system mounted below the root (a chroot's /proc)
  // is not walked: its directory is a special entry, never synced.
  private withoutPseudo(listing: Listing): Listing {
    this.rootDevice ??= Buffer.from(stampOf(lstatSync(this.root, { bigint: true })).subarray(0, 8)).toString('hex');
    let items: ScanItem[] | undefined;
    listing.items.forEach((item, i) => {
      if (item.kind !== 'dir') return;
      const device = Buffer.from(item.stamp.subarray(0, 8)).toString('hex');
      if (device === this.rootDevice) return;
      let pseudo = this.pseudoDevices.get(device);
      if (pseudo === undefined) {
        pseudo = pseudoFileSystem(join(this.root, item.path)) !== undefined;
        this.pseudoDevices.set(device, pseudo);
      }
      if (!pseudo) return;
      items ??= [...listing.items];
      items[i] = { ...item, kind: 'unsupported', reason: 'special' };
    });
    return items === undefined ? listing : { ...listing, items };
  }

  unchanged(dirs: readonly string[], digests: readonly number[]): Promise<boolean[]> {
    return this.tree.unchangedDirs(dirs, digests);
  }

  async inspect(path: string): Promise<Entry | undefined> {
    const st = this.statAt(path);
    if (st === undefined) return undefined;
    if (st.kind === 'dir') return DIR;
    if (st.kind !== 'file') return { kind: 'unsupported', reason: st.kind === 'symlink' ? 'symlink' : 'special' };
    const item: ScanItem = { path, kind: 'file', size: st.size, mode: st.mode, stamp: st.stamp, digest: st.digest };
    return { kind: 'file', size: item.size, hash: await this.hash(item), stamp: st.stamp, digest: st.digest };
  }

  /** sweep removes temporaries left by a ferry that died mid-sync. */
  sweep(): Promise<void> {
    for (const temp of this.staleTemps.splice(0)) this.unlinkQuietly(temp);
    return Promise.resolve();
  }

  private unlinkQuietly(path: string): void {
    try {
      this.tree.unlink(path);
    } catch {
      // gone already, or its directory is: nothing to remove
    }
  }

  /** openRead opens a file of the tree for reading, mapping a vanished or swapped path to ChangedError. */
  private openRead(path: string): number {
    try {
      return this.tree.open(path, OPEN_READ);
    } catch (error) {
      throw moved(path, error, 'deleted') ?? new PathError(path, `unable to read ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  async hash(item: ScanItem): Promise<Hash> {
    await initHash();
    const fd = this.openRead(item.path);
    try {
      const before = fstatSync(fd, { bigint: true });
      if (!before.isFile() || !sameStamp(stampOf(before), item.stamp)) throw new ChangedError(item.path, 'modified while scanning');
      let hash: Hash;
      if (item.size <= CHUNK) {
        const buf = Buffer.allocUnsafe(item.size);
        const { bytesRead } = await readAt(fd, buf, 0, item.size, 0);
        if (bytesRead !== item.size) throw new ChangedError(item.path, 'size changed while hashing');
        hash = hashBytes(buf);
      } else {
        const hasher = new StreamHasher();
        for await (const chunk of readChunks(fd, item.size)) hasher.update(chunk);
        if (hasher.size !== item.size) throw new ChangedError(item.path, 'size changed while hashing');
        hash = hasher.digest();
      }
      const after = fstatSync(fd, { bigint: true });
      if (!sameStamp(stampOf(after), item.stamp)) throw new ChangedError(item.path, 'modified while hashing');
      return hash;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * read streams a file's content, failing with ChangedError unless it still
   * is the file that was scanned (compare-and-swap on the source). Small
   * files are read with synchronous calls: for them the round trips through
   * the thread pool cost more than the reads.
   */
  async *read(path: string, entry: FileEntry): AsyncIterable<Uint8Array> {
    const fd = this.openRead(path);
    try {
      this.checkSource(path, entry, fstatSync(fd, { bigint: true }));
      if (entry.size <= SMALL_FILE) yield readWhole(fd, path, entry.size);
      else yield* readChunks(fd, entry.size);
      // Written to in place while it was read (a database, a log): what was
      // sent mixes two versions, and says so rather than end as if whole.
      this.checkSource(path, entry, fstatSync(fd, { bigint: true }), 'modified while it was read');
    } finally {
      closeSync(fd);
    }
  }

  private checkSource(path: string, entry: FileEntry, st: BigIntStats, modified = 'modified since it was scanned'): void {
    if (!st.isFile()) throw new ChangedError(path, 'no longer a regular file');
    if (Number(st.size) !== entry.size) throw new ChangedError(path, 'size changed');
    if (entry.stamp !== undefined && !sameStamp(stampOf(st), entry.stamp)) throw new ChangedError(path, modified);
  }

  async stage(path: string, content: AsyncIterable<Uint8Array>, expectedSize: number): Promise<LocalStaged> {
    await initHash();
    const temp = this.tempPath(path);
    try {
      return await this.stageAt(temp, path, content, expectedSize);
    } catch (error) {
      this.release(temp);
      throw error;
    }
  }

  private async stageAt(temp: string, path: string, content: AsyncIterable<Uint8Array>, expectedSize: number): Promise<LocalStaged> {
    const hasher = new StreamHasher();
    const take = (chunk: Uint8Array) => {
      if (hasher.size + chunk.length > expectedSize) throw new ChangedError(path, 'the source grew during the transfer');
      hasher.update(chunk);
    };
    // A small file is gathered first, then written with synchronous calls.
    const gathered: Uint8Array[] = [];
    if (expectedSize <= SMALL_FILE) {
      for await (const chunk of content) {
        take(chunk);
        gathered.push(chunk);
      }
    }
    const fd = this.openTemp(temp, path);
    try {
      if (expectedSize <= SMALL_FILE) {
        for (const chunk of gathered) writeAllSync(fd, chunk);
      } else {
        for await (const chunk of content) {
          take(chunk);
          let written = 0;
          while (written < chunk.length) written += (await writeAt(fd, chunk, written, chunk.length - written)).bytesWritten;
        }
      }
    } catch (error) {
      throw this.dropTemp(fd, temp, path, error);
    }
    closeSync(fd);
    this.touched.add(temp);
    return { path, temp, size: hasher.size, hash: hasher.digest() };
  }

  // Creates the staged file `temp` for path; the error for path if it cannot.
  private openTemp(temp: string, path: string): number {
    try {
      return this.tree.open(temp, OPEN_STAGE, NEW_FILE_MODE);
    } catch (error) {
      throw this.stageError(path, error);
    }
  }

  // Closes and removes a staged file whose writing failed; the error for path.
  private dropTemp(fd: number, temp: string, path: string, error: unknown): Error {
    closeSync(fd);
    this.unlinkQuietly(temp);
    return this.stageError(path, error);
  }

  copyFrom(source: Endpoint, path: string, entry: FileEntry): Promise<LocalStaged> | undefined {
    if (!(source instanceof LocalEndpoint) || entry.size > SMALL_FILE || this.tree.copySmall === undefined) return undefined;
    const temp = this.tempPath(path);
    let copy: Promise<string> | undefined;
    try {
      copy = this.tree.copySmall(source.tree, path, temp, entry.size, entry.stamp ?? null);
    } finally {
      if (copy === undefined) this.release(temp);
    }
    return copy?.then(
      (hash) => {
        this.touched.add(temp);
        return { path, temp, size: entry.size, hash };
      },
      (error: unknown) => {
        this.release(temp);
        if (errnoCode(error) === 'ECHANGED') throw new ChangedError(path, (error as Error).message);
        if (errnoCode(error) === 'EEXIST') throw new PathError(path, `unable to stage ${path}: ${(error as Error).message}`);
        // Reading on one side or writing on the other: the error does not say which.
        throw moved(path, error, 'its directory is gone') ?? new PathError(path, `unable to copy ${path} from ${source.side} to ${this.side}: ${(error as Error).message}`, { cause: error });
      },
    );
  }

  readMany(files: readonly FileToRead[]): Promise<ReadBatch> | undefined {
    const read = this.tree.readMany?.(files.map((f) => ({ path: f.path, size: f.entry.size, stamp: f.entry.stamp ?? null })));
    return read?.then(({ data, hashes }) => ({
      data,
      hashes: hashes.map((hash, i) => {
        if (!(hash instanceof Error)) return hash;
        const path = (files[i] as FileToRead).path;
        if (errnoCode(hash) === 'ECHANGED') return new ChangedError(path, hash.message);
        return moved(path, hash, 'deleted') ?? new PathError(path, `unable to read ${path} on ${this.side}: ${hash.message}`, { cause: hash });
      }),
    }));
  }

  /** stageBytes stages a small file whose whole content is at hand (synchronously). */
  stageBytes(path: string, content: Uint8Array): LocalStaged {
    const temp = this.tempPath(path);
    try {
      const fd = this.openTemp(temp, path);
      try {
        writeAllSync(fd, content);
      } catch (error) {
        throw this.dropTemp(fd, temp, path, error);
      }
      closeSync(fd);
    } catch (error) {
      this.release(temp);
      throw error;
    }
    this.touched.add(temp);
    return { path, temp, size: content.length, hash: hashBytes(content) };
  }

  private tempPath(path: string): string {
    const name = `${TEMP_PREFIX}${process.pid}-${(tempCounter++).toString(36)}`;
    liveTemps.add(name);
    return joinPath(parentOf(path), name);
  }

  // A temporary put in place or removed: a listing may call its name stale from now on.
  private release(temp: string): void {
    liveTemps.delete(baseName(temp));
  }

  private stageError(path: string, error: unknown): Error {
    if (error instanceof ChangedError || error instanceof PathError) return error;
    return moved(path, error, 'its directory is gone') ?? new PathError(path, `unable to stage ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
  }

  discard(staged: Staged): Promise<void> {
    this.unlinkQuietly((staged as LocalStaged).temp);
    this.release((staged as LocalStaged).temp);
    return Promise.resolve();
  }

  /** statAt returns lstat of path, or undefined when it does not exist. */
  private statAt(path: string): FileStat | undefined {
    try {
      return this.tree.stat(path);
    } catch (error) {
      throw moved(path, error, 'deleted') ?? new PathError(path, `unable to inspect ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * expectFile checks that path still is the file the plan saw
   * (compare-and-swap): its whole stamp, or failing that its stamp digest.
   */
  private expectFile(path: string, expect: FileEntry): FileStat {
    const st = this.statAt(path);
    if (st === undefined) throw new ChangedError(path, 'deleted');
    if (st.kind !== 'file') throw new ChangedError(path, 'no longer a regular file');
    const same = expect.stamp !== undefined ? sameStamp(st.stamp, expect.stamp) : expect.digest !== undefined && st.digest === expect.digest;
    if (!same) throw new ChangedError(path, 'modified');
    return st;
  }

  async commit(staged: Staged, expect: Entry | undefined, options: CommitOptions): Promise<CommitResult> {
    const { temp, path } = staged as LocalStaged;
    let strippedExec = false;
    let digest: number | undefined;
    try {
      if (expect === undefined) {
        digest = await this.tree.renameNoReplace(temp, path);
      } else if (expect.kind === 'file') {
        const st = this.expectFile(path, expect);
        const mode = replacedFileMode(st.mode, options.stripExec);
        strippedExec = mode.strippedExec;
        this.chmod(temp, mode.mode);
        this.replace(temp, path, st);
      } else {
        throw new ChangedError(path, `expected ${expect.kind} is not a file`);
      }
    } catch (error) {
      throw this.commitFailed(staged as LocalStaged, error);
    } finally {
      this.release(temp);
    }
    return this.committed(path, digest, strippedExec);
  }

  async commitNew(staged: readonly Staged[]): Promise<(CommitResult | Error)[]> {
    const files = staged as readonly LocalStaged[];
    let digests: (number | undefined | Error)[];
    try {
      digests = await this.tree.renameManyNoReplace(files.map((f) => [f.temp, f.path] as const));
    } catch (error) {
      digests = files.map(() => error as Error);
    }
    for (const file of files) this.release(file.temp);
    return files.map((file, i) => {
      const digest = digests[i];
      try {
        if (digest instanceof Error) throw this.commitFailed(file, digest);
        return this.committed(file.path, digest, false);
      } catch (error) {
        return error as Error;
      }
    });
  }

  // The error a failed commit gives, its staged file removed.
  private commitFailed(staged: LocalStaged, error: unknown): Error {
    this.unlinkQuietly(staged.temp);
    const { path } = staged;
    if (errnoCode(error) === 'EEXIST') return new ChangedError(path, 'created meanwhile');
    if (error instanceof ChangedError || error instanceof PathError) return error;
    return moved(path, error, 'its directory is gone') ?? new PathError(path, `unable to put ${path} in place on ${this.side}: ${(error as Error).message}`, { cause: error });
  }

  // What a commit that put path in place returns: its stamp digest, from the rename or a stat.
  private committed(path: string, digest: number | undefined, strippedExec: boolean): CommitResult {
    this.touch(parentOf(path));
    if (digest !== undefined) return { digest, strippedExec };
    const after = this.statAt(path);
    if (after === undefined) throw new ChangedError(path, 'deleted right after it was written');
    return { digest: after.digest, strippedExec };
  }

  /**
   * replace puts a staged file in place of the file `seen` at path. Where the
   * tree can, the two are swapped in one step (RENAME_EXCHANGE) and what was
   * swapped out is checked again: a write that landed on the destination
   * after it was checked is swapped back, not lost.
   */
  private replace(temp: string, path: string, seen: FileStat): void {
    if (this.tree.exchange === undefined) {
      // RACE: a writer that modifies the destination between the check and
      // this rename loses that write (the guest's portable tree only).
      this.tree.rename(temp, path);
      return;
    }
    this.tree.exchange(temp, path);
    const old = this.tree.stat(temp);
    // A rename changes ctime, so (dev, ino, size, mtime) are compared.
    if (old?.kind === 'file' && old.stamp.subarray(0, 32).equals(seen.stamp.subarray(0, 32))) {
      this.unlinkQuietly(temp);
      return;
    }
    this.tree.exchange(temp, path);
    throw new ChangedError(path, 'modified while it was being replaced');
  }

  // Sets the permission bits of a staged temporary (ferry's own file).
  private chmod(temp: string, mode: number): void {
    const fd = this.tree.open(temp, OPEN_READ);
    try {
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
  }

  mkdir(path: string, expect: Entry | undefined): Promise<void> {
    if (expect?.kind === 'file') {
      this.expectFile(path, expect);
      this.unlink(path);
    } else if (expect !== undefined) {
      throw new ChangedError(path, `expected ${expect.kind} cannot be replaced by a directory`);
    }
    try {
      this.tree.mkdir(path, NEW_DIR_MODE);
      this.touch(parentOf(path));
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') {
        if (this.statAt(path)?.kind === 'dir') return Promise.resolve(); // created meanwhile: the same outcome
        throw new ChangedError(path, 'created meanwhile');
      }
      throw moved(path, error, 'its parent directory is gone') ?? new PathError(path, `unable to create directory ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
    return Promise.resolve();
  }

  removeFile(path: string, expect: FileEntry): Promise<void> {
    this.expectFile(path, expect);
    this.unlink(path);
    return Promise.resolve();
  }

  removeDir(path: string): Promise<void> {
    try {
      this.tree.rmdir(path);
      this.touch(parentOf(path));
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return Promise.resolve();
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ChangedError(path, 'something was created in it meanwhile');
      if (code === 'ENOTDIR') throw new ChangedError(path, 'no longer a directory');
      throw moved(path, error, 'gone') ?? new PathError(path, `unable to remove directory ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
    return Promise.resolve();
  }

  private unlink(path: string): void {
    try {
      this.tree.unlink(path);
      this.touch(parentOf(path));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw moved(path, error, 'gone') ?? new PathError(path, `unable to delete ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  async move(path: string, to: string, expect: Entry): Promise<void> {
    // A move loses nothing, so a file is checked by kind only when the plan has no stamp for it.
    if (expect.kind === 'file' && expect.stamp !== undefined) this.expectFile(path, expect);
    else {
      const kind = this.statAt(path)?.kind;
      if (expect.kind === 'file' && kind !== 'file') throw new ChangedError(path, 'no longer a regular file');
      if (expect.kind !== 'file' && kind !== 'dir') throw new ChangedError(path, 'no longer a directory');
    }
    try {
      await this.tree.renameNoReplace(path, to);
      this.touch(parentOf(path));
      this.touch(parentOf(to));
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new ChangedError(to, 'the name is taken');
      throw moved(path, error, 'gone') ?? new PathError(path, `unable to rename ${path} to ${to} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  async barrier(): Promise<void> {
    const touched = [...this.touched];
    this.touched = new Set();
    await this.tree.sync(touched);
  }

  // Notes a file or directory that the next barrier must make durable.
  private touch(path: string): void {
    this.touched.add(path);
  }

  async watch(onHint: (hint: WatchHint) => void, only?: string): Promise<() => Promise<void>> {
    if (this.watcher === undefined) throw new PathError('', `${this.label} cannot be watched here`);
    // A root that is gone is said to be so (the watcher would report a bad file descriptor).
    await this.prepare();
    const watcher = await TreeWatcher.start(this.watcher(), this.root, onHint, only);
    return () => watcher.close();
  }

  async close(): Promise<void> {
    if (this.pinned === undefined) return;
    await this.sweep();
    this.pinned.close();
    this.pinned = undefined;
  }

  /** exists reports whether a path exists on this side (for conflict names). */
  exists(path: string): Promise<boolean> {
    if (path === '') {
      try {
        return Promise.resolve(this.tree.rootState() === 'same');
      } catch (error) {
        // No root to pin; a root that is there but cannot be opened (no
        // permission) is an error, not an absence.
        const code = errnoCode((error as Error).cause);
        if (error instanceof SessionHalt && (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP')) return Promise.resolve(false);
        throw error;
      }
    }
    return Promise.resolve(this.statAt(path) !== undefined);
  }
}

/** writeAllSync writes the whole of chunk, however many writes that takes. */
function writeAllSync(fd: number, chunk: Uint8Array): void {
  let written = 0;
  while (written < chunk.length) written += writeSync(fd, chunk, written, chunk.length - written);
}

/** readWhole reads a small file of known size, failing if it turns out shorter. */
function readWhole(fd: number, path: string, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const n = readSync(fd, buf, filled, size - filled, filled);
    if (n === 0) throw new ChangedError(path, 'shrank while being read');
    filled += n;
  }
  return buf;
}

async function* readChunks(fd: number, size: number): AsyncGenerator<Buffer> {
  let position = 0;
  while (position < size) {
    const length = Math.min(CHUNK, size - position);
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await readAt(fd, buf, 0, length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    yield bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }
}
