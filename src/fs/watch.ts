/**
 * Watching a tree: @parcel/watcher (inotify on Linux) turned into hints for
 * the engine. A hint names the directories whose listings may have changed,
 * or asks for a full rescan when the watcher lost events. Hints are never
 * trusted as facts: the engine rescans what they name against the archive.
 *
 * The same code runs on the host and in the guest agent, so it takes the
 * watcher's native binding as a parameter instead of importing it.
 */

import type { WatchHint } from '../core/endpoint.js';
import { componentProblem } from '../core/path.js';
import { TEMP_NAME_PATTERN, tempOwner } from './walk.js';

/** The native binding of @parcel/watcher, as its prebuilt watcher.node exports it. */
export interface WatcherBinding {
  subscribe(dir: string, callback: WatchCallback, options: WatcherOptions): Promise<void>;
  unsubscribe(dir: string, callback: WatchCallback, options: WatcherOptions): Promise<void>;
}

export type WatchCallback = (error: Error | null, events: readonly { path: string; type: string }[]) => void;

export interface WatcherOptions {
  ignoreGlobs?: string[];
  backend?: string;
}

/** Directories a hint may name before it becomes a full rescan: bounds memory and the wire. */
export const MAX_HINT_DIRS = 4096;

// The bound, lowered by FERRY_WATCH_MAX_DIRS (for tests of the fallback).
function hintLimit(): number {
  const n = Number(process.env.FERRY_WATCH_MAX_DIRS ?? '');
  return Number.isSafeInteger(n) && n > 0 && n < MAX_HINT_DIRS ? n : MAX_HINT_DIRS;
}

/**
 * DirtySet gathers the directories changed paths live in, up to a bound;
 * past it, it asks for a full rescan instead of growing.
 */
export class DirtySet {
  private dirs = new Set<string>();
  private deleted = false;
  private rescanReason: string | undefined;

  constructor(private readonly limit = hintLimit()) {}

  /** add notes a hint. */
  add(hint: WatchHint): void {
    if ('rescan' in hint) this.rescan(hint.rescan);
    else {
      for (const dir of hint.dirs) this.addDir(dir);
      if (hint.deleted === true) this.noteDeletion();
    }
  }

  noteDeletion(): void {
    this.deleted = true;
  }

  addDir(dir: string): void {
    if (this.rescanReason !== undefined || this.dirs.has(dir)) return;
    if (this.dirs.size >= this.limit) {
      this.rescan(`more than ${this.limit} directories changed at once`);
      return;
    }
    this.dirs.add(dir);
  }

  rescan(reason: string): void {
    this.rescanReason ??= reason;
    this.dirs.clear();
  }

  /** Whether a deletion is among the changes gathered. */
  get deletion(): boolean {
    return this.deleted;
  }

  get empty(): boolean {
    return this.rescanReason === undefined && this.dirs.size === 0;
  }

  /** take returns what was gathered and starts afresh. */
  take(): WatchHint | undefined {
    if (this.rescanReason !== undefined) {
      const hint = { rescan: this.rescanReason };
      this.rescanReason = undefined;
      this.deleted = false;
      return hint;
    }
    if (this.dirs.size === 0) return undefined;
    const hint = { dirs: [...this.dirs], ...(this.deleted ? { deleted: true } : {}) };
    this.dirs = new Set();
    this.deleted = false;
    return hint;
  }
}

/**
 * dirtyDirOf returns the directory (relative to root, '' for the root) whose
 * listing a change at the absolute path `changed` affects, or undefined for
 * ferry's own temporaries and for paths outside the root. A path whose
 * components are not all valid names is cut at the first invalid one: its
 * nearest valid ancestor is rescanned, and the scanner reports the bad name.
 */
export function dirtyDirOf(root: string, changed: string): string | undefined {
  if (changed === root) return '';
  if (!changed.startsWith(root === '/' ? '/' : `${root}/`)) return undefined;
  const parts = changed.slice(root === '/' ? 1 : root.length + 1).split('/');
  if (tempOwner(parts[parts.length - 1] ?? '') !== undefined) return undefined;
  const valid: string[] = [];
  for (const part of parts.slice(0, -1)) {
    if (componentProblem(part) !== undefined) break;
    valid.push(part);
  }
  return valid.join('/');
}

/** How long a burst of events may be gathered before its hint goes out, in ms. */
const GATHER_MS = 5;

/**
 * TreeWatcher watches one root and calls `onHint` with coalesced hints. A
 * watcher error (an inotify overflow, ENOSPC for watches) becomes a rescan
 * hint with the reason.
 */
export class TreeWatcher {
  private readonly dirty = new DirtySet();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly options: WatcherOptions;
  private readonly callback: WatchCallback = (error, events) => this.receive(error, events);

  private constructor(
    private readonly binding: WatcherBinding,
    private readonly root: string,
    private readonly onHint: (hint: WatchHint) => void,
    only: string | undefined,
  ) {
    const ignore = [`^.*/${TEMP_NAME_PATTERN}$`];
    // For one name, everything else in the root is ignored, so no directory
    // below it is watched (the watcher is recursive otherwise).
    if (only !== undefined) ignore.push(`^${escapeRegExp(root === '/' ? '' : root)}/(?!${escapeRegExp(only)}$).*$`);
    // On Linux, inotify directly: the default looks for watchman first (by
    // running a shell it never reaps).
    this.options = { ignoreGlobs: ignore, ...(process.platform === 'linux' ? { backend: 'inotify' } : {}) };
  }

  /** start subscribes to changes below root (an absolute, canonical directory), or to the one name `only` in it. */
  static async start(binding: WatcherBinding, root: string, onHint: (hint: WatchHint) => void, only?: string): Promise<TreeWatcher> {
    const watcher = new TreeWatcher(binding, root, onHint, only);
    await binding.subscribe(root, watcher.callback, watcher.options);
    return watcher;
  }

  private receive(error: Error | null, events: readonly { path: string; type: string }[]): void {
    if (this.closed) return;
    if (error !== null) this.dirty.rescan(`the watcher failed (${error.message}); rescanning everything`);
    for (const event of events) {
      const dir = dirtyDirOf(this.root, event.path);
      if (dir === undefined) continue;
      this.dirty.addDir(dir);
      if (event.type === 'delete') this.dirty.noteDeletion();
    }
    if (!this.dirty.empty) this.timer ??= setTimeout(() => this.deliver(), GATHER_MS);
  }

  private deliver(): void {
    this.timer = undefined;
    const hint = this.dirty.take();
    if (hint !== undefined && !this.closed) this.onHint(hint);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.binding.unsubscribe(this.root, this.callback, this.options).catch(() => undefined);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
