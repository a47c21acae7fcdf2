/**
 * The session engine: scan → reconcile → transfer → apply → commit archive,
 * streamed over two endpoints and the archive.
 *
 * The tree is walked depth-first one directory at a time: the archive's
 * children of a directory and both sides' listings of it are merged by name
 * into rows; files whose stamp differs from the archive are hashed
 * (pipelined, in order); rows go through the pure Reconciler; decisions are
 * applied in batches. A directory whose listings match the digests recorded
 * when all its children agreed is not examined entry by entry. A batch ends
 * with the durability barrier on each side it wrote, the renames with their
 * compare-and-swap, a second barrier, and then one archive transaction:
 * nothing is recorded as synced before it is on disk (DESIGN rule 2).
 * Memory is bounded by the depth of the tree times the width of a directory.
 */

import { createHash } from 'node:crypto';
import type PQueue from 'p-queue';
import { SMALL_FILE, type CommitResult, type Endpoint, type Listing, type ScanItem, type Staged } from '../core/endpoint.js';
import { DIR, type Entry, type FileEntry, type Side, type UnsupportedReason, describeEntry, describeUnsupported, otherSide, sameEntry } from '../core/entry.js';
import { ChangedError, FerryError, PathError, SessionHalt, asError } from '../core/errors.js';
import type { Limits } from '../core/limits.js';
import { comparePaths, isWithin, parentOf } from '../core/path.js';
import { type Conflict, type Decision, type Op, Reconciler, type Row } from '../core/reconcile.js';
import { conflictCopyPath } from '../core/conflict-name.js';
import { type ArchiveRecord, type ConflictRecord, type CopyIntent, type IntentKey, type SessionRecord, type Store, sideDigest } from '../state/store.js';
import { lockSession } from './lock.js';
import type { Settle } from './settle.js';

/** SyncEvent is progress reported while a session runs. */
export type SyncEvent =
  | { readonly kind: 'scanning' }
  | { readonly kind: 'progress'; readonly scanned: number; readonly copied: number; readonly bytes: number }
  /** A conflict seen for the first time (the summary lists those met again too). */
  | { readonly kind: 'conflict'; readonly id: number; readonly path: string; readonly reason: string }
  | { readonly kind: 'unsupported'; readonly path: string; readonly side: Side; readonly reason: UnsupportedReason }
  | { readonly kind: 'failed'; readonly path: string; readonly message: string }
  | { readonly kind: 'resolved'; readonly id: number; readonly path: string; readonly keep: string };

/** Summary is what one sync did. */
export interface Summary {
  scanned: number;
  copied: { alpha: number; beta: number };
  bytes: number;
  dirsCreated: { alpha: number; beta: number };
  removed: { alpha: number; beta: number };
  agreed: number;
  execStripped: number;
  conflicts: { id: number; path: string; reason: string }[];
  unsupported: { path: string; side: Side; reason: UnsupportedReason }[];
  failures: { path: string; message: string }[];
  resolved: { id: number; path: string; keep: string }[];
  /** Paths that changed while being synced and were rescanned. */
  retried: number;
  /** Files left for a later pass because they keep changing (watch mode). */
  held: number;
  passes: number;
}

function emptySummary(): Summary {
  return {
    scanned: 0,
    copied: { alpha: 0, beta: 0 },
    bytes: 0,
    dirsCreated: { alpha: 0, beta: 0 },
    removed: { alpha: 0, beta: 0 },
    agreed: 0,
    execStripped: 0,
    conflicts: [],
    unsupported: [],
    failures: [],
    resolved: [],
    retried: 0,
    held: 0,
    passes: 0,
  };
}

/** SessionOptions configures one sync of a session. */
export interface SessionOptions {
  readonly store: Store;
  readonly session: SessionRecord;
  readonly alpha: Endpoint;
  readonly beta: Endpoint;
  readonly onEvent?: (event: SyncEvent) => void;
  /** Passes to run while paths keep changing under the sync (default 3). */
  readonly maxPasses?: number;
  /** Files staged concurrently (default: 64 small and 8 large files between local directories, 32 across a network). */
  readonly concurrency?: number;
  /**
   * Directories to rescan instead of the whole tree (from a watcher's
   * hints): each is walked with what lies below it that is new, gone, or
   * itself in the scope; every other directory is taken as unchanged.
   */
  readonly scope?: readonly string[];
  /** Sync only this name at the top of both roots (a file grant): nothing beside it is read or written. */
  readonly only?: string;
  /**
   * Beta may not change alpha (a read-only grant): wherever beta differs
   * from the archive, alpha's version is put back on beta, and the attempt
   * is logged.
   */
  readonly readOnly?: boolean;
  /** Limits on what beta may bring to alpha (a grant's guest). */
  readonly limits?: Limits;
  /**
   * The audit log entries of limits hit that earlier passes wrote: each is
   * written once, not at every pass that meets the same file again.
   */
  readonly logOnce?: Set<string>;
  /** Alpha's side of the first pass's check of recorded listings, started early (see checkEarly). */
  readonly early?: EarlyCheck | undefined;
  /** Files that keep changing are left for a later pass (watch mode; see settle.ts). */
  readonly settle?: Settle;
}

/**
 * EarlyCheck is alpha's side of a full pass's check of the recorded
 * listings, started before the sync (while beta connects): the listings it
 * checked, and its verdicts (undefined if it failed).
 */
export interface EarlyCheck {
  readonly recorded: readonly RecordedListing[];
  readonly same: Promise<boolean[] | undefined>;
}

type RecordedListing = ReturnType<Store['listings']>[number];

// The listings a full pass checks at once: every directory's, the root's
// included, when there are some and not too many.
function checkedListings(store: Store, sessionId: number): RecordedListing[] | undefined {
  if (store.listingCount(sessionId) > UNCHANGED_CHECK_MAX) return undefined;
  const recorded = store.listings(sessionId);
  return recorded.length > 0 ? recorded : undefined;
}

/**
 * checkEarly starts alpha's side of the first pass's check of recorded
 * listings for a session, to be given to syncSession as `early` with the
 * same alpha endpoint. It is used only if the listings are still those it
 * checked when the pass begins. A check that fails leaves the walk to list
 * each directory (and meet the error there).
 */
export function checkEarly(store: Store, sessionId: number, alpha: Endpoint): EarlyCheck | undefined {
  const recorded = alpha.unchanged === undefined ? undefined : checkedListings(store, sessionId);
  if (recorded === undefined) return undefined;
  let same: Promise<boolean[]> | undefined;
  try {
    same = alpha.unchanged?.(
      recorded.map((listing) => listing.dir),
      recorded.map((listing) => listing.alpha),
    );
  } catch {
    // A root that cannot be opened: the pass meets that itself.
    return undefined;
  }
  return { recorded, same: same?.catch(() => undefined) ?? Promise.resolve(undefined) };
}

function sameListings(a: readonly RecordedListing[], b: readonly RecordedListing[]): boolean {
  return a.length === b.length && a.every((listing, i) => listing.dir === b[i]?.dir && listing.alpha === b[i]?.alpha && listing.beta === b[i]?.beta);
}

const BATCH_FILES = 1024;
const BATCH_BYTES = 64 << 20;
const BATCH_ACTIONS = 4000;
/** A batch is committed at least this often, so a long sync makes progress that survives a crash. */
const BATCH_MS = 2000;
const HASH_WINDOW = 32;
/** How many limit entries logOnce remembers. */
const LOG_ONCE_MAX = 10_000;
/**
 * A pass checks all recorded listings at once only up to this many
 * directories (about 10 MB of paths and digests held); above it, the walk
 * checks each as it enters it, in memory that does not grow with the tree.
 */
const UNCHANGED_CHECK_MAX = 50_000;
/** The hash of a file whose hash is left to the copy that reads it. */
const DEFERRED_HASH = '';

// ---- merging the three listings -------------------------------------------

// One child of a directory with what the archive and each side hold there.
interface Child {
  readonly path: string;
  readonly alpha: ScanItem | undefined;
  readonly beta: ScanItem | undefined;
  readonly base: ArchiveRecord | undefined;
}

// What descending into a child directory found on each side.
interface Descent {
  readonly alpha: Listing | Error | undefined;
  readonly beta: Listing | Error | undefined;
}

// A directory being walked: its merged children and the listings of the
// next subdirectories, fetched ahead so the thread pool stays busy.
interface Frame {
  readonly path: string;
  readonly children: Child[];
  index: number;
  /** Every child so far is in agreement with the archive, with no hashing needed. */
  quiet: boolean;
  readonly alpha: Listing | undefined;
  readonly beta: Listing | undefined;
  readonly descents: Map<number, Promise<Descent>>;
  readonly dirs: number[];
  nextPrefetch: number;
}

/** Listings fetched ahead per directory level: more when a side is across a network. */
const PREFETCH_LOCAL = 4;
const PREFETCH_REMOTE = 16;

// A row whose entries may still be waiting for a hash.
interface PendingRow {
  readonly path: string;
  readonly base: ArchiveRecord | undefined;
  alpha: Entry | undefined;
  beta: Entry | undefined;
  refresh: boolean;
  hashes: Promise<void>[];
}

// Why a file grant halts when its file is gone from one side.
function grantedFileGone(only: string, side: Side): string {
  const other = otherSide(side);
  return `the granted file ${only} is gone from ${side} although the two sides were in sync before; refusing to delete it on ${other}. If it was renamed, rename it back; if it was deleted on purpose, delete it on ${other} too, or revoke the grant`;
}

// A resolution under way on a losing directory (see Pass.checkResolution).
interface Resolving {
  readonly path: string;
  readonly conflict: ConflictRecord;
  readonly winner: Side;
  /** entryKey of each entry below the directory when the choice was checked, by path. */
  readonly seen: Map<string, string>;
}

// What a resolution's check saw of an entry: its kind, and a file's size, inode and mtime.
function entryKey(entry: { readonly kind: string; readonly size?: number; readonly stamp?: Uint8Array }): string {
  return entry.kind === 'file' ? `file\0${entry.size ?? -1}\0${Buffer.from(entry.stamp?.subarray(8, 32) ?? []).toString('hex')}` : entry.kind;
}

// Whether a file's stat on a side is the one the archive recorded for it there.
function unchangedFile(base: ArchiveRecord | undefined, side: Side, item: ScanItem): base is ArchiveRecord & { readonly entry: FileEntry } {
  return base !== undefined && base.entry.kind === 'file' && base.entry.size === item.size && sideDigest(base, side) === item.digest;
}

function mergeChildren(alpha: readonly ScanItem[], beta: readonly ScanItem[], base: readonly ArchiveRecord[]): Child[] {
  const out: Child[] = [];
  let i = 0;
  let j = 0;
  let k = 0;
  for (;;) {
    const a = alpha[i];
    const b = beta[j];
    const o = base[k];
    let path: string | undefined;
    for (const candidate of [a?.path, b?.path, o?.path]) {
      if (candidate !== undefined && (path === undefined || comparePaths(candidate, path) < 0)) path = candidate;
    }
    if (path === undefined) return out;
    out.push({
      path,
      alpha: a?.path === path ? (i++, a) : undefined,
      beta: b?.path === path ? (j++, b) : undefined,
      base: o?.path === path ? (k++, o) : undefined,
    });
  }
}

function descends(child: Child): boolean {
  return child.alpha?.kind === 'dir' || child.beta?.kind === 'dir' || child.base?.entry.kind === 'dir';
}

// Whether a child is a directory on both sides and in the archive.
function dirEverywhere(child: Child): boolean {
  return child.alpha?.kind === 'dir' && child.beta?.kind === 'dir' && child.base?.entry.kind === 'dir';
}

// ---- applying decisions -------------------------------------------------

type Action =
  | { kind: 'put'; path: string; entry: Entry; alpha: number | undefined; beta: number | undefined }
  | { kind: 'forget'; path: string }
  | { kind: 'forget-tree'; path: string }
  | { kind: 'conflict'; conflict: Conflict }
  | { kind: 'log'; what: string; path: string; detail: string }
  | { kind: 'listing'; path: string; alpha: number; beta: number };

interface Transfer {
  readonly op: Extract<Op, { kind: 'copy' }>;
  readonly staging: Promise<Staged | Error>;
  /** The slot in the batch's action list that the archive update takes once committed. */
  readonly slot: number;
}

/** Batch: what one batch staged, decided and touched, to be settled together. */
interface Batch {
  readonly transfers: Transfer[];
  readonly actions: (Action | null)[];
  readonly touched: Set<Side>;
  readonly intents: IntentKey[];
}

/** syncSession takes the session's lock and runs passes until nothing changed under it, or maxPasses. */
export async function syncSession(options: SessionOptions): Promise<Summary> {
  const lock = lockSession(options.store.home, options.session.id);
  try {
    return await runPasses(options);
  } finally {
    lock.release();
  }
}

/** runPasses is syncSession for a caller that holds the session's lock already (watch mode). */
export async function runPasses(options: SessionOptions): Promise<Summary> {
  const summary = emptySummary();
  const maxPasses = options.maxPasses ?? 3;
  for (let n = 1; n <= maxPasses; n++) {
    // An early check answers for the tree as the first pass finds it.
    const pass = new Pass(n === 1 ? options : { ...options, early: undefined }, summary);
    await pass.run();
    summary.passes = n;
    if (pass.changing.size === 0) break;
    // Still changing after the last pass: not in sync, and the user is told.
    if (n === maxPasses) {
      for (const path of pass.changing) {
        reportFailure(summary, options, path, `${path === '' ? 'the root' : path}: it kept changing while ferry synced it (${maxPasses === 1 ? 'one pass' : `${maxPasses} passes`}); left as it is on both sides until the next sync`);
      }
    }
  }
  options.store.touchSession(options.session.id);
  return summary;
}

// A path that could not be synced: in the summary, and said as it happens.
function reportFailure(summary: Summary, options: SessionOptions, path: string, message: string): void {
  summary.failures.push({ path, message });
  options.onEvent?.({ kind: 'failed', path, message });
}

/** minimalDirs drops every directory that lies below another one of the set, and sorts the rest. */
function minimalDirs(dirs: Iterable<string>): string[] {
  const sorted = [...new Set(dirs)].sort(comparePaths);
  const out: string[] = [];
  for (const dir of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && isWithin(dir, last)) continue;
    out.push(dir);
  }
  return out;
}

/** withAncestors returns the directories and every directory above them (the root included). */
function withAncestors(dirs: Iterable<string>): Set<string> {
  const out = new Set<string>(['']);
  for (let dir of dirs) {
    while (dir !== '' && !out.has(dir)) {
      out.add(dir);
      dir = parentOf(dir);
    }
  }
  return out;
}

class Pass {
  private readonly store: Store;
  private readonly sessionId: number;
  private smallQueue: PQueue | undefined;
  private largeQueue: PQueue | undefined;
  private actions: (Action | null)[] = [];
  private transfers: Transfer[] = [];
  private batchBytes = 0;
  private batchStarted = Date.now();
  private halt: SessionHalt | undefined;
  private touched = new Set<Side>();
  /** The changes this batch's walk announced (mkdir, remove), cleared when the batch is recorded. */
  private intents: IntentKey[] = [];
  /** The batch being settled (put in place and recorded) while the walk stages the next. */
  private settling: Promise<void> = Promise.resolve();
  private readonly detected = new Set<string>();
  /** Files left for a later pass (settle.ts): not judged by this one. */
  private readonly heldPaths: string[] = [];
  private readonly unstable = new Map<string, Error>();
  /** The paths that changed while this pass synced them (see changed): the pass runs again while there are some. */
  readonly changing = new Set<string>();
  /** With a scope: the scoped directories and their ancestors, which the walk may enter. */
  private readonly scopeDirs: Set<string> | undefined;
  /** With limits: what the grant holds on alpha, counted as changes come in. */
  private inbound: { bytes: number; entries: number } | undefined;
  /** With a scope: the directories walked entry by entry, where conflicts were looked for. */
  private readonly walked = new Set<string>();
  /** In a full pass: the subtrees found unchanged, each with the number of archived directories below it. */
  private unchangedTrees: Map<string, number> | undefined;
  /** The losing directory of the resolution being applied, and what was below it when the choice was checked. */
  private resolving: Resolving | undefined;

  constructor(
    private readonly options: SessionOptions,
    private readonly summary: Summary,
  ) {
    this.store = options.store;
    this.sessionId = options.session.id;
    this.scopeDirs = options.scope === undefined ? undefined : withAncestors(options.scope);
  }

  // The transfer queue for a file of this size, loaded with the first copy:
  // a sync with nothing to copy does not pay for loading p-queue.
  private async transferQueue(size: number): Promise<{ queue: PQueue; concurrency: number }> {
    const small = size <= SMALL_FILE;
    const concurrency = this.concurrency(small);
    let queue = small ? this.smallQueue : this.largeQueue;
    if (queue === undefined) {
      const { default: Queue } = await import('p-queue');
      const created = new Queue({ concurrency });
      queue = small ? (this.smallQueue ??= created) : (this.largeQueue ??= created);
    }
    return { queue, concurrency };
  }

  /**
   * Files staged at once through the queue (copies a target batches itself,
   * copyFrom, skip it). Between local directories small files are many and
   * cheap to hold, a large one holds a buffer while it is copied, so fewer
   * of those. Across a network, enough to fill the pipe.
   */
  private concurrency(small: boolean): number {
    if (this.options.concurrency !== undefined) return this.options.concurrency;
    if (!this.options.alpha.trusted || !this.options.beta.trusted) return 32;
    return small ? 64 : 8;
  }

  private endpoint(side: Side): Endpoint {
    return side === 'alpha' ? this.options.alpha : this.options.beta;
  }

  private emit(event: SyncEvent): void {
    this.options.onEvent?.(event);
  }

  async run(): Promise<void> {
    const { alpha, beta } = this.options;
    this.emit({ kind: 'scanning' });
    // Keep-both moves happen before the roots are listed, so the scan sees them.
    const resolutions = await this.applyKeepBoth();
    await Promise.all([alpha.prepare(), beta.prepare()]);
    await this.recoverIntents();
    const starts = this.options.scope === undefined || this.options.only !== undefined ? [''] : await this.startingPoints(this.options.scope);
    if (this.options.scope === undefined && this.options.only === undefined) this.unchangedTrees = await this.findUnchangedTrees();
    try {
      for (const start of starts) await this.walkFrom(start, resolutions);
    } catch (error) {
      // The batch being put in place finishes before the error is passed
      // on; the one being staged is dropped.
      await this.settling.catch(() => undefined);
      await this.abandon(this.transfers);
      throw error;
    }
    await this.flush();
    if (this.halt !== undefined) throw this.halt;
    await Promise.all([alpha.sweep(), beta.sweep()]);
    this.closeSettledConflicts();
  }

  // The directories a scoped pass starts from: the scope without what lies
  // below another of its directories, each moved up to the nearest directory
  // that is a directory on both sides and in the archive, all the way up
  // (so that a walk never starts below something that became a file or a
  // link). The root always qualifies.
  private async startingPoints(scope: readonly string[]): Promise<string[]> {
    let candidates = minimalDirs(scope);
    for (;;) {
      const settled = await Promise.all(candidates.map((dir) => this.settledDir(dir)));
      if (settled.every(Boolean)) return candidates;
      candidates = minimalDirs(candidates.map((dir, i) => (settled[i] === true ? dir : parentOf(dir))));
    }
  }

  private async settledDir(dir: string): Promise<boolean> {
    const chain: string[] = [];
    for (let d = dir; d !== ''; d = parentOf(d)) chain.push(d);
    if (chain.some((d) => this.store.archiveGet(this.sessionId, d)?.entry.kind !== 'dir')) return false;
    const inspect = (side: Side, path: string) =>
      this.endpoint(side)
        .inspect(path)
        .catch((error: unknown) => {
          if (error instanceof SessionHalt) throw error;
          return undefined;
        });
    const found = await Promise.all(chain.flatMap((d) => [inspect('alpha', d), inspect('beta', d)]));
    return found.every((entry) => entry?.kind === 'dir');
  }

  // The subtrees a full pass need not enter: every directory in them is
  // archived, had its listings recorded, and lists now with the same digests
  // on both sides (each entry lstat'ed, as the walk would), and no open
  // conflict lies below. One check of all directories at once spares the
  // walk a trip per directory. Maps each such directory to the number of
  // archived directories below it: the rows the walk would have counted.
  private async findUnchangedTrees(): Promise<Map<string, number> | undefined> {
    const { alpha, beta } = this.options;
    if (alpha.unchanged === undefined || beta.unchanged === undefined) return undefined;
    const recorded = checkedListings(this.store, this.sessionId);
    if (recorded === undefined) return undefined;
    const dirs = recorded.map((listing) => listing.dir);
    const { early } = this.options;
    // A check that fails leaves the walk to list each directory (and meet the error there).
    const check = (side: Side) =>
      side === 'alpha' && early !== undefined && sameListings(early.recorded, recorded)
        ? early.same
        : this.endpoint(side)
            .unchanged?.(dirs, recorded.map((listing) => listing[side]))
            ?.catch((error: unknown) => {
              if (error instanceof SessionHalt) throw error;
              return undefined;
            });
    const checks = Promise.all([check('alpha'), check('beta')]);
    const archived = this.store.archiveDirs(this.sessionId);
    const [onAlpha, onBeta] = await checks;
    if (onAlpha === undefined || onBeta === undefined) return undefined;
    const same = new Set(dirs.filter((_, i) => onAlpha[i] === true && onBeta[i] === true));
    // A directory is changed when it is, or anything below it is.
    const changed = new Set<string>();
    const markUp = (dir: string) => {
      for (let d = dir; d !== '' && !changed.has(d); d = parentOf(d)) changed.add(d);
    };
    for (const dir of archived) if (!same.has(dir)) markUp(dir);
    const conflicts = this.store.openConflicts(this.sessionId);
    for (const conflict of conflicts) markUp(parentOf(conflict.path));
    const trees = new Map<string, number>();
    for (const dir of archived) if (!changed.has(dir)) trees.set(dir, 0);
    for (const dir of trees.keys()) {
      for (let d = parentOf(dir); trees.has(d); d = parentOf(d)) trees.set(d, (trees.get(d) as number) + 1);
    }
    // The root too, when it lists as recorded on both sides, nothing below
    // it changed and no conflict is open: the pass has nothing to walk.
    if (same.has('') && changed.size === 0 && conflicts.length === 0) trees.set('', archived.length);
    return trees;
  }

  // Whether a child directory lies in agreement at the top of a subtree found unchanged.
  private unchangedTree(child: Child): boolean {
    return dirEverywhere(child) && this.unchangedTrees?.has(child.path) === true;
  }

  // Walks the tree below `start` ('' for the root), deciding row by row.
  private async walkFrom(start: string, resolutions: Map<string, Side>): Promise<void> {
    const unchanged = start === '' ? this.unchangedTrees?.get('') : undefined;
    if (unchanged !== undefined) {
      // The rows a walk would have counted: the directories, each in an unchanged subtree.
      this.summary.scanned += unchanged;
      return;
    }
    const fresh = start === '' && this.store.archiveEmpty(this.sessionId);
    const top = await this.descend(start, true, true, fresh ? undefined : this.store.listing(this.sessionId, start));
    if (top.alpha instanceof Error || top.beta instanceof Error || top.alpha === undefined || top.beta === undefined) {
      if (start === '') throw new SessionHalt(`unable to list a root: ${top.alpha instanceof Error ? top.alpha.message : top.beta instanceof Error ? top.beta.message : 'missing'}`);
      // Replaced since it was checked: the pass runs again and starts higher up.
      this.changed(start);
      return;
    }
    // A root whose listing was skipped matched a recorded listing in
    // agreement with a non-empty archive, so it is not empty.
    // For a file grant, the root is empty when its one file is gone: a guest
    // that deletes or renames it does not delete the host's.
    const only = this.options.only;
    const empty = (listing: Listing) =>
      start === '' && listing.complete && (only === undefined ? listing.items.every((item) => item.kind === 'unsupported') : !listing.items.some((item) => item.path === only && item.kind === 'file'));
    const reconciler = new Reconciler({
      resolutions,
      alphaEmpty: empty(top.alpha),
      betaEmpty: empty(top.beta),
      ...(only !== undefined ? { emptiedReason: (side: Side) => grantedFileGone(only, side) } : {}),
    });
    const window: PendingRow[] = [];
    let lastProgress = Date.now();
    const decide = async (row: PendingRow): Promise<void> => {
      if (row.hashes.length > 0) await Promise.all(row.hashes);
      await this.checkResolution(row, resolutions, reconciler);
      const ready: Row = {
        path: row.path,
        base: this.readOnlyBase(row),
        alpha: row.alpha,
        beta: row.beta,
        ...(row.refresh ? { refresh: true } : {}),
      };
      for (const decision of reconciler.push(ready)) await this.handle(decision);
    };

    const stack: Frame[] = [this.frame(start, top.alpha, top.beta)];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as Frame;
      if (frame.index >= frame.children.length) {
        this.finishFrame(frame);
        stack.pop();
        continue;
      }
      const i = frame.index++;
      const child = frame.children[i] as Child;
      let descent: Descent | undefined;
      if (this.entered(child)) {
        const pending = frame.descents.get(i);
        frame.descents.delete(i);
        this.prefetch(frame);
        descent = await (pending ?? this.descendInto(child));
      }
      // Never below a directory missing on a side: that directory's removal
      // (or conflict) is judged from every row below it, this one included.
      if (descent === undefined && stack.every((f) => f.alpha !== undefined && f.beta !== undefined) && this.held(child)) {
        // Left as it is on both sides, and its directory not recorded as checked.
        frame.quiet = false;
        this.summary.scanned++;
        this.summary.held++;
        this.heldPaths.push(child.path);
        continue;
      }
      const row: PendingRow = { path: child.path, base: child.base, alpha: undefined, beta: undefined, refresh: false, hashes: [] };
      for (const side of ['alpha', 'beta'] as const) {
        const item = child[side];
        const listing = descent?.[side];
        if (item === undefined) continue;
        if (listing instanceof Error) this.unlisted(row, side, listing);
        else this.observe(row, side, item, this.endpoint(side).trusted && child.base === undefined && child[otherSide(side)]?.kind !== 'file');
      }
      if (!this.quiet(row)) frame.quiet = false;
      this.summary.scanned += 1 + (descent === undefined && this.unchangedTree(child) ? (this.unchangedTrees?.get(child.path) ?? 0) : 0);
      if (window.length === 0 && row.hashes.length === 0) await decide(row);
      else {
        window.push(row);
        while (window.length > HASH_WINDOW) await decide(window.shift() as PendingRow);
      }
      if (descent !== undefined) {
        const a = descent.alpha instanceof Error ? undefined : descent.alpha;
        const b = descent.beta instanceof Error ? undefined : descent.beta;
        stack.push(this.frame(child.path, a, b));
      }
      if (Date.now() - lastProgress > 250) {
        lastProgress = Date.now();
        this.emit({ kind: 'progress', scanned: this.summary.scanned, copied: this.summary.copied.alpha + this.summary.copied.beta, bytes: this.summary.bytes });
      }
    }
    while (window.length > 0) await decide(window.shift() as PendingRow);
    for (const decision of reconciler.end()) await this.handle(decision);
  }

  // Whether a file changed on a side is to be left for a later pass
  // because it keeps changing (watch mode).
  private held(child: Child): boolean {
    const { settle } = this.options;
    if (settle === undefined) return false;
    return (['alpha', 'beta'] as const).some((side) => {
      const item = child[side];
      return item?.kind === 'file' && !unchangedFile(child.base, side, item) && settle.hold(side, child.path, item.digest, item.size);
    });
  }

  // The base a row is reconciled against. Under a read-only grant, beta's
  // entry stands in for the archive's wherever they differ: beta then looks
  // unchanged, and alpha's version (changed or not) is what goes to beta.
  private readOnlyBase(row: PendingRow): Entry | undefined {
    const base = row.base?.entry;
    if (this.options.readOnly !== true || sameEntry(row.beta, base)) return base;
    // A link or special file is never put back (nor synced): it is reported as unsupported instead.
    if (row.beta?.kind !== 'unsupported') this.actions.push({ kind: 'log', what: 'read-only', path: row.path, detail: `the guest changed ${row.path} (${describeEntry(row.beta)}) in a read-only grant; the host version is put back` });
    return row.beta;
  }

  // Whether the walk enters a child directory: always in a full pass; in a
  // scoped one only where something may have changed below it: a directory
  // new or gone on a side, or one in the scope or above it.
  private entered(child: Child): boolean {
    if (!descends(child) || this.unchangedTree(child)) return false;
    if (this.scopeDirs === undefined) return true;
    return !dirEverywhere(child) || this.scopeDirs.has(child.path);
  }

  // Lists a directory on the sides that hold it, asking each side to skip
  // its unchanged children when the directory's listings were recorded.
  private async descend(path: string, onAlpha: boolean, onBeta: boolean, recorded: { alpha: number; beta: number } | undefined): Promise<Descent> {
    const list = (side: Side, on: boolean, expect: number | undefined) =>
      on ? this.endpoint(side).list(path, expect).catch(asError) : Promise.resolve(undefined);
    const fast = recorded !== undefined && onAlpha && onBeta;
    let [alpha, beta] = await Promise.all([list('alpha', onAlpha, fast ? recorded.alpha : undefined), list('beta', onBeta, fast ? recorded.beta : undefined)]);
    // Children are skipped only when both sides are unchanged; otherwise the
    // side that skipped is listed again in full.
    const partial = (l: Listing | Error | undefined) => l !== undefined && !(l instanceof Error) && !l.complete;
    if (partial(alpha) && !partial(beta)) alpha = await list('alpha', true, undefined);
    if (partial(beta) && !partial(alpha)) beta = await list('beta', true, undefined);
    return { alpha, beta };
  }

  private descendInto(child: Child): Promise<Descent> {
    return this.descend(child.path, child.alpha?.kind === 'dir', child.beta?.kind === 'dir', dirEverywhere(child) ? this.store.listing(this.sessionId, child.path) : undefined);
  }

  private prefetch(frame: Frame): void {
    const ahead = this.options.alpha.trusted && this.options.beta.trusted ? PREFETCH_LOCAL : PREFETCH_REMOTE;
    while (frame.nextPrefetch < frame.dirs.length && frame.descents.size < ahead) {
      const i = frame.dirs[frame.nextPrefetch++] as number;
      if (i < frame.index) continue;
      frame.descents.set(i, this.descendInto(frame.children[i] as Child));
    }
  }

  private frame(path: string, alpha: Listing | undefined, beta: Listing | undefined): Frame {
    const skipped = alpha !== undefined && beta !== undefined && !alpha.complete && !beta.complete;
    const base = path === '' && this.store.archiveEmpty(this.sessionId) ? [] : this.store.archiveChildren(this.sessionId, path, skipped);
    let children = mergeChildren(alpha?.items ?? [], beta?.items ?? [], base);
    if (path === '' && this.options.only !== undefined) children = children.filter((child) => child.path === this.options.only && this.fileGranted(child));
    const dirs: number[] = [];
    children.forEach((child, i) => {
      if (this.entered(child)) dirs.push(i);
    });
    if (alpha?.complete === true && beta?.complete === true) this.walked.add(path);
    const frame: Frame = { path, children, index: 0, quiet: true, alpha, beta, descents: new Map(), dirs, nextPrefetch: 0 };
    this.prefetch(frame);
    return frame;
  }

  // A file grant holds one file: a directory in its place (the guest's, or
  // the host's) is not synced, and nothing else happens to the path, until
  // it is a file again. The row is left out, so neither side is touched.
  private fileGranted(child: Child): boolean {
    const side = (['alpha', 'beta'] as const).find((s) => child[s]?.kind === 'dir');
    if (side === undefined) return true;
    this.fail(child.path, new PathError(child.path, `${child.path} is a directory on ${side}, where a single file is granted; nothing is synced for it until it is a file again`));
    return false;
  }

  // Records the listing digests of a directory whose children all agree, so
  // the next scan can skip them while neither side changes.
  private finishFrame(frame: Frame): void {
    const { alpha, beta } = frame;
    if (!frame.quiet || alpha === undefined || beta === undefined || !alpha.complete || !beta.complete) return;
    const recorded = this.store.listing(this.sessionId, frame.path);
    if (recorded?.alpha === alpha.digest && recorded.beta === beta.digest) return;
    this.actions.push({ kind: 'listing', path: frame.path, alpha: alpha.digest, beta: beta.digest });
  }

  // A row is quiet when all three agree with no hashing: it can produce no decision.
  private quiet(row: PendingRow): boolean {
    if (row.base === undefined || row.alpha === undefined || row.beta === undefined || row.hashes.length > 0 || row.refresh) return false;
    return row.alpha.kind === row.base.entry.kind && row.beta.kind === row.base.entry.kind && row.base.entry.kind !== 'unsupported';
  }

  // A directory that could not be listed on one side holds its path this pass.
  private unlisted(row: PendingRow, side: Side, error: Error): void {
    if (error instanceof SessionHalt) this.halt ??= error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') this.unstable.set(`${side}:${row.path}`, new ChangedError(row.path, 'replaced while scanning'));
    this.setEntry(row, side, { kind: 'unsupported', reason: 'unreadable' });
  }

  // Turns a scanned item into the row's entry for `side`, hashing it when its
  // stamp differs from the archive's (the hash cache).
  //
  // A file with no archived version and no file on the other side is copied
  // (or conflicts) whatever its content: its hash is left to the copy, which
  // reads it anyway (`deferHash`).
  private observe(row: PendingRow, side: Side, item: ScanItem, deferHash: boolean): void {
    let entry: Entry;
    if (item.kind === 'dir') entry = DIR;
    else if (item.kind === 'unsupported') entry = { kind: 'unsupported', reason: item.reason ?? 'unreadable' };
    else {
      const base = row.base;
      if (unchangedFile(base, side, item)) {
        entry = { kind: 'file', size: item.size, hash: base.entry.hash, stamp: item.stamp, digest: item.digest };
      } else if (deferHash) {
        entry = { kind: 'file', size: item.size, hash: DEFERRED_HASH, stamp: item.stamp, digest: item.digest };
      } else {
        if (base !== undefined) row.refresh = true;
        row.hashes.push(
          this.endpoint(side)
            .hash(item)
            .then(
              (hash) => {
                this.setEntry(row, side, { kind: 'file', size: item.size, hash, stamp: item.stamp, digest: item.digest });
              },
              (error: unknown) => {
                // Not decidable this pass: an unreadable entry holds the path
                // (and any directory removal around it) still.
                this.unstable.set(`${side}:${row.path}`, asError(error));
                this.setEntry(row, side, { kind: 'unsupported', reason: 'unreadable' });
              },
            ),
        );
        return;
      }
    }
    this.setEntry(row, side, entry);
  }

  private setEntry(row: PendingRow, side: Side, entry: Entry): void {
    if (side === 'alpha') row.alpha = entry;
    else row.beta = entry;
  }

  private async handle(decision: Decision): Promise<void> {
    switch (decision.kind) {
      case 'agree': {
        const entry = decision.alpha;
        if (entry === undefined) this.actions.push({ kind: 'forget', path: decision.path });
        else {
          const digest = (e: Entry | undefined) => (e?.kind === 'file' ? e.digest : undefined);
          this.actions.push({ kind: 'put', path: decision.path, entry, alpha: digest(decision.alpha), beta: digest(decision.beta) });
        }
        this.summary.agreed++;
        break;
      }
      case 'conflict':
        this.detected.add(decision.conflict.path);
        this.actions.push({ kind: 'conflict', conflict: await this.withTrees(decision.conflict) });
        break;
      case 'unsupported': {
        const unstable = this.unstable.get(`${decision.side}:${decision.path}`);
        // Met changing while it was hashed: as for a copy that meets it changing.
        if (unstable !== undefined) this.fail(decision.path, unstable);
        else {
          this.summary.unsupported.push({ path: decision.path, side: decision.side, reason: decision.reason });
          this.emit({ kind: 'unsupported', path: decision.path, side: decision.side, reason: decision.reason });
        }
        break;
      }
      case 'op':
        await this.apply(decision.op);
        break;
    }
    if (
      this.transfers.length >= BATCH_FILES ||
      this.batchBytes >= BATCH_BYTES ||
      this.actions.length >= BATCH_ACTIONS ||
      (this.actions.length > 0 && Date.now() - this.batchStarted > BATCH_MS)
    ) {
      await this.endBatch();
    }
    if (this.halt !== undefined) {
      await this.flush();
      throw this.halt;
    }
  }

  // A path that changed while it was synced: the pass runs again for it.
  private changed(path: string): void {
    this.summary.retried++;
    this.changing.add(path);
  }

  private fail(path: string, error: Error): void {
    if (error instanceof SessionHalt) {
      // The other side's channel ended (a violation, a lost connection): the
      // session stops after what is already done is recorded.
      this.halt ??= error;
      return;
    }
    if (error instanceof ChangedError) {
      this.options.settle?.busy(path);
      this.changed(path);
      return;
    }
    reportFailure(this.summary, this.options, path, error instanceof FerryError ? error.message : `${path}: ${error.message}`);
  }

  // Whether a change coming to alpha from beta stays within the grant's
  // limits; when not, that path fails and the audit log says why.
  private withinLimits(op: Op): boolean {
    const limits = this.options.limits;
    if (limits === undefined || op.to !== 'alpha' || op.kind === 'remove') return true;
    this.inbound ??= this.store.archiveTotals(this.sessionId);
    const size = op.kind === 'copy' ? op.entry.size : 0;
    // A replaced file gives back its own size; a new entry counts one more.
    const replaced = op.expect?.kind === 'file' ? op.expect.size : 0;
    const added = op.expect === undefined ? 1 : 0;
    let problem: string | undefined;
    if (size > limits.maxFileBytes) problem = `${op.path} is ${size} bytes, more than the grant's largest file (${limits.maxFileBytes} bytes)`;
    else if (this.inbound.bytes + size - replaced > limits.maxTotalBytes) problem = `${op.path} would bring the grant past its ${limits.maxTotalBytes} bytes in all`;
    else if (this.inbound.entries + added > limits.maxEntries) problem = `${op.path} would bring the grant past its ${limits.maxEntries} entries`;
    if (problem === undefined) {
      this.inbound.bytes += size - replaced;
      this.inbound.entries += added;
      return true;
    }
    // Marked as logged when its batch is recorded (commit), not before: a batch dropped unrecorded logs it again.
    const detail = `limit hit: ${problem}; not applied on the host`;
    if (this.options.logOnce?.has(detail) !== true) this.actions.push({ kind: 'log', what: 'limit', path: op.path, detail });
    this.fail(op.path, new PathError(op.path, detail));
    return false;
  }

  // Checks a staged copy against the entry the walk decided on. The source
  // was checked against its scanned stamp as it was read, so a deferred hash
  // is the one the copy computed.
  private async checkStaged(op: Extract<Op, { kind: 'copy' }>, source: Endpoint, target: Endpoint, staged: Staged): Promise<Staged> {
    if (staged.size === op.entry.size && (op.entry.hash === DEFERRED_HASH || staged.hash === op.entry.hash)) return staged;
    await target.discard(staged);
    // A trusted source that changed under the copy is rescanned; a guest
    // that sends other bytes than it announced is lying.
    if (!source.trusted) {
      const reason = `it sent content for ${op.path} that does not match the ${staged.size === op.entry.size ? 'hash' : 'size'} it announced`;
      throw source.distrust?.(reason) ?? new SessionHalt(`the guest (${source.label}) ${reason}; nothing more from it was applied`);
    }
    throw new ChangedError(op.path, 'the source changed during the transfer');
  }

  // Records a change the walk is about to make, for the batch that records its outcome.
  private announce(side: Side, path: string, op: 'mkdir' | 'remove'): void {
    this.store.putIntent(this.sessionId, side, path, op);
    this.intents.push({ side, path });
  }

  private async apply(op: Op): Promise<void> {
    const target = this.endpoint(op.to);
    if (!this.withinLimits(op)) return;
    switch (op.kind) {
      case 'copy': {
        const source = this.endpoint(otherSide(op.to));
        const slot = this.actions.push(null) - 1;
        // A copy the target makes itself (small files between local trees) is
        // gathered into native batches there: it needs no transfer queue.
        let direct: Promise<Staged> | undefined;
        try {
          direct = target.copyFrom?.(source, op.path, op.entry);
        } catch (error) {
          direct = Promise.reject(asError(error));
        }
        let staged: Promise<Staged>;
        if (direct !== undefined) staged = direct.then((s) => this.checkStaged(op, source, target, s));
        else {
          const { queue, concurrency } = await this.transferQueue(op.entry.size);
          if (queue.size > 4 * concurrency) await queue.onSizeLessThan(2 * concurrency);
          staged = queue.add(async () => this.checkStaged(op, source, target, await target.stage(op.path, source.read(op.path, op.entry), op.entry.size)));
        }
        const staging = staged.catch(asError);
        this.transfers.push({ op, staging, slot });
        this.batchBytes += op.entry.size;
        this.touched.add(op.to);
        return;
      }
      case 'mkdir':
        try {
          this.announce(op.to, op.path, 'mkdir');
          await target.mkdir(op.path, op.expect);
          this.touched.add(op.to);
          this.actions.push({ kind: 'put', path: op.path, entry: DIR, alpha: undefined, beta: undefined });
          this.summary.dirsCreated[op.to]++;
        } catch (error) {
          this.fail(op.path, error as Error);
        }
        return;
      case 'remove':
        try {
          this.announce(op.to, op.path, 'remove');
          if (op.expect.kind === 'file') await target.removeFile(op.path, op.expect);
          else await this.removeTree(target, op.path);
          this.touched.add(op.to);
          this.actions.push({ kind: 'forget-tree', path: op.path });
          this.summary.removed[op.to]++;
        } catch (error) {
          this.touched.add(op.to);
          this.fail(op.path, error as Error);
        }
        return;
    }
  }

  // Removes a directory tree from one side, entry by entry, each of which
  // must still match the archive: an entry created or changed since the last
  // sync stops the removal (ChangedError) and is rescanned.
  private async removeTree(target: Endpoint, path: string): Promise<void> {
    let listing: Listing;
    try {
      listing = await target.list(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    // A read-only grant puts the guest's copy back: what the guest created or
    // changed below goes too, each entry as it is listed now.
    const putBack = this.options.readOnly === true && target.side === 'beta';
    for (const item of listing.items) {
      const base = this.store.archiveGet(this.sessionId, item.path);
      if (putBack && (base === undefined || base.entry.kind !== item.kind || item.kind === 'file')) {
        if (item.kind === 'dir') await this.removeTree(target, item.path);
        else if (item.kind === 'file') await target.removeFile(item.path, { kind: 'file', size: item.size, hash: await target.hash(item), stamp: item.stamp });
        else throw new PathError(item.path, `${item.path}: ${describeUnsupported(item.reason ?? 'special')} in the guest's copy of a read-only grant, which ferry does not remove; the directory stays`);
        continue;
      }
      if (base === undefined) throw new ChangedError(item.path, 'created since the last sync');
      if (item.kind === 'dir' && base.entry.kind === 'dir') {
        await this.removeTree(target, item.path);
      } else if (item.kind === 'file' && base.entry.kind === 'file') {
        if (item.size !== base.entry.size) throw new ChangedError(item.path, 'modified since the last sync');
        if (item.digest !== sideDigest(base, target.side) && (await target.hash(item)) !== base.entry.hash) throw new ChangedError(item.path, 'modified since the last sync');
        await target.removeFile(item.path, { ...base.entry, stamp: item.stamp });
      } else {
        throw new ChangedError(item.path, 'changed type since the last sync');
      }
    }
    await target.removeDir(path);
  }

  /** flush ends the batch and waits until every batch is settled. */
  private async flush(): Promise<void> {
    await this.endBatch();
    await this.settling;
  }

  /**
   * endBatch hands the batch over to be settled while the walk goes on and
   * stages the next one: one batch at a time is settled, in order, so the
   * archive is committed in the order the walk decided.
   */
  private async endBatch(): Promise<void> {
    const batch: Batch = { transfers: this.transfers, actions: this.actions, touched: this.touched, intents: this.intents };
    this.transfers = [];
    this.intents = [];
    this.actions = [];
    this.touched = new Set();
    this.batchBytes = 0;
    this.batchStarted = Date.now();
    try {
      await this.settling;
    } catch (error) {
      await this.abandon(batch.transfers);
      throw error;
    }
    const settling = this.settle(batch);
    // Awaited by the next endBatch or flush, which pass its error on.
    settling.catch(() => undefined);
    this.settling = settling;
  }

  // Removes the files a batch staged that will never be put in place.
  private async discardStaged(transfers: readonly Transfer[], staged: readonly (Staged | Error)[]): Promise<void> {
    await Promise.all(
      transfers.map(async (t, i) => {
        const result = staged[i];
        if (result !== undefined && !(result instanceof Error)) await this.endpoint(t.op.to).discard(result).catch(() => undefined);
      }),
    );
  }

  // A batch that will not be settled (the session failed first): once its
  // stagings end, what they staged is removed.
  private async abandon(transfers: readonly Transfer[]): Promise<void> {
    await this.discardStaged(transfers, await Promise.all(transfers.map((t) => t.staging)));
  }

  /** settle puts a batch in place: barrier, renames, barrier, then one archive transaction. */
  private async settle({ transfers, actions, touched, intents }: Batch): Promise<void> {
    const staged = await Promise.all(transfers.map((t) => t.staging));
    // A side that lied or went away while this batch was staged: none of the
    // batch's copies is put in place.
    if (this.halt === undefined) staged.forEach((result) => result instanceof SessionHalt && (this.halt ??= result));
    if (this.halt !== undefined) {
      await this.discardStaged(transfers, staged);
      if (touched.size > 0) await this.barrier(touched);
      this.commit(
        actions.map((action, i) => (transfers.some((t) => t.slot === i) ? null : action)),
        intents,
      );
      return;
    }
    try {
      if (transfers.length > 0) await this.barrier(new Set(transfers.map((t) => t.op.to)));
      // Announce the renames before making them, so that a crash between the
      // renames and the archive commit below is recognised by the next sync.
      const copies: CopyIntent[] = [];
      transfers.forEach((t, i) => {
        const result = staged[i];
        if (result !== undefined && !(result instanceof Error)) copies.push({ side: t.op.to, path: t.op.path, size: result.size, hash: result.hash });
      });
      this.store.transaction(() => this.store.putCopyIntents(this.sessionId, copies));
    } catch (error) {
      await this.discardStaged(transfers, staged);
      throw error;
    }
    const commits = await this.commitTransfers(transfers, staged);
    transfers.forEach((transfer, i) => {
      const committed = commits[i] as CommitResult | Error;
      const { op } = transfer;
      if (committed instanceof Error) {
        this.fail(op.path, committed);
        return;
      }
      const sourceDigest = op.entry.digest;
      const result = staged[i] as Staged;
      actions[transfer.slot] = {
        kind: 'put',
        path: op.path,
        entry: { kind: 'file', size: result.size, hash: result.hash },
        alpha: op.to === 'alpha' ? committed.digest : sourceDigest,
        beta: op.to === 'beta' ? committed.digest : sourceDigest,
      };
      this.summary.copied[op.to]++;
      this.summary.bytes += op.entry.size;
      this.options.settle?.busy(op.path, otherSide(op.to));
      if (committed.strippedExec) {
        this.summary.execStripped++;
        actions.push({ kind: 'log', what: 'exec-stripped', path: op.path, detail: `exec bits cleared on ${op.to}: the new content came from ${otherSide(op.to)}` });
      }
    });
    if (touched.size > 0 || transfers.length > 0) await this.barrier(new Set([...touched, ...transfers.map((t) => t.op.to)]));
    this.commit(actions, intents);
  }

  /**
   * commitTransfers puts a batch's staged files in place. They are
   * independent (one per path), so they are issued together: over SSH that
   * is one round trip, not one per file; new files on a side that can go in
   * one call per side. An untrusted side (the guest) commits first: if it
   * breaks its protocol doing so, nothing of the batch lands on the trusted
   * side either. Content reaching alpha (the host) from beta (the guest)
   * never brings exec bits.
   */
  private async commitTransfers(transfers: readonly Transfer[], staged: readonly (Staged | Error)[]): Promise<(CommitResult | Error)[]> {
    const out: (CommitResult | Error)[] = new Array<CommitResult | Error>(transfers.length);
    const waiting = transfers.map((_, i) => i).filter((i) => !(staged[i] instanceof Error));
    for (const i of transfers.keys()) if (staged[i] instanceof Error) out[i] = staged[i];
    const untrusted = waiting.filter((i) => !this.endpoint((transfers[i] as Transfer).op.to).trusted);
    await this.commitGroup(untrusted, transfers, staged, out);
    const halt = untrusted.map((i) => out[i]).find((result) => result instanceof SessionHalt);
    const trusted = waiting.filter((i) => this.endpoint((transfers[i] as Transfer).op.to).trusted);
    if (halt === undefined) await this.commitGroup(trusted, transfers, staged, out);
    else {
      for (const i of trusted) out[i] = halt;
      await Promise.all(trusted.map((i) => this.endpoint((transfers[i] as Transfer).op.to).discard(staged[i] as Staged).catch(() => undefined)));
    }
    return out;
  }

  private async commitGroup(indices: readonly number[], transfers: readonly Transfer[], staged: readonly (Staged | Error)[], out: (CommitResult | Error)[]): Promise<void> {
    const fresh = new Map<Side, number[]>();
    const pending: Promise<void>[] = [];
    for (const i of indices) {
      const { op } = transfers[i] as Transfer;
      const target = this.endpoint(op.to);
      if (op.expect === undefined && target.commitNew !== undefined) {
        const list = fresh.get(op.to);
        if (list === undefined) fresh.set(op.to, [i]);
        else list.push(i);
        continue;
      }
      pending.push(
        target.commit(staged[i] as Staged, op.expect, { stripExec: op.to === 'alpha' }).then(
          (committed) => void (out[i] = committed),
          (error: unknown) => void (out[i] = asError(error)),
        ),
      );
    }
    for (const [side, list] of fresh) {
      const files = list.map((i) => staged[i] as Staged);
      pending.push(
        (this.endpoint(side).commitNew?.(files) ?? Promise.reject(new Error(`${side} cannot commit new files together`))).then(
          (results) => list.forEach((i, k) => (out[i] = results[k] ?? new Error('no outcome was given for this file'))),
          (error: unknown) => list.forEach((i) => (out[i] = asError(error))),
        ),
      );
    }
    await Promise.all(pending);
  }

  private async barrier(sides: Set<Side>): Promise<void> {
    await Promise.all([...sides].map((side) => this.endpoint(side).barrier()));
  }

  private commit(actions: (Action | null)[], intents: readonly IntentKey[]): void {
    const store = this.store;
    const session = this.sessionId;
    const conflicts: { id: number; path: string; reason: string; isNew: boolean }[] = [];
    store.transaction(() => {
      for (const action of actions) {
        if (action === null) continue;
        switch (action.kind) {
          case 'put':
            store.archivePut(session, action.path, action.entry, action.alpha, action.beta);
            break;
          case 'forget':
            store.archiveDelete(session, action.path);
            break;
          case 'forget-tree':
            store.archiveDeleteSubtree(session, action.path);
            break;
          case 'conflict': {
            const c = action.conflict;
            const { id, isNew } = store.recordConflict(session, c.path, c.reason, c.base, c.alpha, c.beta, c.blocked === true);
            if (isNew) store.log('conflict', session, c.path, c.reason);
            conflicts.push({ id, path: c.path, reason: c.reason, isNew });
            break;
          }
          case 'log':
            store.log(action.what, session, action.path, action.detail);
            if (action.what === 'limit' && this.options.logOnce !== undefined) {
              if (this.options.logOnce.size >= LOG_ONCE_MAX) this.options.logOnce.clear();
              this.options.logOnce.add(action.detail);
            }
            break;
          case 'listing':
            store.putListing(session, action.path, action.alpha, action.beta);
            break;
        }
      }
      // Every change of this batch is made and recorded (or failed). The
      // walk may have announced changes of the next batch meanwhile: those stay.
      store.clearBatchIntents(session, intents);
    });
    for (const c of conflicts) {
      this.summary.conflicts.push({ id: c.id, path: c.path, reason: c.reason });
      if (c.isNew) this.emit({ kind: 'conflict', id: c.id, path: c.path, reason: c.reason });
    }
  }

  // Records the outcome of changes a crashed sync announced but did not
  // record: a copy whose content is in place, a directory that exists, a
  // removal that happened. Without this, the next change to such a path
  // would look like a change on both sides.
  private async recoverIntents(): Promise<void> {
    const intents = this.store.intents(this.sessionId);
    if (intents.length === 0) return;
    const found = await Promise.all(intents.map((intent) => this.endpoint(intent.side).inspect(intent.path).catch(() => null)));
    this.store.transaction(() => {
      intents.forEach((intent, i) => {
        const now = found[i];
        if (now === null) return;
        if (intent.op === 'copy' && intent.file !== undefined && now?.kind === 'file' && now.hash === intent.file.hash && now.size === intent.file.size) {
          this.store.archivePut(this.sessionId, intent.path, intent.file, undefined, undefined);
        } else if (intent.op === 'mkdir' && now?.kind === 'dir') {
          this.store.archivePut(this.sessionId, intent.path, DIR, undefined, undefined);
        } else if (intent.op === 'remove' && now === undefined) {
          this.store.archiveDeleteSubtree(this.sessionId, intent.path);
        } else return;
        this.store.log('recovered', this.sessionId, intent.path, `${intent.op} on ${intent.side} made by an interrupted sync`);
      });
      this.store.clearIntents(this.sessionId);
    });
  }

  // Applies the `--keep both` resolutions before the scan: the beta version is
  // moved aside to its conflict name on beta, and the archive forgets the
  // path, so this pass copies each version to the other side. Returns the
  // alpha/beta resolutions for the reconciler.
  private async applyKeepBoth(): Promise<Map<string, Side>> {
    const winners = new Map<string, Side>();
    for (const conflict of this.store.openConflicts(this.sessionId)) {
      if (conflict.state !== 'pending' || conflict.resolution === null) continue;
      if (conflict.resolution !== 'both') {
        if (await this.loserUnchanged(conflict, conflict.resolution)) winners.set(conflict.path, conflict.resolution);
        continue;
      }
      // A file grant holds one name: the copy beside it would be outside the grant on both sides.
      if (this.options.only !== undefined) {
        this.dropResolution(
          conflict,
          `${conflict.path}: \`ferry resolve ${conflict.id} --keep both\` cannot be applied in a grant of a single file, whose copy beside it would be outside the grant; the conflict stands: keep host or guest (copy the other version aside first if you need it)`,
        );
        continue;
      }
      const beta = this.options.beta;
      try {
        if (conflict.beta !== undefined && conflict.beta.kind !== 'unsupported') {
          const now = new Date();
          let copyPath = conflictCopyPath(conflict.path, 'beta', now);
          for (let attempt = 1; attempt < 100 && (await this.exists(copyPath)); attempt++) copyPath = conflictCopyPath(conflict.path, 'beta', now, attempt);
          await beta.move(conflict.path, copyPath, conflict.beta);
          await beta.barrier();
          this.store.log('conflict-copy', this.sessionId, conflict.path, `beta version kept as ${copyPath}`);
        }
        this.store.transaction(() => {
          this.store.archiveDeleteSubtree(this.sessionId, conflict.path);
          this.store.setConflictState(conflict.id, 'resolved', 'both');
          this.store.log('resolved', this.sessionId, conflict.path, 'kept both versions');
        });
        this.summary.resolved.push({ id: conflict.id, path: conflict.path, keep: 'both' });
        this.emit({ kind: 'resolved', id: conflict.id, path: conflict.path, keep: 'both' });
      } catch (error) {
        this.fail(conflict.path, error as Error);
      }
    }
    return winners;
  }

  // A choice is checked again as the walk reaches its path, against what
  // the loser holds now: the loser may have changed since the pass checked
  // it at its start. Below a losing directory, each entry must be one that
  // was there at that moment; one that appeared or changed since stops the
  // choice there (what was removed already was the user's choice), and the
  // conflict stands.
  private async checkResolution(row: PendingRow, resolutions: Map<string, Side>, reconciler: Reconciler): Promise<void> {
    if (this.resolving !== undefined && !isWithin(row.path, this.resolving.path)) this.resolving = undefined;
    // A row the reconciler will not decide (below a skipped or pending directory) applies no choice.
    if (reconciler.undecided(row.path)) return;
    const winner = resolutions.get(row.path);
    if (winner !== undefined) {
      const conflict = this.store.liveConflict(this.sessionId, row.path);
      const seen = new Map<string, string>();
      if (conflict === undefined || conflict.resolution !== winner || !(await this.loserUnchanged(conflict, winner, seen))) resolutions.delete(row.path);
      // Inside a losing directory already tracked, that one's check covers this path too.
      else if (conflict[otherSide(winner)]?.kind === 'dir' && this.resolving === undefined) this.resolving = { path: row.path, conflict, winner, seen };
      return;
    }
    const resolving = this.resolving;
    if (resolving === undefined) return;
    const loser = otherSide(resolving.winner);
    const entry = row[loser];
    const key = entry === undefined || entry.kind === 'unsupported' ? undefined : entryKey(entry);
    if (key === undefined || key === resolving.seen.get(row.path)) return;
    this.resolving = undefined;
    reconciler.abandon(resolving.path);
    this.dropChoice(resolving.conflict, resolving.winner, `${row.path} is ${describeEntry(entry)} that was not there when the choice was checked`, 'what the choice removed before that is gone, the rest is left as it is');
  }

  // A choice of `--keep alpha|beta` stands for the versions it was made
  // on. When the losing side changed since the conflict was last seen (an
  // edit made after the choice), nothing is overwritten: the choice is
  // dropped, the conflict stands, and the user is told to choose again.
  // Only the kind of a directory is compared: what changed inside one is
  // not known here.
  private async loserUnchanged(conflict: ConflictRecord, winner: Side, seen?: Map<string, string>): Promise<boolean> {
    const loser = otherSide(winner);
    const recorded = conflict[loser];
    const now = await this.endpoint(loser)
      .inspect(conflict.path)
      .catch((error: unknown) => asError(error));
    let found = now instanceof Error ? `could not be read (${now.message})` : `is now ${describeEntry(now)}`;
    if (!(now instanceof Error) && sameEntry(now, recorded)) {
      // A directory goes with everything in it: only if it holds just what the conflict showed.
      if (recorded?.kind !== 'dir') return true;
      const tree = await this.treeDigest(loser, conflict.path, seen).catch(() => undefined);
      if (recorded.tree !== undefined && tree === recorded.tree) return true;
      found = recorded.tree === undefined ? 'is a directory whose contents ferry had not recorded' : 'is a directory whose contents changed';
    }
    this.dropChoice(conflict, winner, `it ${found}`, 'nothing that changed was overwritten');
    return false;
  }

  // Drops a choice the loser changed after: the conflict stands, and the user is told to choose again.
  private dropChoice(conflict: ConflictRecord, winner: Side, found: string, outcome: string): void {
    this.dropResolution(conflict, `${conflict.path}: ${otherSide(winner)} changed after \`ferry resolve ${conflict.id} --keep ${winner}\` was chosen (${found}); ${outcome}, and the conflict stands: choose again`);
  }

  // Drops a choice that will not be applied, saying why: the conflict is open again.
  private dropResolution(conflict: ConflictRecord, message: string): void {
    this.store.transaction(() => {
      this.store.setConflictState(conflict.id, 'open', null);
      this.store.log('resolution-dropped', this.sessionId, conflict.path, message);
    });
    reportFailure(this.summary, this.options, conflict.path, message);
  }

  // A conflict with, for each side that holds a directory there, a digest
  // of what is below it (see loserUnchanged). Not for one with a choice
  // made: its record stays as it was then (see Store.recordConflict).
  private async withTrees(conflict: Conflict): Promise<Conflict> {
    if (conflict.blocked !== true && this.store.liveConflict(this.sessionId, conflict.path)?.state === 'pending') return conflict;
    let out = conflict;
    for (const side of ['alpha', 'beta'] as const) {
      if (conflict[side]?.kind !== 'dir') continue;
      const tree = await this.treeDigest(side, conflict.path).catch(() => undefined);
      if (tree !== undefined) out = { ...out, [side]: { kind: 'dir', tree } };
    }
    return out;
  }

  // A digest of everything below a directory on a side, depth first: each
  // file's path, size, inode and mtime, and each directory's path. Entries
  // ferry never syncs (links, special files) are left out, so removing
  // them (as a blocked resolution asks) keeps the digest; so is a change of
  // mode. A subdirectory that cannot be listed counts as such.
  private async treeDigest(side: Side, path: string, seen?: Map<string, string>): Promise<string> {
    const hash = createHash('sha256');
    const walk = async (dir: string, top: boolean): Promise<void> => {
      let listing: Listing;
      try {
        listing = await this.endpoint(side).list(dir);
      } catch (error) {
        if (top) throw error;
        hash.update(`${dir}\0unlisted\0`);
        return;
      }
      hash.update(`${dir}\0dir\0`);
      for (const item of listing.items) {
        if (item.kind !== 'unsupported') seen?.set(item.path, entryKey(item));
        if (item.kind === 'dir') await walk(item.path, false);
        else if (item.kind === 'file') hash.update(`${item.path}\0file\0${item.size}\0`).update(item.stamp.subarray(8, 32));
      }
    };
    await walk(path, true);
    return hash.digest('hex').slice(0, 16);
  }

  private async exists(path: string): Promise<boolean> {
    return (await this.options.alpha.exists(path)) || (await this.options.beta.exists(path));
  }

  // After a clean pass, a conflict that was not detected again is over: a
  // pending resolution was applied, or the two sides came to agree by themselves.
  private closeSettledConflicts(): void {
    if (this.changing.size > 0 || this.summary.failures.length > 0) return;
    for (const conflict of this.store.openConflicts(this.sessionId)) {
      if (this.detected.has(conflict.path)) continue;
      // A held file was not looked at: its conflict (or one above it) stands.
      if (this.heldPaths.some((path) => isWithin(path, conflict.path))) continue;
      // A scoped pass only judges the conflicts in the directories it read entry by entry.
      if (this.scopeDirs !== undefined && !this.walked.has(parentOf(conflict.path))) continue;
      if (conflict.state === 'pending' && conflict.resolution !== null) {
        this.store.transaction(() => {
          this.store.setConflictState(conflict.id, 'resolved', conflict.resolution);
          this.store.log('resolved', this.sessionId, conflict.path, `kept ${conflict.resolution}`);
        });
        this.summary.resolved.push({ id: conflict.id, path: conflict.path, keep: conflict.resolution ?? '' });
        this.emit({ kind: 'resolved', id: conflict.id, path: conflict.path, keep: conflict.resolution ?? '' });
      } else if (conflict.state === 'open') {
        this.store.transaction(() => {
          this.store.setConflictState(conflict.id, 'vanished', null);
          this.store.log('conflict-vanished', this.sessionId, conflict.path, 'the two sides agree again');
        });
      }
    }
  }
}

