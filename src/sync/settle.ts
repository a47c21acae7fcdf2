/**
 * Settling: a watch does not copy a file again at every write while
 * something keeps writing it (a download, a log, a file being exported).
 *
 * A file's first change goes at once, so a saved file shows on the other
 * side as soon as the watch sees it. A change to the same file on the same
 * side within SETTLE_HOT_MS of ferry's last copy of it (or of a copy that
 * met it changing) holds the file: passes leave it alone, on both sides,
 * until it has not changed for SETTLE_QUIET_MS, but never longer than
 * SETTLE_MAX_MS, so a file written without pause is still tried that often.
 * A try that meets it changing (the first one included) holds it again,
 * but briefly (SETTLE_RETRY_MS), up to SETTLE_RETRIES times, and only then
 * for SETTLE_MAX_MS: a log appended every tenth of a second would otherwise
 * wait SETTLE_MAX_MS whenever one append fell between the listing and the
 * end of the copy. Not a file over SETTLE_RETRY_BYTES: each try reads it whole.
 * Without this a file growing for a minute was copied dozens of times, each
 * copy longer than the last, across the network for a guest.
 *
 * What is held is only deferred: its directory is not recorded as checked,
 * and the watch rescans it when the file is due (`dueDirs`).
 */

import type { Side } from '../core/entry.js';
import { parentOf } from '../core/path.js';

/** Settle is what a pass asks before it syncs a changed file (watch mode only). */
export interface Settle {
  /** Whether to leave the file at `path`, changed on `side` (its stat digest now `digest`, its size `size` bytes), alone this pass. */
  hold(side: Side, path: string, digest: number | undefined, size?: number): boolean;
  /** Notes that ferry copied the file at `path` from `side`, or (no side) met it changing on either side while it synced it. */
  busy(path: string, side?: Side): void;
}

/** A file's change this soon after ferry's last copy of it holds the file (ms). */
export const SETTLE_HOT_MS = 2000;
/** A held file goes once it has not changed for this long (ms). */
export const SETTLE_QUIET_MS = 1000;
/** A held file goes after this long however often it changes (ms). */
export const SETTLE_MAX_MS = 10_000;
/** A file whose try met it changing is tried again after this long (ms)... */
export const SETTLE_RETRY_MS = 250;
/** ...this many times, before it is held for SETTLE_MAX_MS again... */
export const SETTLE_RETRIES = 4;
/** ...if it is no larger than this (bytes). */
export const SETTLE_RETRY_BYTES = 64 << 20;
/** Files remembered as recently copied (or announced as held), at most (the oldest are forgotten first). */
const RECENT_LIMIT = 10_000;
/** A file held again within this long of its last announcement is not announced again (ms). */
const ANNOUNCE_MS = 60_000;

interface Held {
  readonly side: Side;
  readonly path: string;
  digest: number | undefined;
  /** When its digest was last seen to change. */
  seen: number;
  /** When it was first held. */
  readonly since: number;
  /** It goes this long after `since` however often it changes (ms). */
  readonly maxMs: number;
  /** Its directory was handed out for a rescan that has not looked at it yet. */
  asked: boolean;
}

/** Settler is the watch's Settle: it remembers recent copies and held files across passes. */
export class Settler implements Settle {
  private readonly recent = new Map<string, number>();
  private readonly held = new Map<string, Held>();
  private readonly announced = new Map<string, number>();
  /** Files tried lately while they changed: the quick retries each has had, and when the last try was let go. */
  private readonly retrying = new Map<string, Retrying>();

  /** `onHold` hears of each file when it starts to be held, and for how long at most (ms). */
  constructor(
    private readonly onHold: (side: Side, path: string, maxMs: number) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  hold(side: Side, path: string, digest: number | undefined, size = 0): boolean {
    const key = `${side}:${path}`;
    const now = this.now();
    const held = this.held.get(key);
    if (held !== undefined) {
      held.asked = false;
      if (held.digest !== digest) {
        held.digest = digest;
        held.seen = now;
      }
      if (now < dueAt(held)) return true;
      this.held.delete(key);
      if (now >= held.seen + SETTLE_QUIET_MS) this.retrying.delete(key);
      else this.noteRetry(key, held.maxMs === SETTLE_MAX_MS ? 0 : (this.retrying.get(key)?.retries ?? 0) + 1, now);
      return false;
    }
    const copied = this.recent.get(key);
    if (copied === undefined || now - copied >= SETTLE_HOT_MS) return false;
    const tried = this.retrying.get(key);
    const quick = tried !== undefined && tried.retries < SETTLE_RETRIES && size <= SETTLE_RETRY_BYTES;
    if (!quick) this.retrying.delete(key);
    const maxMs = quick ? SETTLE_RETRY_MS : SETTLE_MAX_MS;
    this.held.set(key, { side, path, digest, seen: now, since: now, maxMs, asked: false });
    // A file that never stops changing is held again and again: said once a minute.
    const said = this.announced.get(key);
    if (said === undefined || now - said >= ANNOUNCE_MS) {
      remember(this.announced, key, now, now, ANNOUNCE_MS, noted);
      this.onHold(side, path, maxMs);
    }
    return true;
  }

  busy(path: string, side?: Side): void {
    const now = this.now();
    for (const s of side === undefined ? (['alpha', 'beta'] as const) : [side]) {
      const key = `${s}:${path}`;
      remember(this.recent, key, now, now, SETTLE_HOT_MS, noted);
      // A copy that landed ends the quick retries. One that met the file
      // changing starts them, unless it was one of them (or the last, lately).
      const tried = this.retrying.get(key);
      if (side !== undefined) this.retrying.delete(key);
      else if (tried === undefined || now - tried.at >= SETTLE_MAX_MS) this.noteRetry(key, 0, now);
    }
  }

  /** When the next held file is due to be looked at again (epoch ms), if one is held. */
  nextDue(): number | undefined {
    let due: number | undefined;
    for (const held of this.held.values()) {
      const at = dueAt(held);
      if (due === undefined || at < due) due = at;
    }
    return due;
  }

  /**
   * The directories of held files that are due by now, to rescan. A held
   * file its rescan did not meet (removed, renamed, no longer changed) is
   * forgotten when the next rescan is asked for.
   */
  dueDirs(): string[] {
    const now = this.now();
    const dirs = new Set<string>();
    for (const [key, held] of this.held) {
      if (held.asked) {
        this.held.delete(key);
        continue;
      }
      if (now >= dueAt(held)) {
        held.asked = true;
        dirs.add(parentOf(held.path));
      }
    }
    return [...dirs];
  }

  /** The directories of all held files, which are then no longer held (for a last pass when the watch stops). */
  release(): string[] {
    const dirs = new Set([...this.held.values()].map((held) => parentOf(held.path)));
    this.held.clear();
    return [...dirs];
  }

  // Notes that the try of a file, let go at `at`, has had `retries` quick retries before it.
  private noteRetry(key: string, retries: number, at: number): void {
    remember(this.retrying, key, { retries, at }, at, SETTLE_MAX_MS, (r) => r.at);
  }

  /** How many files are held now. */
  get size(): number {
    return this.held.size;
  }
}

// When a held file goes: once quiet for SETTLE_QUIET_MS, or its longest hold after it was first held.
function dueAt(held: Held): number {
  return Math.min(held.seen + SETTLE_QUIET_MS, held.since + held.maxMs);
}

// A file tried while it changed: its quick retries so far, and when its last try was let go.
interface Retrying {
  readonly retries: number;
  readonly at: number;
}

// The time of a note that is only a time.
const noted = (at: number): number => at;

// Notes `value` under `key` in a map kept in the order of its last note, and
// forgets what was noted (`at`) `keepMs` or more before `now`, or past RECENT_LIMIT.
function remember<V>(map: Map<string, V>, key: string, value: V, now: number, keepMs: number, at: (value: V) => number): void {
  map.delete(key);
  map.set(key, value);
  for (const [old, v] of map) {
    if (map.size <= RECENT_LIMIT && now - at(v) < keepMs) break;
    map.delete(old);
  }
}
