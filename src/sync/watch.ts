/**
 * Watch mode: a session kept in step as changes happen.
 *
 * Both sides watch their trees and report hints (directories that may have
 * changed). Hints are coalesced and each burst becomes a scoped pass of the
 * engine, which rescans just those directories against the archive; a
 * watcher that lost events asks for a full pass instead. A full pass also
 * runs at start, after every reconnection, and periodically to catch
 * anything a watcher missed. A file that keeps changing is copied again
 * once it settles, not at every write (settle.ts). A resolution recorded by `ferry resolve` is
 * picked up within a second. A lost connection is retried with exponential
 * backoff and jitter; a halt (a vanished root, a root emptied wholesale, a
 * guest that broke the protocol) ends the watch.
 */

import type { Endpoint, WatchHint } from '../core/endpoint.js';
import type { Side, UnsupportedReason } from '../core/entry.js';
import { ConnectionLost, FerryError, SessionHalt } from '../core/errors.js';
import { parentOf } from '../core/path.js';
import type { Limits } from '../core/limits.js';
import type { AgentInfo } from '../protocol/messages.js';
import { DirtySet } from '../fs/watch.js';
import type { SessionRecord, Store } from '../state/store.js';
import { lockSession } from './lock.js';
import { type Summary, type SyncEvent, runPasses } from './session.js';
import { SETTLE_QUIET_MS, Settler } from './settle.js';

/** WatchEvent is what watch mode reports, one event at a time. */
export type WatchEvent =
  | { readonly event: 'connected'; readonly alpha: string; readonly beta: string }
  | { readonly event: 'scanning'; readonly scope: 'full' | 'changes'; readonly reason: string; readonly dirs?: number }
  | {
      readonly event: 'synced';
      readonly scope: 'full' | 'changes';
      readonly ms: number;
      readonly scanned: number;
      readonly copied: { readonly alpha: number; readonly beta: number };
      readonly removed: { readonly alpha: number; readonly beta: number };
      readonly dirsCreated: { readonly alpha: number; readonly beta: number };
      readonly bytes: number;
      readonly conflicts: number;
      readonly failures: number;
    }
  | { readonly event: 'progress'; readonly scanned: number; readonly copied: number; readonly bytes: number }
  | { readonly event: 'conflict'; readonly id: number; readonly path: string; readonly reason: string }
  | { readonly event: 'resolved'; readonly id: number; readonly path: string; readonly keep: string }
  | { readonly event: 'unsupported'; readonly path: string; readonly side: Side; readonly reason: UnsupportedReason }
  | { readonly event: 'held'; readonly path: string; readonly side: string; readonly quietMs: number; readonly maxMs: number }
  | { readonly event: 'error'; readonly message: string; readonly path?: string }
  | { readonly event: 'reconnecting'; readonly message: string; readonly attempt: number; readonly inMs: number }
  | { readonly event: 'stopped'; readonly unsynced?: number };

/** Link is a connected pair of endpoints. */
export interface Link {
  readonly alpha: Endpoint;
  readonly beta: Endpoint;
  /** Settles when the connection to a side breaks while nothing is using it. */
  readonly lost?: Promise<Error>;
  /** What the guest agent said of itself, when beta is reached over SSH. */
  readonly agent?: AgentInfo;
  /** Where the guest beta is (the server reached, the user, the root's canonical path there), when beta is reached over SSH. */
  readonly where?: string;
  close(): Promise<void>;
}

export interface WatchOptions {
  readonly store: Store;
  readonly session: SessionRecord;
  /** connect makes a fresh link (at start and after a connection was lost). */
  connect(): Promise<Link>;
  readonly onEvent: (event: WatchEvent) => void;
  /** Time between full verification scans (ms). */
  readonly verifyEveryMs: number;
  /** Ends the watch after the current batch. */
  readonly signal: AbortSignal;
  /** Sync only this top-level name (a file grant). */
  readonly only?: string;
  /** Beta may not change alpha (a read-only grant). */
  readonly readOnly?: boolean;
  /** Limits on what beta may bring to alpha (a grant's guest). */
  readonly limits?: Limits;
  /** Kept by the caller across watches: see SessionOptions.logOnce. */
  readonly logOnce?: Set<string>;
}

/**
 * Deletions wait until the tree has been quiet this long (ms), at most
 * DELETE_SETTLE_MAX_MS: an `rm -rf` of a whole root is then seen as the root
 * vanishing (a halt), not as files deleted one by one and propagated.
 */
const DELETE_SETTLE_MS = 250;
const DELETE_SETTLE_MAX_MS = 2000;
/** How often the archive is checked for resolutions recorded by `ferry resolve` (ms). */
const RESOLUTION_POLL_MS = 1000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/**
 * watchSession keeps a session in step until the signal aborts it; throws on
 * a halt. Returns how many files the pass it made at the stop, for files held
 * while they changed, could not sync.
 */
export async function watchSession(options: WatchOptions): Promise<number> {
  const lock = lockSession(options.store.home, options.session.id);
  try {
    return await new Watch(options).run();
  } finally {
    lock.release();
  }
}

/** retryable says whether a failure is a broken link worth connecting again for. */
function retryable(error: unknown): boolean {
  if (error instanceof ConnectionLost) return true;
  if (error instanceof SessionHalt) return false;
  if (error instanceof FerryError) return error.code === 'ECONNECT' || error.code === 'EAGENT';
  return false;
}

function backoffMs(attempt: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt - 1, 16));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

class Watch {
  private readonly dirty = new DirtySet();
  private wake: (() => void) | undefined;
  private readonly stopped: Promise<void>;
  /** Pending resolutions already given a pass, by conflict id and choice. */
  private readonly tried = new Set<string>();
  /** When the last hint came, and when the first deletion not yet synced was heard of. */
  private lastHint = 0;
  /** Conflicts first seen by the pass under way. */
  private newConflicts = 0;
  /** The conflicts said to the user in this run (a conflict left open by an earlier sync is said once, at the first pass that meets it). */
  private readonly announced = new Set<number>();
  private deletionSince: number | undefined;
  /** Files the pass made at the stop, over the directories of held files, could not sync (each said in an error event). */
  private unsynced = 0;
  /** Files that keep changing, held across passes (and reconnections). */
  private readonly settler = new Settler((side, path, maxMs) => this.emit({ event: 'held', path, side, quietMs: SETTLE_QUIET_MS, maxMs }));

  constructor(private readonly options: WatchOptions) {
    this.stopped = new Promise((resolve) => {
      if (options.signal.aborted) resolve();
      else options.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  private emit(event: WatchEvent): void {
    this.options.onEvent(event);
  }

  async run(): Promise<number> {
    let connectedOnce = false;
    let attempt = 0;
    while (!this.options.signal.aborted) {
      let link: Link | undefined;
      try {
        link = await this.options.connect();
        connectedOnce = true;
        await this.serve(link, attempt > 0 ? 'reconnected' : 'start', () => (attempt = 0));
        break;
      } catch (error) {
        if (!connectedOnce || !retryable(error)) throw error;
        attempt++;
        const inMs = backoffMs(attempt);
        this.emit({ event: 'reconnecting', message: (error as Error).message, attempt, inMs });
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, inMs))), this.stopped]);
        clearTimeout(timer);
      } finally {
        await link?.close().catch(() => undefined);
      }
    }
    this.emit({ event: 'stopped', ...(this.unsynced > 0 ? { unsynced: this.unsynced } : {}) });
    return this.unsynced;
  }

  private async serve(link: Link, why: string, onSynced: () => void): Promise<void> {
    const onHint = (hint: WatchHint) => {
      this.dirty.add(hint);
      this.lastHint = Date.now();
      if (this.dirty.deletion) this.deletionSince ??= this.lastHint;
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    };
    // Watch first, scan second: a change made during the scan is not missed.
    const stops = [await link.alpha.watch?.(onHint, this.options.only), await link.beta.watch?.(onHint, this.options.only)];
    try {
      this.emit({ event: 'connected', alpha: link.alpha.label, beta: link.beta.label });
      this.dirty.take();
      await this.pass(link, undefined, why === 'start' ? 'first scan' : 'reconnected: rescanning both sides');
      onSynced();
      let nextVerify = Date.now() + this.options.verifyEveryMs;
      for (;;) {
        const due = this.settler.nextDue();
        if (this.dirty.empty && (due === undefined || due > Date.now())) {
          const lost = await this.idle(Math.min(RESOLUTION_POLL_MS, Math.max(0, nextVerify - Date.now()), due === undefined ? Infinity : due - Date.now()), link.lost);
          if (lost !== undefined) throw lost;
        }
        if (this.options.signal.aborted) {
          // What was held while it changed is synced as it is now, not left behind.
          const held = this.settler.release();
          if (held.length > 0) this.unsynced = (await this.pass(link, held, `stopping: syncing what was held while it changed`, false)).failures.length;
          return;
        }
        if (Date.now() >= nextVerify) {
          this.dirty.take();
          await this.pass(link, undefined, 'periodic verification');
          nextVerify = Date.now() + this.options.verifyEveryMs;
          continue;
        }
        if (this.dirty.deletion && this.deletionSince !== undefined) {
          const quiet = Date.now() - this.lastHint;
          if (quiet < DELETE_SETTLE_MS && Date.now() - this.deletionSince < DELETE_SETTLE_MAX_MS) {
            const lost = await this.idle(DELETE_SETTLE_MS - quiet, link.lost);
            if (lost !== undefined) throw lost;
            continue;
          }
        }
        this.deletionSince = undefined;
        const hint = this.dirty.take();
        if (hint !== undefined && 'rescan' in hint) {
          await this.pass(link, undefined, hint.rescan);
          continue;
        }
        const dirs = new Set(hint?.dirs ?? []);
        for (const path of this.newResolutions()) dirs.add(parentOf(path));
        for (const dir of this.settler.dueDirs()) dirs.add(dir);
        if (dirs.size > 0) await this.pass(link, [...dirs], 'changes');
      }
    } finally {
      for (const stop of stops) await stop?.().catch(() => undefined);
    }
  }

  // Waits for a hint, the stop, a lost link or `ms`; returns the lost link's error.
  private async idle(ms: number, lost: Promise<Error> | undefined): Promise<Error | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waits: Promise<Error | undefined>[] = [
      new Promise((resolve) => (this.wake = () => resolve(undefined))),
      new Promise((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
      this.stopped.then(() => undefined),
    ];
    if (lost !== undefined) waits.push(lost);
    try {
      return await Promise.race(waits);
    } finally {
      clearTimeout(timer);
      this.wake = undefined;
    }
  }

  // Paths of conflicts resolved by `ferry resolve` since the last look.
  private newResolutions(): string[] {
    const paths: string[] = [];
    for (const conflict of this.options.store.openConflicts(this.options.session.id)) {
      if (conflict.state === 'open') {
        // A choice dropped (the losing side changed after it): the same choice made again is new.
        for (const keep of ['alpha', 'beta', 'both']) this.tried.delete(`${conflict.id}:${keep}`);
        continue;
      }
      if (conflict.resolution === null) continue;
      const key = `${conflict.id}:${conflict.resolution}`;
      if (this.tried.has(key)) continue;
      this.tried.add(key);
      paths.push(conflict.path);
    }
    return paths;
  }

  private async pass(link: Link, scope: string[] | undefined, reason: string, settle = true): Promise<Summary> {
    const kind = scope === undefined ? 'full' : 'changes';
    this.emit({ event: 'scanning', scope: kind, reason, ...(scope !== undefined ? { dirs: scope.length } : {}) });
    const started = Date.now();
    this.newConflicts = 0;
    const summary = await runPasses({
      store: this.options.store,
      session: this.options.session,
      alpha: link.alpha,
      beta: link.beta,
      onEvent: (event) => this.relay(event),
      ...(scope !== undefined ? { scope } : {}),
      ...(this.options.only !== undefined ? { only: this.options.only } : {}),
      ...(this.options.readOnly === true ? { readOnly: true } : {}),
      ...(this.options.limits !== undefined ? { limits: this.options.limits } : {}),
      ...(this.options.logOnce !== undefined ? { logOnce: this.options.logOnce } : {}),
      ...(settle ? { settle: this.settler } : {}),
    });
    for (const conflict of this.options.store.openConflicts(this.options.session.id)) {
      if (conflict.state !== 'open' || this.announced.has(conflict.id)) continue;
      this.relay({ kind: 'conflict', id: conflict.id, path: conflict.path, reason: conflict.reason });
    }
    const did =
      summary.copied.alpha + summary.copied.beta + summary.removed.alpha + summary.removed.beta + summary.dirsCreated.alpha + summary.dirsCreated.beta + this.newConflicts + summary.failures.length + summary.resolved.length;
    if (kind === 'full' || did > 0) {
      this.emit({
        event: 'synced',
        scope: kind,
        ms: Date.now() - started,
        scanned: summary.scanned,
        copied: summary.copied,
        removed: summary.removed,
        dirsCreated: summary.dirsCreated,
        bytes: summary.bytes,
        conflicts: this.newConflicts,
        failures: summary.failures.length,
      });
    }
    return summary;
  }

  private relay(event: SyncEvent): void {
    switch (event.kind) {
      case 'conflict':
        if (this.announced.has(event.id)) break;
        this.announced.add(event.id);
        this.newConflicts++;
        this.emit({ event: 'conflict', id: event.id, path: event.path, reason: event.reason });
        break;
      case 'resolved':
        this.emit({ event: 'resolved', id: event.id, path: event.path, keep: event.keep });
        break;
      case 'unsupported':
        this.emit({ event: 'unsupported', path: event.path, side: event.side, reason: event.reason });
        break;
      case 'failed':
        this.emit({ event: 'error', path: event.path, message: event.message });
        break;
      case 'progress':
        this.emit({ event: 'progress', scanned: event.scanned, copied: event.copied, bytes: event.bytes });
        break;
      default:
        break;
    }
  }
}
