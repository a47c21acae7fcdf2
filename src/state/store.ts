/**
 * The SQLite store under FERRY_HOME: sessions, the archive, conflicts and the
 * audit log. One connection per process, WAL, prepared statements created
 * once, one synchronous transaction per applied batch.
 */

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { DIR, type Entry, type FileEntry, type Side } from '../core/entry.js';
import { baseName, joinPath, parentOf } from '../core/path.js';
import { migrate } from './migrations.js';

/** StoreError is an error reading or writing ferry's state. */
export class StoreError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/** ferryHome returns FERRY_HOME, or ${XDG_STATE_HOME:-~/.local/state}/ferry. */
export function ferryHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_HOME !== undefined && env.FERRY_HOME !== '') return env.FERRY_HOME;
  const state = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'ferry');
}

/**
 * pathKey maps a path to the archive's key, whose byte order (SQLite BINARY
 * collation over UTF-8) is `comparePaths` order: "/" becomes U+0001, which
 * sorts before every character a valid component may hold.
 */
export function pathKey(path: string): string {
  return path.replaceAll('/', '\x01');
}

/** keyPath is pathKey undone. */
function keyPath(key: string): string {
  return key.replaceAll('\x01', '/');
}


/** SessionRecord is a pair of roots synced together. */
export interface SessionRecord {
  readonly id: number;
  readonly alpha: string;
  readonly beta: string;
  readonly createdAt: number;
  readonly lastSyncAt: number | null;
}

/** ArchiveRecord is the last agreed entry at a path, with each side's stamp digest (the hash cache). */
export interface ArchiveRecord {
  readonly path: string;
  readonly entry: Entry;
  readonly alphaDigest: number | null;
  readonly betaDigest: number | null;
}

/**
 * The state a conflict is in: open; pending (a resolution was chosen, not yet
 * applied); resolved; vanished (the sides came to agree by themselves);
 * superseded (a conflict on a directory above it now covers it).
 */
export type ConflictState = 'open' | 'pending' | 'resolved' | 'vanished' | 'superseded';

/** How a conflict is resolved. */
export type Resolution = 'alpha' | 'beta' | 'both';

/** ConflictRecord is a stored conflict. */
export interface ConflictRecord {
  readonly id: number;
  readonly session: number;
  readonly path: string;
  readonly reason: string;
  readonly base: Entry | undefined;
  readonly alpha: Entry | undefined;
  readonly beta: Entry | undefined;
  readonly detectedAt: number;
  readonly state: ConflictState;
  readonly resolution: Resolution | null;
  readonly resolvedAt: number | null;
}

/** IntentOp is the kind of change an intent announces. */
export type IntentOp = 'copy' | 'mkdir' | 'remove';

/** Intent is a change announced before it was made. */
export interface Intent extends IntentKey {
  readonly op: IntentOp;
  readonly file?: FileEntry;
}

/** IntentKey names the path an intent is about, on one side. */
export interface IntentKey {
  readonly side: Side;
  readonly path: string;
}

/** CopyIntent is a copy about to be put in place, with the content it brings. */
export interface CopyIntent extends IntentKey {
  readonly size: number;
  readonly hash: string;
}

interface IntentRow {
  side: Side;
  path: string;
  op: IntentOp;
  size: number | null;
  hash: string | null;
}

/** LogRecord is one audit-log entry. */
export interface LogRecord {
  readonly id: number;
  readonly at: number;
  readonly kind: string;
  readonly session: number | null;
  readonly path: string | null;
  readonly detail: string;
}

/** Copy intents recorded by one statement. */
const INTENT_ROWS = 64;

/** copyIntentValues flattens `count` copies from `start` into the values of intentPutMany. */
function copyIntentValues(session: number, copies: readonly CopyIntent[], start: number, count: number): unknown[] {
  const values: unknown[] = [];
  for (let i = start; i < start + count; i++) {
    const copy = copies[i]!;
    values.push(session, copy.side, copy.path, 'copy', copy.size, copy.hash);
  }
  return values;
}

const KIND_FILE = 0;
const KIND_DIR = 1;

type ArchiveRaw = [string, number, number | null, string | null, number | null, number | null];  // name first

function entryFromColumns(kind: number, size: number | null, hash: string | null): Entry {
  if (kind === KIND_DIR) return DIR;
  return { kind: 'file', size: size ?? 0, hash: hash ?? '' };
}

function entryToJson(entry: Entry | undefined): string | null {
  if (entry === undefined) return null;
  if (entry.kind === 'file') return JSON.stringify({ kind: 'file', size: entry.size, hash: entry.hash });
  return JSON.stringify(entry);
}

function entryFromJson(json: string | null): Entry | undefined {
  return json === null ? undefined : (JSON.parse(json) as Entry);
}

interface ConflictRow {
  id: number;
  session: number;
  path: string;
  reason: string;
  base: string | null;
  alpha: string | null;
  beta: string | null;
  detected_at: number;
  state: ConflictState;
  resolution: Resolution | null;
  resolved_at: number | null;
}

function conflictFromRow(row: ConflictRow): ConflictRecord {
  return {
    id: row.id,
    session: row.session,
    path: row.path,
    reason: row.reason,
    base: entryFromJson(row.base),
    alpha: entryFromJson(row.alpha),
    beta: entryFromJson(row.beta),
    detectedAt: row.detected_at,
    state: row.state,
    resolution: row.resolution,
    resolvedAt: row.resolved_at,
  };
}

/** Store is ferry's state database. */
export class Store {
  readonly db: Database.Database;
  private readonly stmts;
  /** Inside a transaction: the listing last dropped ('' for none); undefined outside one. */
  private lastDropped: string | undefined;

  private constructor(
    readonly home: string,
    db: Database.Database,
  ) {
    this.db = db;
    this.stmts = {
      sessionByRoots: db.prepare<[string, string], SessionRow>('SELECT * FROM sessions WHERE alpha = ? AND beta = ?'),
      sessionById: db.prepare<[number], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
      insertSession: db.prepare<[string, string, number]>('INSERT INTO sessions (alpha, beta, created_at) VALUES (?, ?, ?)'),
      sessionWithRoot: db.prepare<[string, string], SessionRow>('SELECT * FROM sessions WHERE alpha = ? OR beta = ? LIMIT 1'),
      sessionAt: db.prepare<[string, string, string], SessionRow>('SELECT * FROM sessions WHERE alpha = ? AND beta_where = ? AND beta <> ? LIMIT 1'),
      setBetaWhere: db.prepare<[string, number]>('UPDATE sessions SET beta_where = ? WHERE id = ?'),
      touchSession: db.prepare<[number, number]>('UPDATE sessions SET last_sync_at = ? WHERE id = ?'),
      archiveChildren: db
        .prepare<[number, string]>('SELECT name, kind, size, hash, alpha_stamp, beta_stamp FROM archive WHERE session = ? AND parent = ? ORDER BY name')
        .raw(true),
      archiveChildDirs: db.prepare<[number, string]>('SELECT name, kind, size, hash, alpha_stamp, beta_stamp FROM archive WHERE session = ? AND parent = ? AND kind = 1 ORDER BY name').raw(true),
      archiveGet: db.prepare<[number, string, string]>('SELECT name, kind, size, hash, alpha_stamp, beta_stamp FROM archive WHERE session = ? AND parent = ? AND name = ?').raw(true),
      archiveDirs: db.prepare<[number]>('SELECT parent, name FROM archive WHERE session = ? AND kind = 1').raw(true),
      archiveAny: db.prepare<[number]>('SELECT 1 FROM archive WHERE session = ? LIMIT 1').pluck(true),
      archiveCount: db.prepare<[number]>('SELECT count(*) FROM archive WHERE session = ?').pluck(true),
      archiveTotals: db.prepare<[number], { bytes: number | null; entries: number }>('SELECT sum(size) AS bytes, count(*) AS entries FROM archive WHERE session = ?'),
      archivePut: db.prepare<[number, string, string, number, number | null, string | null, number | null, number | null]>(
        'INSERT OR REPLACE INTO archive (session, parent, name, kind, size, hash, alpha_stamp, beta_stamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      archiveDelete: db.prepare<[number, string, string]>('DELETE FROM archive WHERE session = ? AND parent = ? AND name = ?'),
      archiveDeleteBelow: db.prepare<[number, string, string]>('DELETE FROM archive WHERE session = ? AND parent >= ? AND parent < ?'),
      listingCount: db.prepare<[number]>('SELECT count(*) FROM listings WHERE session = ?').pluck(true),
      listingsOf: db.prepare<[number]>('SELECT key, alpha, beta FROM listings WHERE session = ?').raw(true),
      listingGet: db.prepare<[number, string]>('SELECT alpha, beta FROM listings WHERE session = ? AND key = ?').raw(true),
      listingPut: db.prepare<[number, string, number, number]>('INSERT OR REPLACE INTO listings (session, key, alpha, beta) VALUES (?, ?, ?, ?)'),
      listingDrop: db.prepare<[number, string]>('DELETE FROM listings WHERE session = ? AND key = ?'),
      listingDropBelow: db.prepare<[number, string, string]>('DELETE FROM listings WHERE session = ? AND key > ? AND key < ?'),
      intentPut: db.prepare<[number, Side, string, IntentOp, number | null, string | null]>(
        'INSERT OR REPLACE INTO intents (session, side, path, op, size, hash) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      intentPutMany: db.prepare<unknown[]>(
        `INSERT OR REPLACE INTO intents (session, side, path, op, size, hash) VALUES ${Array.from({ length: INTENT_ROWS }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
      ),
      intentsOf: db.prepare<[number], IntentRow>('SELECT side, path, op, size, hash FROM intents WHERE session = ?'),
      intentsClear: db.prepare<[number]>('DELETE FROM intents WHERE session = ?'),
      intentsClearCopies: db.prepare<[number]>("DELETE FROM intents WHERE session = ? AND op = 'copy'"),
      intentClear: db.prepare<[number, Side, string]>('DELETE FROM intents WHERE session = ? AND side = ? AND path = ?'),
      conflictOpenAt: db.prepare<[number, string], ConflictRow>("SELECT * FROM conflicts WHERE session = ? AND path = ? AND state IN ('open', 'pending')"),
      conflictInsert: db.prepare<[number, string, string, string | null, string | null, string | null, number]>(
        "INSERT INTO conflicts (session, path, reason, base, alpha, beta, detected_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'open')",
      ),
      conflictUpdate: db.prepare<[string, string | null, string | null, string | null, number]>(
        'UPDATE conflicts SET reason = ?, base = ?, alpha = ?, beta = ? WHERE id = ?',
      ),
      conflictsSupersede: db.prepare<[number, number, string, string]>(
        "UPDATE conflicts SET state = 'superseded', resolved_at = ? WHERE session = ? AND state IN ('open', 'pending') AND path > ? AND path < ?",
      ),
      conflictById: db.prepare<[number], ConflictRow>('SELECT * FROM conflicts WHERE id = ?'),
      conflictsOpen: db.prepare<[], ConflictRow>("SELECT * FROM conflicts WHERE state IN ('open', 'pending') ORDER BY id"),
      conflictsOfSession: db.prepare<[number], ConflictRow>("SELECT * FROM conflicts WHERE session = ? AND state IN ('open', 'pending') ORDER BY id"),
      conflictSetState: db.prepare<[ConflictState, Resolution | null, number | null, number]>(
        'UPDATE conflicts SET state = ?, resolution = ?, resolved_at = ? WHERE id = ?',
      ),
      logInsert: db.prepare<[number, string, number | null, string | null, string]>('INSERT INTO log (at, kind, session, path, detail) VALUES (?, ?, ?, ?, ?)'),
      logRecent: db.prepare<[number], LogRecord>('SELECT id, at, kind, session, path, detail FROM log ORDER BY id DESC LIMIT ?'),
    };
  }

  /** open opens (creating if needed) the store in `home`. */
  static open(home: string): Store {
    try {
      mkdirSync(home, { recursive: true, mode: 0o700 });
      const db = new Database(join(home, 'ferry.db'));
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode can lose the last commits on power loss, never
      // corrupt: a lost archive commit only makes the next run re-agree on
      // what is already identical on both sides.
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      // A small page cache: the engine reads the archive one directory at a time.
      db.pragma('cache_size = -512');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new Store(home, db);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError('ESTATE', `unable to open ferry's state in ${home}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** close closes the database. */
  close(): void {
    this.db.close();
  }

  /** session returns the session for a pair of roots, creating it when asked. */
  session(alpha: string, beta: string, create: boolean): SessionRecord | undefined {
    const row = this.stmts.sessionByRoots.get(alpha, beta);
    if (row !== undefined) return sessionFromRow(row);
    if (!create) return undefined;
    const info = this.stmts.insertSession.run(alpha, beta, Date.now());
    return this.sessionById(Number(info.lastInsertRowid));
  }

  /**
   * otherSessionAt returns a session of alpha whose guest beta is at `where`
   * (see setBetaWhere) under another name than beta, if there is one.
   */
  otherSessionAt(alpha: string, beta: string, where: string): SessionRecord | undefined {
    const row = this.stmts.sessionAt.get(alpha, where, beta);
    return row === undefined ? undefined : sessionFromRow(row);
  }

  /** setBetaWhere records where a session's guest beta is: the server reached, the user, and the root's canonical path there. */
  setBetaWhere(session: number, where: string): void {
    this.stmts.setBetaWhere.run(where, session);
  }

  /** sessionById returns a session by id. */
  sessionById(id: number): SessionRecord | undefined {
    const row = this.stmts.sessionById.get(id);
    return row === undefined ? undefined : sessionFromRow(row);
  }

  /** hasSessionWithRoot reports whether any session has synced the directory `root`. */
  hasSessionWithRoot(root: string): boolean {
    return this.stmts.sessionWithRoot.get(root, root) !== undefined;
  }

  /** touchSession records a completed sync. */
  touchSession(id: number): void {
    this.stmts.touchSession.run(Date.now(), id);
  }

  /** archiveChildren returns the archived children of directory `dir`, in name order; only the directories when `dirsOnly`. */
  archiveChildren(session: number, dir: string, dirsOnly = false): ArchiveRecord[] {
    const stmt = dirsOnly ? this.stmts.archiveChildDirs : this.stmts.archiveChildren;
    const raw = stmt.all(session, pathKey(dir)) as ArchiveRaw[];
    return raw.map((r) => recordFromRaw(dir, r));
  }

  /** archiveDirs returns the paths of every directory in a session's archive, in no particular order. */
  archiveDirs(session: number): string[] {
    return (this.stmts.archiveDirs.all(session) as [string, string][]).map(([parent, name]) => joinPath(keyPath(parent), name));
  }

  /** archiveGet returns the archive record at path, if any. */
  archiveGet(session: number, path: string): ArchiveRecord | undefined {
    const raw = this.stmts.archiveGet.get(session, pathKey(parentOf(path)), baseName(path)) as ArchiveRaw | undefined;
    return raw === undefined ? undefined : recordFromRaw(parentOf(path), raw);
  }

  /** archiveTotals returns the bytes of the files and the number of entries a session's archive holds. */
  archiveTotals(session: number): { bytes: number; entries: number } {
    const row = this.stmts.archiveTotals.get(session);
    return { bytes: row?.bytes ?? 0, entries: row?.entries ?? 0 };
  }

  /** archiveEmpty reports whether a session's archive holds nothing. */
  archiveEmpty(session: number): boolean {
    return this.stmts.archiveAny.get(session) === undefined;
  }

  /** archiveCount returns the number of archived paths of a session. */
  archiveCount(session: number): number {
    return this.stmts.archiveCount.get(session) as number;
  }

  /** archivePut records the agreed entry at path (call inside a transaction). */
  archivePut(session: number, path: string, entry: Entry, alphaDigest: number | undefined, betaDigest: number | undefined): void {
    const parent = pathKey(parentOf(path));
    const name = baseName(path);
    if (entry.kind === 'file') {
      this.stmts.archivePut.run(session, parent, name, KIND_FILE, entry.size, entry.hash, alphaDigest ?? null, betaDigest ?? null);
    } else if (entry.kind === 'dir') {
      this.stmts.archivePut.run(session, parent, name, KIND_DIR, null, null, null, null);
    } else {
      throw new StoreError('EINTERNAL', `unsupported entries are never archived (${path})`);
    }
    this.dropListing(session, parent);
  }

  // Forgets the listing digests of a directory whose entries change; once
  // per directory and transaction, as a batch puts many entries in one.
  private dropListing(session: number, key: string): void {
    const dropped = `${session}/${key}`;
    if (this.lastDropped === dropped) return;
    this.stmts.listingDrop.run(session, key);
    // Outside a transaction nothing is remembered.
    if (this.lastDropped !== undefined) this.lastDropped = dropped;
  }

  /** archiveDelete forgets path only. */
  archiveDelete(session: number, path: string): void {
    const parent = pathKey(parentOf(path));
    this.stmts.archiveDelete.run(session, parent, baseName(path));
    this.stmts.listingDrop.run(session, parent);
  }

  /** archiveDeleteSubtree forgets path and everything below it. */
  archiveDeleteSubtree(session: number, path: string): void {
    const key = pathKey(path);
    if (path !== '') this.archiveDelete(session, path);
    // Rows below path have parent == key, or a parent that starts with key + U+0001.
    this.stmts.archiveDeleteBelow.run(session, key, path === '' ? '\u{10FFFF}' : `${key}\x02`);
    this.stmts.listingDrop.run(session, key);
    this.stmts.listingDropBelow.run(session, path === '' ? '' : `${key}\x01`, path === '' ? '\u{10FFFF}' : `${key}\x02`);
  }

  /** listing returns the recorded listing digests of a directory, if its children were all in agreement. */
  listing(session: number, dir: string): { alpha: number; beta: number } | undefined {
    const raw = this.stmts.listingGet.get(session, pathKey(dir)) as [number, number] | undefined;
    return raw === undefined ? undefined : { alpha: raw[0], beta: raw[1] };
  }

  /** listingCount returns the number of directories whose listing digests are recorded. */
  listingCount(session: number): number {
    return this.stmts.listingCount.get(session) as number;
  }

  /** listings returns every directory's recorded listing digests, in no particular order. */
  listings(session: number): { dir: string; alpha: number; beta: number }[] {
    return (this.stmts.listingsOf.all(session) as [string, number, number][]).map(([key, alpha, beta]) => ({ dir: keyPath(key), alpha, beta }));
  }

  /** putListing records the listing digests of a directory whose children are all in agreement. */
  putListing(session: number, dir: string, alpha: number, beta: number): void {
    if (this.lastDropped !== undefined) this.lastDropped = '';
    this.stmts.listingPut.run(session, pathKey(dir), alpha, beta);
  }

  /** putIntent records a change about to be made on `side` (call before making it). */
  putIntent(session: number, side: Side, path: string, op: IntentOp, file?: { size: number; hash: string }): void {
    this.stmts.intentPut.run(session, side, path, op, file?.size ?? null, file?.hash ?? null);
  }

  /** putCopyIntents records many copies about to be put in place (call before making them), INTENT_ROWS rows a statement. */
  putCopyIntents(session: number, copies: readonly CopyIntent[]): void {
    let start = 0;
    for (; start + INTENT_ROWS <= copies.length; start += INTENT_ROWS) this.stmts.intentPutMany.run(copyIntentValues(session, copies, start, INTENT_ROWS));
    for (const copy of copies.slice(start)) this.putIntent(session, copy.side, copy.path, 'copy', copy);
  }

  /** intents lists the changes a sync announced and may not have recorded. */
  intents(session: number): Intent[] {
    return this.stmts.intentsOf.all(session).map((r) => ({
      side: r.side,
      path: r.path,
      op: r.op,
      ...(r.size !== null && r.hash !== null ? { file: { kind: 'file' as const, size: r.size, hash: r.hash } } : {}),
    }));
  }

  /** clearIntents forgets every intent of a session (call once the archive records their outcome). */
  clearIntents(session: number): void {
    this.stmts.intentsClear.run(session);
  }

  /**
   * clearBatchIntents forgets the intents of one batch once the archive
   * records their outcome: its copies (announced while the batch is put in
   * place, one batch at a time) and the changes its walk announced.
   */
  clearBatchIntents(session: number, walked: readonly IntentKey[]): void {
    this.stmts.intentsClearCopies.run(session);
    for (const { side, path } of walked) this.stmts.intentClear.run(session, side, path);
  }

  /**
   * recordConflict stores a conflict, keeping the id of one already open at
   * that path. Returns its id and whether it is new. A conflict with a
   * resolution chosen keeps what it recorded when the choice was made (the
   * choice stands for that, and applies only while the losing side still
   * holds it), unless `applied` says ferry itself applied the choice in part.
   */
  recordConflict(
    session: number,
    path: string,
    reason: string,
    base: Entry | undefined,
    alpha: Entry | undefined,
    beta: Entry | undefined,
    applied = false,
  ): { id: number; isNew: boolean } {
    const existing = this.stmts.conflictOpenAt.get(session, path);
    if (existing !== undefined) {
      if (existing.state === 'open' || applied) this.stmts.conflictUpdate.run(reason, entryToJson(base), entryToJson(alpha), entryToJson(beta), existing.id);
      return { id: existing.id, isNew: false };
    }
    // A conflict on a directory covers everything below it: older conflicts
    // there (and any resolution chosen for them) give way to this one.
    if (path !== '') this.stmts.conflictsSupersede.run(Date.now(), session, `${path}/`, `${path}0`);
    const info = this.stmts.conflictInsert.run(session, path, reason, entryToJson(base), entryToJson(alpha), entryToJson(beta), Date.now());
    return { id: Number(info.lastInsertRowid), isNew: true };
  }

  /** liveConflict returns the open or pending conflict of a session at a path, if there is one. */
  liveConflict(session: number, path: string): ConflictRecord | undefined {
    const row = this.stmts.conflictOpenAt.get(session, path);
    return row === undefined ? undefined : conflictFromRow(row);
  }

  /** conflict returns a conflict by id. */
  conflict(id: number): ConflictRecord | undefined {
    const row = this.stmts.conflictById.get(id);
    return row === undefined ? undefined : conflictFromRow(row);
  }

  /** openConflicts lists open and pending conflicts, of one session or of all. */
  openConflicts(session?: number): ConflictRecord[] {
    const rows = session === undefined ? this.stmts.conflictsOpen.all() : this.stmts.conflictsOfSession.all(session);
    return rows.map(conflictFromRow);
  }

  /** setConflictState moves a conflict to a new state. */
  setConflictState(id: number, state: ConflictState, resolution: Resolution | null): void {
    this.stmts.conflictSetState.run(state, resolution, state === 'open' || state === 'pending' ? null : Date.now(), id);
  }

  /** log appends an audit-log entry. */
  log(kind: string, session: number | null, path: string | null, detail: string): void {
    this.stmts.logInsert.run(Date.now(), kind, session, path, detail);
  }

  /** recentLog returns the newest `limit` audit-log entries, oldest first. */
  recentLog(limit: number): LogRecord[] {
    return this.stmts.logRecent.all(limit).reverse();
  }

  /** transaction runs fn in one synchronous transaction. */
  transaction<T>(fn: () => T): T {
    this.lastDropped = '';
    try {
      return this.db.transaction(fn)();
    } finally {
      this.lastDropped = undefined;
    }
  }
}

interface SessionRow {
  id: number;
  alpha: string;
  beta: string;
  created_at: number;
  last_sync_at: number | null;
}

function sessionFromRow(row: SessionRow): SessionRecord {
  return { id: row.id, alpha: row.alpha, beta: row.beta, createdAt: row.created_at, lastSyncAt: row.last_sync_at };
}

function recordFromRaw(parent: string, raw: ArchiveRaw): ArchiveRecord {
  const [name, kind, size, hash, alphaDigest, betaDigest] = raw;
  return { path: joinPath(parent, name), entry: entryFromColumns(kind, size, hash), alphaDigest, betaDigest };
}

/** sideDigest returns one side's stamp digest of an archive record. */
export function sideDigest(record: ArchiveRecord, side: Side): number | null {
  return side === 'alpha' ? record.alphaDigest : record.betaDigest;
}
