/**
 * The portable Disk, in plain Node, for a guest agent without ferry's native
 * shims (a guest of another platform than the host's, or one that cannot
 * load them: the guest has no compiler and no ferry build): readdir +
 * lstat, link + unlink for a rename that must not replace, fsync of each
 * touched file and directory for durability. Its records, order and digests
 * equal the native scanner's.
 *
 * Paths are joined to the root: the last component is never followed
 * (O_NOFOLLOW, lstat), but a directory on the way that the guest swapped for
 * a link is. That only matters inside the guest, which owns its files
 * anyway; the host's side is the native tree, confined by openat2.
 */

import { execFile } from 'node:child_process';
import { type BigIntStats, constants as C, linkSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { asError } from '../core/errors.js';
import { DIGEST_OFFSET, RECORD_KIND, RECORD_SIZE, STAMP_OFFSET, type Disk, type FileStat, type RawListing, type RootState, type Tree, rootStateOf, statFromRecord } from './disk.js';
import { stampDigest } from './stamp.js';
import { SEED, type U64, chain, fnv1a64, splitNumber, top52 } from './mix64.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function validUtf8(name: Buffer): boolean {
  try {
    utf8.decode(name);
    return true;
  } catch {
    return false;
  }
}

function kindOf(st: BigIntStats): number {
  if (st.isFile()) return RECORD_KIND.file;
  if (st.isDirectory()) return RECORD_KIND.dir;
  if (st.isSymbolicLink()) return RECORD_KIND.symlink;
  return RECORD_KIND.special;
}

// writeRecord fills one record as the native scanner does.
function writeRecord(r: Buffer, kind: number, st: BigIntStats | undefined): void {
  r.writeUInt32LE(kind, 0);
  if (st === undefined) return;
  r.writeUInt32LE(Number(st.mode), 4);
  r.writeDoubleLE(Number(st.size), 8);
  const words = [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs];
  words.forEach((w, k) => r.writeBigUInt64LE(BigInt.asUintN(64, w), STAMP_OFFSET + 8 * k));
  r.writeDoubleLE(stampDigest(r.subarray(STAMP_OFFSET, STAMP_OFFSET + 40)), DIGEST_OFFSET);
}

// Synchronous calls: the agent serves one host, and a promise per entry
// costs more than the lstat it waits for.
async function scanDir(path: string, expect?: number): Promise<RawListing> {
  await Promise.resolve();
  return scanDirSync(path, expect);
}

function scanDirSync(path: string, expect?: number): RawListing {
  const raw = readdirSync(path, { encoding: 'buffer' });
  raw.sort((a, b) => Buffer.compare(a, b));
  const prefix = Buffer.from(`${path}/`);
  const stats = raw.map((name) => {
    try {
      return lstatSync(Buffer.concat([prefix, name]), { bigint: true });
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined;
    }
  });
  const names: string[] = [];
  const kept: Buffer[] = [];
  const records = Buffer.alloc(raw.length * RECORD_SIZE);
  let count = 0;
  raw.forEach((name, i) => {
    const st = stats[i];
    if (st === null) return; // vanished since it was listed
    const r = records.subarray(count * RECORD_SIZE, (count + 1) * RECORD_SIZE);
    let kind = st === undefined ? RECORD_KIND.unreadable : kindOf(st);
    if (!validUtf8(name)) kind = RECORD_KIND.badName;
    writeRecord(r, kind, st);
    names.push(name.toString('utf8'));
    kept.push(name);
    count++;
  });
  let h: U64 = [SEED[0], (SEED[1] ^ count) >>> 0];
  for (let i = 0; i < count; i++) {
    const r = records.subarray(i * RECORD_SIZE);
    const kind = r.readUInt32LE(0);
    const name = fnv1a64(kept[i] as Buffer);
    h = chain(h, name[0], name[1]);
    h = chain(h, 0, kind);
    if (kind !== RECORD_KIND.dir) {
      const [dh, dl] = splitNumber(r.readDoubleLE(DIGEST_OFFSET));
      h = chain(h, dh, dl);
    }
  }
  const digest = top52(h);
  if (expect !== undefined && expect === digest) {
    const dirNames: string[] = [];
    const dirRecords: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const r = records.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
      if (r.readUInt32LE(0) === RECORD_KIND.dir) {
        dirNames.push(names[i] as string);
        dirRecords.push(r);
      }
    }
    return { names: dirNames, records: Buffer.concat(dirRecords), digest, complete: false };
  }
  return { names, records: records.subarray(0, count * RECORD_SIZE), digest, complete: true };
}

/** Directories that make a check worth the second thread (started once, in some 50 ms). */
const WORKER_MIN_DIRS = 200;
/** The workerData key that makes a thread running this module the checking helper. */
const WORKER_TASK = 'ferryUnchanged';

export interface UnchangedTask {
  readonly paths: readonly string[];
  readonly expects: readonly number[];
}

// Whether each directory (an absolute path) lists with its expected digest.
function unchangedSync({ paths, expects }: UnchangedTask): boolean[] {
  return paths.map((path, i) => {
    try {
      return scanDirSync(path).digest === expects[i];
    } catch {
      return false;
    }
  });
}

interface Waiter {
  resolve(same: boolean[]): void;
  reject(error: Error): void;
}

/** The helper thread that checks directories beside the agent's, started with the first large check. */
let helper: { readonly worker: Worker; readonly waiting: Map<number, Waiter>; next: number } | undefined;

/**
 * checkInHelper runs unchangedSync in the helper thread (a worker running
 * this module, see its end), starting it if need be. The thread stays for
 * the next check; idle, it does not keep the process alive.
 */
export function checkInHelper(task: UnchangedTask): Promise<boolean[]> {
  if (helper === undefined) {
    // None of node's own options: they were the agent's (or a caller's), not the module's.
    const worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_TASK]: true }, execArgv: [] });
    worker.unref();
    const started = { worker, waiting: new Map<number, Waiter>(), next: 0 };
    const fail = (error: Error) => {
      if (helper === started) helper = undefined;
      for (const waiter of started.waiting.values()) waiter.reject(error);
      started.waiting.clear();
    };
    worker.on('message', ([id, same]: [number, boolean[]]) => {
      started.waiting.get(id)?.resolve(same);
      started.waiting.delete(id);
      if (started.waiting.size === 0) worker.unref();
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the checking thread exited (${code})`)));
    helper = started;
  }
  const { worker, waiting } = helper;
  const id = helper.next++;
  return new Promise((resolve, reject) => {
    // Held while it has work, so that an answer awaited is not cut short.
    if (waiting.size === 0) worker.ref();
    waiting.set(id, { resolve, reject });
    worker.postMessage([id, task]);
  });
}

// Synchronous: a file's move is a few quick calls, and a batch of them
// (renameManyNoReplace) costs no thread hop per file.
function renameNoReplace(from: string, to: string): void {
  if (!lstatSync(from).isDirectory()) {
    moveFileNoReplace(from, to);
    return;
  }
  // RACE: a directory cannot be linked; something created at `to` between
  // this check and the rename is replaced if it is an empty directory, and
  // makes the rename fail otherwise. Only the guest agent takes this path.
  if (existsNoFollow(to)) throw Object.assign(new Error(`EEXIST: ${to} exists`), { code: 'EEXIST' });
  renameSync(from, to);
}

// link(2) fails with EEXIST when `to` exists: an atomic no-replace move of a file.
function moveFileNoReplace(from: string, to: string): void {
  linkSync(from, to);
  unlinkSync(from);
}

function existsNoFollow(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function fsyncPath(path: string): Promise<void> {
  let handle;
  try {
    handle = await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // renamed or removed since: its directory is synced
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// `sync --file-system` (coreutils) is syncfs(2): one call instead of an
// fsync per file. Where it is missing, every touched file and directory is
// fsynced instead.
let syncfsCommand: boolean | undefined;

function syncFileSystem(root: string): Promise<boolean> {
  if (syncfsCommand === false) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile('sync', ['--file-system', root], (error) => {
      syncfsCommand = error === null;
      resolve(syncfsCommand);
    });
  });
}

/** PortableTree is a tree reached by joining paths to its root. */
class PortableTree implements Tree {
  private readonly dev: bigint;
  private readonly ino: bigint;

  constructor(readonly root: string) {
    const st = lstatSync(root, { bigint: true });
    if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: ${root} is not a directory`), { code: 'ENOTDIR' });
    this.dev = st.dev;
    this.ino = st.ino;
  }

  private abs(path: string): string {
    return path === '' ? this.root : join(this.root, path);
  }

  scanDir(dir: string, expect?: number): Promise<RawListing> {
    return scanDir(this.abs(dir), expect);
  }

  // The lstat of every entry is the work: with a second core, a worker
  // thread takes half of the directories.
  async unchangedDirs(dirs: readonly string[], expects: readonly number[]): Promise<boolean[]> {
    const paths = dirs.map((dir) => this.abs(dir));
    await Promise.resolve();
    if (paths.length < WORKER_MIN_DIRS || cores() < 2) return unchangedSync({ paths, expects });
    const half = Math.ceil(paths.length / 2);
    const theirs = { paths: paths.slice(half), expects: expects.slice(half) };
    const other = checkInHelper(theirs).catch(() => undefined);
    const mine = unchangedSync({ paths: paths.slice(0, half), expects: expects.slice(0, half) });
    return [...mine, ...((await other) ?? unchangedSync(theirs))];
  }

  stat(path: string): FileStat | undefined {
    let st;
    try {
      st = lstatSync(this.abs(path), { bigint: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const record = Buffer.alloc(RECORD_SIZE);
    writeRecord(record, kindOf(st), st);
    return statFromRecord(record);
  }

  open(path: string, flags: number, mode?: number): number {
    return openSync(this.abs(path), flags | C.O_NOFOLLOW, mode);
  }

  mkdir(path: string, mode: number): void {
    mkdirSync(this.abs(path), mode);
  }

  rmdir(path: string): void {
    rmdirSync(this.abs(path));
  }

  unlink(path: string): void {
    unlinkSync(this.abs(path));
  }

  rename(from: string, to: string): void {
    renameSync(this.abs(from), this.abs(to));
  }

  renameNoReplace(from: string, to: string): Promise<number | undefined> {
    try {
      renameNoReplace(this.abs(from), this.abs(to));
      return Promise.resolve(undefined);
    } catch (error) {
      return Promise.reject(asError(error));
    }
  }

  renameManyNoReplace(pairs: readonly (readonly [string, string])[]): Promise<(number | undefined | Error)[]> {
    return Promise.resolve(
      pairs.map(([from, to]) => {
        try {
          // Files only (staged ones): no lstat to tell them from directories.
          moveFileNoReplace(this.abs(from), this.abs(to));
          return undefined;
        } catch (error) {
          return asError(error);
        }
      }),
    );
  }

  async sync(touched: readonly string[]): Promise<void> {
    if (touched.length > 8 && (await syncFileSystem(this.root))) return;
    const paths = touched.length > 0 ? touched : [''];
    await Promise.all(paths.map((path) => fsyncPath(this.abs(path))));
  }

  rootState(): RootState {
    return rootStateOf(this.root, this.dev, this.ino);
  }

  close(): void {
    // Nothing is held open.
  }
}

/** portableDisk is the Disk in plain Node. */
export const portableDisk: Disk = { open: (root) => new PortableTree(root) };

// availableParallelism is Node 18.14's; the agent runs on any Node 18.
function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

// In the helper thread started by checkInHelper: answer each check sent.
if (!isMainThread && (workerData as Record<string, unknown> | null)?.[WORKER_TASK] === true) {
  parentPort?.on('message', ([id, task]: [number, UnchangedTask]) => parentPort?.postMessage([id, unchangedSync(task)]));
}
