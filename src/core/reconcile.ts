/**
 * Reconciliation: a pure function of (archive, alpha, beta) that decides, path
 * by path, what to copy, create, remove, record, or halt as a conflict.
 *
 * It streams: the caller merges the three path-sorted streams (archive, alpha
 * scan, beta scan) into `Row`s in depth-first order (see `comparePaths`) and
 * pushes them one at a time. Memory does not grow with the tree: the only
 * state kept is the one open scope (a subtree being skipped or a directory
 * deletion being checked) and the active resolution.
 */

import { SessionHalt } from './errors.js';
import { isWithin } from './path.js';
import {
  DIR,
  type Entry,
  type FileEntry,
  type Side,
  type UnsupportedReason,
  describeEntry,
  otherSide,
  sameEntry,
} from './entry.js';

/** Row is one path with the archive's entry (base) and both sides' entries. */
export interface Row {
  readonly path: string;
  readonly base: Entry | undefined;
  readonly alpha: Entry | undefined;
  readonly beta: Entry | undefined;
  /** Set when a side's stamp differs from the archive's, so an agreement should be re-recorded. */
  readonly refresh?: boolean;
}

/** Op is one change to apply to one side. */
export type Op =
  /** Create or replace the file at path on `to` with `entry` from the other side. */
  | { readonly kind: 'copy'; readonly to: Side; readonly path: string; readonly entry: FileEntry; readonly expect: Entry | undefined }
  /** Create a directory at path on `to`, replacing the file `expect` if there is one. */
  | { readonly kind: 'mkdir'; readonly to: Side; readonly path: string; readonly expect: Entry | undefined }
  /** Remove the file or the whole directory at path on `to`; everything removed must still match the archive. */
  | { readonly kind: 'remove'; readonly to: Side; readonly path: string; readonly expect: Entry };

/** Conflict is a path (and its subtree) that changed on both sides and stops syncing until resolved. */
export interface Conflict {
  readonly path: string;
  /** A sentence for people: what happened on each side. */
  readonly reason: string;
  readonly base: Entry | undefined;
  readonly alpha: Entry | undefined;
  readonly beta: Entry | undefined;
  /** A resolution already chosen was applied in part: what is left is now what the choice stands for. */
  readonly blocked?: true;
}

/** Decision is one outcome of reconciliation, in path order. */
export type Decision =
  | { readonly kind: 'op'; readonly op: Op }
  /** Both sides hold `entry` (or both lack the path): record it in the archive. */
  | { readonly kind: 'agree'; readonly path: string; readonly alpha: Entry | undefined; readonly beta: Entry | undefined }
  | { readonly kind: 'conflict'; readonly conflict: Conflict }
  | { readonly kind: 'unsupported'; readonly path: string; readonly side: Side; readonly reason: UnsupportedReason };

/** ReconcileOptions carries resolved conflicts and what each root held when listed. */
export interface ReconcileOptions {
  /** Resolved conflicts: each path maps to the side that wins it and its subtree. */
  readonly resolutions?: ReadonlyMap<string, Side>;
  /** The alpha root held nothing that can be synced. */
  readonly alphaEmpty?: boolean;
  /** The beta root held nothing that can be synced. */
  readonly betaEmpty?: boolean;
  /** Why a removal caused by an empty root halts, when not massDeletionReason (a file grant's file gone). */
  readonly emptiedReason?: (side: Side) => string;
}

// A directory on side `to` whose removal is pending until its subtree has been
// seen: it is removed only if nothing below it changed since the archive.
interface PendingRemoval {
  readonly path: string;
  readonly to: Side;
  readonly row: Row;
  /** What the other side now holds at path (absent, or a file replacing the directory). */
  readonly replacement: FileEntry | undefined;
  clean: boolean;
}

// A directory of the losing side of a resolution, removed once everything
// below it has been removed entry by entry.
interface ResolvedRemoval {
  readonly path: string;
  readonly to: Side;
  readonly row: Row;
  readonly replacement: FileEntry | undefined;
  /** Something below cannot be removed by ferry (a symlink, a special file). */
  blocked: boolean;
}

/** MassDeletionHalt stops a session whose root was emptied wholesale, before anything is deleted on the other side. */
export class MassDeletionHalt extends SessionHalt {}

/** massDeletionReason explains why a session halted when `side`'s root is empty. */
export function massDeletionReason(side: Side): string {
  const other = otherSide(side);
  return `the ${side} root is empty although the two sides were in sync before; refusing to propagate a mass deletion to ${other}. If the files were deleted on purpose, delete them on ${other} too; if the ${side} disk is not mounted, mount it and sync again`;
}

/** Reconciler decides rows pushed in depth-first path order. */
export class Reconciler {
  private skip: string | undefined;
  private pending: PendingRemoval | undefined;
  private readonly resolutions: { path: string; winner: Side }[] = [];
  private readonly resolvedRemovals: ResolvedRemoval[] = [];

  constructor(private readonly options: ReconcileOptions = {}) {}

  /**
   * push decides one row; rows must arrive in strictly increasing
   * `comparePaths` order. Throws MassDeletionHalt before emitting a removal
   * that an emptied root would cause.
   */
  push(row: Row): Decision[] {
    const out: Decision[] = [];
    if (this.pending !== undefined && !isWithin(row.path, this.pending.path)) this.finishPending(out);
    this.finishResolvedRemovals(row.path, out);
    if (this.skip !== undefined && !isWithin(row.path, this.skip)) this.skip = undefined;
    if (this.skip !== undefined) return out;

    while (this.resolutions.length > 0 && !isWithin(row.path, (this.resolutions[this.resolutions.length - 1] as { path: string }).path)) this.resolutions.pop();
    const winner = this.options.resolutions?.get(row.path);
    if (winner !== undefined) this.resolutions.push({ path: row.path, winner });
    const resolution = this.resolutions[this.resolutions.length - 1];
    // A resolved path is reconciled as if the losing side had not changed:
    // its current content becomes the base, so the winner's version flows.
    const base = resolution === undefined ? row.base : resolution.winner === 'alpha' ? row.beta : row.alpha;

    if (this.pending !== undefined) {
      // Below a directory the other side removed: that side holds nothing
      // here, so the directory may go only if this side kept its base.
      const keeper = this.pending.to === 'alpha' ? row.alpha : row.beta;
      if (!sameEntry(keeper, base)) this.pending.clean = false;
      return out;
    }

    const { alpha, beta } = row;
    if (alpha?.kind === 'unsupported' || beta?.kind === 'unsupported') {
      // Every resolved removal still open is an ancestor of this row.
      for (const removal of this.resolvedRemovals) removal.blocked = true;
      if (alpha?.kind === 'unsupported') out.push({ kind: 'unsupported', path: row.path, side: 'alpha', reason: alpha.reason });
      if (beta?.kind === 'unsupported') out.push({ kind: 'unsupported', path: row.path, side: 'beta', reason: beta.reason });
      this.skip = row.path;
      return out;
    }

    if (sameEntry(alpha, beta)) {
      // Agreement is recorded against the archive itself, resolved or not.
      if (!sameEntry(row.base, alpha) || row.refresh === true) out.push({ kind: 'agree', path: row.path, alpha, beta });
      return out;
    }

    const alphaChanged = !sameEntry(alpha, base);
    const betaChanged = !sameEntry(beta, base);
    if (alphaChanged && betaChanged) {
      out.push({ kind: 'conflict', conflict: { path: row.path, reason: conflictReason(base, alpha, beta), base, alpha, beta } });
      this.skip = row.path;
      return out;
    }

    // Exactly one side changed (they differ, so not neither).
    const from: Side = alphaChanged ? 'alpha' : 'beta';
    const to = otherSide(from);
    const source = from === 'alpha' ? alpha : beta;
    const target = to === 'alpha' ? alpha : beta;
    this.propagate(row, to, source, target, resolution !== undefined, out);
    return out;
  }

  /**
   * abandon stops applying the resolution at `path` (the caller dropped the
   * choice): nothing more at or below it is decided, and its directory is
   * not removed.
   */
  abandon(path: string): void {
    while (this.resolutions.length > 0 && isWithin((this.resolutions[this.resolutions.length - 1] as { path: string }).path, path)) this.resolutions.pop();
    while (this.resolvedRemovals.length > 0 && isWithin((this.resolvedRemovals[this.resolvedRemovals.length - 1] as ResolvedRemoval).path, path)) this.resolvedRemovals.pop();
    // A skip already under way above it stands.
    if (!this.undecided(path)) this.skip = path;
  }

  /**
   * undecided reports whether a row at `path` pushed next would be decided
   * by nothing of its own: it lies in a subtree being skipped (a conflict,
   * an unsupported entry) or below a directory whose removal is pending.
   */
  undecided(path: string): boolean {
    return (this.skip !== undefined && isWithin(path, this.skip)) || (this.pending !== undefined && isWithin(path, this.pending.path));
  }

  /** end flushes the decisions held back for the last open scopes. */
  end(): Decision[] {
    const out: Decision[] = [];
    if (this.pending !== undefined) this.finishPending(out);
    this.finishResolvedRemovals(undefined, out);
    this.skip = undefined;
    this.resolutions.length = 0;
    return out;
  }

  private remove(to: Side, path: string, expect: Entry, out: Decision[]): void {
    const emptied = otherSide(to);
    if (emptied === 'alpha' ? this.options.alphaEmpty === true : this.options.betaEmpty === true) throw new MassDeletionHalt((this.options.emptiedReason ?? massDeletionReason)(emptied));
    out.push({ kind: 'op', op: { kind: 'remove', to, path, expect } });
  }

  private propagate(row: Row, to: Side, source: Entry | undefined, target: Entry | undefined, resolved: boolean, out: Decision[]): void {
    const path = row.path;
    // Invariant: target equals the base (only the source side changed) and
    // neither entry is unsupported (handled above).
    if (target?.kind === 'dir' && source?.kind !== 'dir') {
      const replacement = source?.kind === 'file' ? source : undefined;
      // A resolution removes the loser's directory entry by entry, each
      // checked against what was scanned; otherwise the whole directory goes
      // only if nothing below it changed since the archive.
      if (resolved) this.resolvedRemovals.push({ path, to, row, replacement, blocked: false });
      else this.pending = { path, to, row, replacement, clean: true };
      return;
    }
    if (source === undefined) {
      if (target !== undefined) this.remove(to, path, target, out);
      return;
    }
    if (source.kind === 'file') {
      out.push({ kind: 'op', op: { kind: 'copy', to, path, entry: source, expect: target } });
      return;
    }
    // source is a directory; target is absent or a file.
    out.push({ kind: 'op', op: { kind: 'mkdir', to, path, expect: target } });
  }

  private finishPending(out: Decision[]): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    const { path, to, row, replacement } = pending;
    if (pending.clean) {
      this.remove(to, path, DIR, out);
      if (replacement !== undefined) out.push({ kind: 'op', op: { kind: 'copy', to, path, entry: replacement, expect: undefined } });
      return;
    }
    const from = otherSide(to);
    const what = replacement === undefined ? 'deleted' : 'replaced by a file';
    out.push({
      kind: 'conflict',
      conflict: {
        path,
        reason: `directory ${what} on ${from} while its contents changed on ${to}`,
        base: row.base,
        alpha: row.alpha,
        beta: row.beta,
      },
    });
  }

  // Emits the removals of resolved directories whose subtrees are behind us,
  // deepest first; `next` is the path about to be pushed (undefined at the end).
  private finishResolvedRemovals(next: string | undefined, out: Decision[]): void {
    for (;;) {
      const top = this.resolvedRemovals[this.resolvedRemovals.length - 1];
      if (top === undefined || (next !== undefined && isWithin(next, top.path))) return;
      this.resolvedRemovals.pop();
      if (top.blocked) {
        const { row } = top;
        out.push({
          kind: 'conflict',
          conflict: {
            path: top.path,
            reason: `the directory cannot be removed from ${top.to}: it holds entries ferry does not sync (links, special files, unreadable entries or names that are not valid UTF-8); remove them there and sync again`,
            base: row.base,
            alpha: row.alpha,
            beta: row.beta,
            blocked: true,
          },
        });
        continue;
      }
      this.remove(top.to, top.path, DIR, out);
      if (top.replacement !== undefined) out.push({ kind: 'op', op: { kind: 'copy', to: top.to, path: top.path, entry: top.replacement, expect: undefined } });
    }
  }
}

/** conflictReason describes, in one sentence, why a path changed on both sides is a conflict. */
export function conflictReason(base: Entry | undefined, alpha: Entry | undefined, beta: Entry | undefined): string {
  if (alpha === undefined) return `deleted on alpha, changed on beta (now ${describeEntry(beta)})`;
  if (beta === undefined) return `changed on alpha (now ${describeEntry(alpha)}), deleted on beta`;
  if (alpha.kind !== beta.kind) return `${describeEntry(alpha)} on alpha and ${describeEntry(beta)} on beta`;
  if (base === undefined) return 'created on both sides with different contents';
  if (base.kind !== alpha.kind) return `replaced on both sides with different contents`;
  return 'contents changed on both sides';
}

/** ReconcileResult is every decision for a whole set of rows, or a halt. */
export type ReconcileResult = { readonly halted: string } | { readonly halted?: undefined; readonly decisions: Decision[] };

/** reconcileAll reconciles a complete, sorted list of rows (the non-streaming form, for tests and small trees). */
export function reconcileAll(rows: readonly Row[], options: ReconcileOptions = {}): ReconcileResult {
  const syncable = (e: Entry | undefined) => e !== undefined && e.kind !== 'unsupported';
  const reconciler = new Reconciler({
    ...options,
    alphaEmpty: options.alphaEmpty ?? !rows.some((r) => syncable(r.alpha)),
    betaEmpty: options.betaEmpty ?? !rows.some((r) => syncable(r.beta)),
  });
  const decisions: Decision[] = [];
  try {
    for (const row of rows) decisions.push(...reconciler.push(row));
    decisions.push(...reconciler.end());
  } catch (error) {
    if (error instanceof MassDeletionHalt) return { halted: error.message };
    throw error;
  }
  return { decisions };
}
