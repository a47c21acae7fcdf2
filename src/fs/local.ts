/**
 * The local endpoint: one side of a session on this machine's disk.
 *
 * Writes follow DESIGN rules 1-4: content is staged under a temporary name in
 * the destination's directory, made durable by the batch barrier (syncfs),
 * and renamed into place only after a compare-and-swap on the destination.
 * No mode bits are copied, no link is followed or made.
 */

import { closeSync, constants as C, fstatSync, openSync, readFileSync, readSync, writeSync, type BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { CommitOptions, CommitResult, Endpoint, Listing, ScanItem, Staged, WatchHint } from '../core/endpoint.js';
import { DIR, type Entry, type FileEntry, type Hash, type Side } from '../core/entry.js';
import { ChangedError, PathError, SessionHalt } from '../core/errors.js';
import { NEW_DIR_MODE, NEW_FILE_MODE, replacedFileMode } from '../core/mode.js';
import { parentOf } from '../core/path.js';
import { StreamHasher, hashBytes, initHash } from './hash.js';
import type { Disk } from './disk.js';
import { sameStamp, stampDigest, stampOf } from './stamp.js';
import { TEMP_PREFIX, Walker } from './walk.js';
import { TreeWatcher, type WatcherBinding } from './watch.js';

const CHUNK = 1 << 20;
/** Files up to this size are read and staged with synchronous calls. */
const SMALL_FILE = 1 << 20;
const OPEN_READ = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;
const OPEN_STAGE = C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW;

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

/** tempOwner returns the pid that staged a temporary, from its name. */
function tempOwner(name: string): number | undefined {
  const pid = Number.parseInt(name.slice(TEMP_PREFIX.length), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** LocalEndpoint is a directory tree on this machine. */
export class LocalEndpoint implements Endpoint {
  readonly label: string;
  readonly trusted = true;
  private readonly walker: Walker;
  private readonly staleTemps: string[] = [];
  /** Files and directories written since the last barrier (for a Disk without syncfs). */
  private touched = new Set<string>();
  private tempCounter = 0;

  constructor(
    readonly side: Side,
    /** Absolute, canonical path of the root directory. */
    readonly root: string,
    private readonly disk: Disk,
    /** Loads the watcher binding, for a side that can watch. */
    private readonly watcher?: () => WatcherBinding,
  ) {
    this.label = root;
    this.walker = new Walker(disk, root, (dir, name) => {
      const owner = tempOwner(name);
      if (owner === undefined || owner === process.pid || !isAlive(owner)) this.staleTemps.push(join(root, dir, name));
    });
  }

  private abs(path: string): string {
    return path === '' ? this.root : join(this.root, path);
  }

  async prepare(): Promise<void> {
    let st;
    try {
      st = await fsp.lstat(this.root);
    } catch (error) {
      throw new SessionHalt(`the ${this.side} root ${this.root} is gone (${errnoCode(error) ?? String(error)}); nothing was changed on either side`, { cause: error });
    }
    if (!st.isDirectory()) throw new SessionHalt(`the ${this.side} root ${this.root} is no longer a directory; nothing was changed on either side`);
  }

  async list(path: string, expect?: number): Promise<Listing> {
    const listing = await this.walker.list(path, expect);
    if (this.staleTemps.length > 0) await this.sweep();
    return listing;
  }

  async inspect(path: string): Promise<Entry | undefined> {
    const st = await this.lstatAt(path);
    if (st === undefined) return undefined;
    if (st.isDirectory()) return DIR;
    if (!st.isFile()) return { kind: 'unsupported', reason: st.isSymbolicLink() ? 'symlink' : 'special' };
    const stamp = stampOf(st);
    const item: ScanItem = { path, kind: 'file', size: Number(st.size), mode: Number(st.mode), stamp, digest: stampDigest(stamp) };
    return { kind: 'file', size: item.size, hash: await this.hash(item), stamp, digest: item.digest };
  }

  /** sweep removes temporaries left by a ferry that died mid-sync. */
  async sweep(): Promise<void> {
    const temps = this.staleTemps.splice(0);
    await Promise.all(temps.map((temp) => fsp.unlink(temp).catch(() => undefined)));
  }

  async hash(item: ScanItem): Promise<Hash> {
    await initHash();
    const abs = this.abs(item.path);
    let handle;
    try {
      handle = await fsp.open(abs, OPEN_READ);
    } catch (error) {
      throw this.readError(item.path, error);
    }
    try {
      const before = await handle.stat({ bigint: true });
      if (!before.isFile() || !sameStamp(stampOf(before), item.stamp)) throw new ChangedError(item.path, 'modified while scanning');
      let hash: Hash;
      if (item.size <= CHUNK) {
        const buf = Buffer.allocUnsafe(item.size);
        const { bytesRead } = await handle.read(buf, 0, item.size, 0);
        if (bytesRead !== item.size) throw new ChangedError(item.path, 'size changed while hashing');
        hash = hashBytes(buf);
      } else {
        const hasher = new StreamHasher();
        for await (const chunk of readChunks(handle, item.size)) hasher.update(chunk);
        if (hasher.size !== item.size) throw new ChangedError(item.path, 'size changed while hashing');
        hash = hasher.digest();
      }
      const after = await handle.stat({ bigint: true });
      if (!sameStamp(stampOf(after), item.stamp)) throw new ChangedError(item.path, 'modified while hashing');
      return hash;
    } finally {
      await handle.close();
    }
  }

  private readError(path: string, error: unknown): Error {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return new ChangedError(path, code === 'ENOENT' ? 'deleted' : 'replaced by a link');
    return new PathError(path, `unable to read ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
  }

  /**
   * read streams a file's content, failing with ChangedError unless it still
   * is the file that was scanned (compare-and-swap on the source). Small
   * files are read with synchronous calls: for them the round trips through
   * the thread pool cost more than the reads.
   */
  async *read(path: string, entry: FileEntry): AsyncIterable<Uint8Array> {
    if (entry.size <= SMALL_FILE) {
      yield this.readSmall(path, entry);
      return;
    }
    let handle;
    try {
      handle = await fsp.open(this.abs(path), OPEN_READ);
    } catch (error) {
      throw this.readError(path, error);
    }
    try {
      this.checkSource(path, entry, await handle.stat({ bigint: true }));
      yield* readChunks(handle, entry.size);
    } finally {
      await handle.close();
    }
  }

  private readSmall(path: string, entry: FileEntry): Buffer {
    let fd;
    try {
      fd = openSync(this.abs(path), OPEN_READ);
    } catch (error) {
      throw this.readError(path, error);
    }
    try {
      this.checkSource(path, entry, fstatSync(fd, { bigint: true }));
      const buf = Buffer.allocUnsafe(entry.size);
      let filled = 0;
      while (filled < entry.size) {
        const n = readSync(fd, buf, filled, entry.size - filled, filled);
        if (n === 0) throw new ChangedError(path, 'shrank while being read');
        filled += n;
      }
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  private checkSource(path: string, entry: FileEntry, st: BigIntStats): void {
    if (!st.isFile()) throw new ChangedError(path, 'no longer a regular file');
    if (Number(st.size) !== entry.size) throw new ChangedError(path, 'size changed');
    if (entry.stamp !== undefined && !sameStamp(stampOf(st), entry.stamp)) throw new ChangedError(path, 'modified since it was scanned');
  }

  async stage(path: string, content: AsyncIterable<Uint8Array>, expectedSize: number): Promise<LocalStaged> {
    await initHash();
    const temp = this.tempPath(path);
    const hasher = new StreamHasher();
    if (expectedSize <= SMALL_FILE) {
      // Gather a small file, then write it with synchronous calls.
      const chunks: Uint8Array[] = [];
      for await (const chunk of content) {
        if (hasher.size + chunk.length > expectedSize) throw new ChangedError(path, 'the source grew during the transfer');
        hasher.update(chunk);
        chunks.push(chunk);
      }
      let fd;
      try {
        fd = openSync(temp, OPEN_STAGE, NEW_FILE_MODE);
      } catch (error) {
        throw this.stageError(path, error);
      }
      try {
        for (const chunk of chunks) {
          let written = 0;
          while (written < chunk.length) written += writeSync(fd, chunk, written, chunk.length - written);
        }
      } catch (error) {
        closeSync(fd);
        await fsp.unlink(temp).catch(() => undefined);
        throw this.stageError(path, error);
      }
      closeSync(fd);
      this.touched.add(temp);
      return { path, temp, size: hasher.size, hash: hasher.digest() };
    }
    let handle;
    try {
      handle = await fsp.open(temp, OPEN_STAGE, NEW_FILE_MODE);
    } catch (error) {
      throw this.stageError(path, error);
    }
    try {
      for await (const chunk of content) {
        if (hasher.size + chunk.length > expectedSize) throw new ChangedError(path, 'the source grew during the transfer');
        hasher.update(chunk);
        let written = 0;
        while (written < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
          written += bytesWritten;
        }
      }
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fsp.unlink(temp).catch(() => undefined);
      throw this.stageError(path, error);
    }
    this.touched.add(temp);
    return { path, temp, size: hasher.size, hash: hasher.digest() };
  }

  copyFrom(source: Endpoint, path: string, entry: FileEntry): Promise<LocalStaged> | undefined {
    if (this.disk.copySmall === undefined || !(source instanceof LocalEndpoint) || entry.size > SMALL_FILE) return undefined;
    const temp = this.tempPath(path);
    return this.disk.copySmall(source.abs(path), temp, entry.size, entry.stamp ?? null).then(
      (hash) => {
        this.touched.add(temp);
        return { path, temp, size: entry.size, hash };
      },
      (error: unknown) => {
        if (errnoCode(error) === 'ECHANGED') throw new ChangedError(path, (error as Error).message);
        throw errnoCode(error) === 'EEXIST' ? new PathError(path, `unable to stage ${path}: ${(error as Error).message}`) : this.stageError(path, error);
      },
    );
  }

  private tempPath(path: string): string {
    return join(this.abs(parentOf(path)), `${TEMP_PREFIX}${process.pid}-${(this.tempCounter++).toString(36)}`);
  }

  private stageError(path: string, error: unknown): Error {
    if (error instanceof ChangedError || error instanceof PathError) return error;
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return new ChangedError(path, 'its directory changed');
    return new PathError(path, `unable to stage ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
  }

  async discard(staged: Staged): Promise<void> {
    await fsp.unlink((staged as LocalStaged).temp).catch(() => undefined);
  }

  /** lstatAt returns lstat of path, or undefined when it does not exist. */
  private async lstatAt(path: string): Promise<BigIntStats | undefined> {
    try {
      return await fsp.lstat(this.abs(path), { bigint: true });
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return undefined;
      if (code === 'ENOTDIR') throw new ChangedError(path, 'a parent directory was replaced');
      throw new PathError(path, `unable to inspect ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * expectFile checks that path still is the file the plan saw
   * (compare-and-swap): its whole stamp, or failing that its stamp digest.
   */
  private async expectFile(path: string, expect: FileEntry): Promise<BigIntStats> {
    const st = await this.lstatAt(path);
    if (st === undefined) throw new ChangedError(path, 'deleted');
    if (!st.isFile()) throw new ChangedError(path, 'no longer a regular file');
    const stamp = stampOf(st);
    const same = expect.stamp !== undefined ? sameStamp(stamp, expect.stamp) : expect.digest !== undefined && stampDigest(stamp) === expect.digest;
    if (!same) throw new ChangedError(path, 'modified');
    return st;
  }

  async commit(staged: Staged, expect: Entry | undefined, options: CommitOptions): Promise<CommitResult> {
    const { temp, path } = staged as LocalStaged;
    const dest = this.abs(path);
    let strippedExec = false;
    let digest: number | undefined;
    try {
      if (expect === undefined) {
        digest = await this.disk.renameNoReplace(temp, dest);
      } else if (expect.kind === 'file') {
        const st = await this.expectFile(path, expect);
        const mode = replacedFileMode(Number(st.mode), options.stripExec);
        strippedExec = mode.strippedExec;
        await fsp.chmod(temp, mode.mode);
        // RACE: a writer that modifies the destination between the check
        // above and this rename loses that write. The window is one lstat,
        // one chmod and one rename long; renameat2(RENAME_EXCHANGE) in the
        // confinement shim will close it.
        await fsp.rename(temp, dest);
      } else {
        throw new ChangedError(path, `expected ${expect.kind} is not a file`);
      }
    } catch (error) {
      await this.discard(staged);
      const code = errnoCode(error);
      if (code === 'EEXIST') throw new ChangedError(path, 'created meanwhile');
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ChangedError(path, 'its directory changed');
      if (error instanceof ChangedError || error instanceof PathError) throw error;
      throw new PathError(path, `unable to put ${path} in place on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
    this.touch(parentOf(path));
    if (digest !== undefined) return { digest, strippedExec };
    const after = await this.lstatAt(path);
    if (after === undefined) throw new ChangedError(path, 'deleted right after it was written');
    return { digest: stampDigest(stampOf(after)), strippedExec };
  }

  async mkdir(path: string, expect: Entry | undefined): Promise<void> {
    if (expect?.kind === 'file') {
      await this.expectFile(path, expect);
      await this.unlink(path);
    } else if (expect !== undefined) {
      throw new ChangedError(path, `expected ${expect.kind} cannot be replaced by a directory`);
    }
    try {
      await fsp.mkdir(this.abs(path), NEW_DIR_MODE);
      this.touch(parentOf(path));
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') {
        const st = await this.lstatAt(path);
        if (st?.isDirectory() === true) return; // created meanwhile: the same outcome
        throw new ChangedError(path, 'created meanwhile');
      }
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new ChangedError(path, 'its parent directory changed');
      throw new PathError(path, `unable to create directory ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  async removeFile(path: string, expect: FileEntry): Promise<void> {
    await this.expectFile(path, expect);
    await this.unlink(path);
  }

  async removeDir(path: string): Promise<void> {
    try {
      await fsp.rmdir(this.abs(path));
      this.touch(parentOf(path));
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') return;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new ChangedError(path, 'something was created in it meanwhile');
      if (code === 'ENOTDIR') throw new ChangedError(path, 'no longer a directory');
      throw new PathError(path, `unable to remove directory ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  private async unlink(path: string): Promise<void> {
    try {
      await fsp.unlink(this.abs(path));
      this.touch(parentOf(path));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw new PathError(path, `unable to delete ${path} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  async move(path: string, to: string, expect: Entry): Promise<void> {
    // A move loses nothing, so a file is checked by kind only when the plan has no stamp for it.
    if (expect.kind === 'file' && expect.stamp !== undefined) await this.expectFile(path, expect);
    else if (expect.kind === 'file') {
      const st = await this.lstatAt(path);
      if (st?.isFile() !== true) throw new ChangedError(path, 'no longer a regular file');
    } else {
      const st = await this.lstatAt(path);
      if (st?.isDirectory() !== true) throw new ChangedError(path, 'no longer a directory');
    }
    try {
      await this.disk.renameNoReplace(this.abs(path), this.abs(to));
      this.touch(parentOf(path));
      this.touch(parentOf(to));
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw new ChangedError(to, 'the name is taken');
      throw new PathError(path, `unable to rename ${path} to ${to} on ${this.side}: ${(error as Error).message}`, { cause: error });
    }
  }

  async barrier(): Promise<void> {
    const touched = [...this.touched];
    this.touched = new Set();
    await this.disk.sync(this.root, touched);
  }

  // Notes a file or directory (relative path) that the next barrier must make durable.
  private touch(path: string): void {
    this.touched.add(this.abs(path));
  }

  async watch(onHint: (hint: WatchHint) => void, only?: string): Promise<() => Promise<void>> {
    if (this.watcher === undefined) throw new PathError('', `${this.label} cannot be watched here`);
    const watcher = await TreeWatcher.start(this.watcher(), this.root, onHint, only);
    return () => watcher.close();
  }

  async close(): Promise<void> {
    await this.sweep();
  }

  /** exists reports whether a path exists on this side (for conflict names). */
  async exists(path: string): Promise<boolean> {
    return (await this.lstatAt(path)) !== undefined;
  }
}

async function* readChunks(handle: fsp.FileHandle, size: number): AsyncGenerator<Buffer> {
  let position = 0;
  while (position < size) {
    const length = Math.min(CHUNK, size - position);
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(buf, 0, length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    yield bytesRead === length ? buf : buf.subarray(0, bytesRead);
  }
}

