/**
 * The SQLite store under FERRY_HOME: sessions, the archive, conflicts and the
 * audit log. One connection per process, WAL, prepared statements created
 * once, one synchronous transaction per applied batch.
 */

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { DIR, type Entry, type Side } from '../core/entry.js';
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

/** pathKey maps a path to the byte key whose byte order is `comparePaths` order ("/" becomes NUL). */
export function pathKey(path: string): Buffer {
  return Buffer.from(path.replaceAll('/', '\0'), 'utf8');
}

/** keyPath is the inverse of pathKey. */
export function keyPath(key: Buffer): string {
  return key.toString('utf8').replaceAll('\0', '/');
}

/** SessionRecord is a pair of roots synced together. */
export interface SessionRecord {
  readonly id: number;
  readonly alpha: string;
  readonly beta: string;
  readonly createdAt: number;
  readonly lastSyncAt: number | null;
}

/** ArchiveRecord is the last agreed entry at a path, with each side's stamp. */
export interface ArchiveRecord {
  readonly path: string;
  readonly entry: Entry;
  readonly alphaStamp: Buffer | null;
  readonly betaStamp: Buffer | null;
}

/** The state a conflict is in: open; pending (a resolution was chosen, not yet applied); resolved; vanished (the sides came to agree by themselves). */
export type ConflictState = 'open' | 'pending' | 'resolved' | 'vanished';

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

/** LogRecord is one audit-log entry. */
export interface LogRecord {
  readonly id: number;
  readonly at: number;
  readonly kind: string;
  readonly session: number | null;
  readonly path: string | null;
  readonly detail: string;
}

const KIND_FILE = 0;
const KIND_DIR = 1;

type ArchiveRaw = [Buffer, number, number | null, string | null, Buffer | null, Buffer | null];

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
      touchSession: db.prepare<[number, number]>('UPDATE sessions SET last_sync_at = ? WHERE id = ?'),
      archivePage: db
        .prepare<[number, Buffer, number]>('SELECT key, kind, size, hash, alpha_stamp, beta_stamp FROM archive WHERE session = ? AND key > ? ORDER BY key LIMIT ?')
        .raw(true),
      archiveGet: db.prepare<[number, Buffer]>('SELECT key, kind, size, hash, alpha_stamp, beta_stamp FROM archive WHERE session = ? AND key = ?').raw(true),
      archiveAny: db.prepare<[number]>('SELECT 1 FROM archive WHERE session = ? LIMIT 1').pluck(true),
      archiveCount: db.prepare<[number]>('SELECT count(*) FROM archive WHERE session = ?').pluck(true),
      archivePut: db.prepare<[number, Buffer, number, number | null, string | null, Buffer | null, Buffer | null]>(
        'INSERT OR REPLACE INTO archive (session, key, kind, size, hash, alpha_stamp, beta_stamp) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      archiveDelete: db.prepare<[number, Buffer]>('DELETE FROM archive WHERE session = ? AND key = ?'),
      archiveDeleteRange: db.prepare<[number, Buffer, Buffer]>('DELETE FROM archive WHERE session = ? AND key > ? AND key < ?'),
      conflictOpenAt: db.prepare<[number, string], ConflictRow>("SELECT * FROM conflicts WHERE session = ? AND path = ? AND state IN ('open', 'pending')"),
      conflictInsert: db.prepare<[number, string, string, string | null, string | null, string | null, number]>(
        "INSERT INTO conflicts (session, path, reason, base, alpha, beta, detected_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'open')",
      ),
      conflictUpdate: db.prepare<[string, string | null, string | null, string | null, number]>(
        'UPDATE conflicts SET reason = ?, base = ?, alpha = ?, beta = ? WHERE id = ?',
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

  /** archivePage reads up to `limit` archive records after `afterKey`, in path order. */
  archivePage(session: number, afterKey: Buffer, limit: number): { records: ArchiveRecord[]; lastKey: Buffer | undefined } {
    const raw = this.stmts.archivePage.all(session, afterKey, limit) as ArchiveRaw[];
    const records = raw.map(recordFromRaw);
    const last = raw[raw.length - 1];
    return { records, lastKey: last?.[0] };
  }

  /** archiveGet returns the archive record at path, if any. */
  archiveGet(session: number, path: string): ArchiveRecord | undefined {
    const raw = this.stmts.archiveGet.get(session, pathKey(path)) as ArchiveRaw | undefined;
    return raw === undefined ? undefined : recordFromRaw(raw);
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
  archivePut(session: number, path: string, entry: Entry, alphaStamp: Uint8Array | undefined, betaStamp: Uint8Array | undefined): void {
    const key = pathKey(path);
    if (entry.kind === 'file') {
      this.stmts.archivePut.run(session, key, KIND_FILE, entry.size, entry.hash, toBuffer(alphaStamp), toBuffer(betaStamp));
    } else if (entry.kind === 'dir') {
      this.stmts.archivePut.run(session, key, KIND_DIR, null, null, null, null);
    } else {
      throw new StoreError('EINTERNAL', `unsupported entries are never archived (${path})`);
    }
  }

  /** archiveDelete forgets path only. */
  archiveDelete(session: number, path: string): void {
    this.stmts.archiveDelete.run(session, pathKey(path));
  }

  /** archiveDeleteSubtree forgets path and everything below it. */
  archiveDeleteSubtree(session: number, path: string): void {
    const key = pathKey(path);
    if (path !== '') this.stmts.archiveDelete.run(session, key);
    const low = path === '' ? Buffer.alloc(0) : Buffer.concat([key, Buffer.from([0])]);
    const high = path === '' ? Buffer.from([0xff]) : Buffer.concat([key, Buffer.from([1])]);
    this.stmts.archiveDeleteRange.run(session, low, high);
  }

  /** archiveSubtree iterates the archive strictly below path, in path order, in pages. */
  *archiveSubtree(session: number, path: string): Generator<ArchiveRecord> {
    const prefix = path === '' ? '' : `${path}/`;
    let after: Buffer = path === '' ? Buffer.alloc(0) : Buffer.concat([pathKey(path), Buffer.from([0])]);
    for (;;) {
      const { records, lastKey } = this.archivePage(session, after, 512);
      for (const record of records) {
        if (!record.path.startsWith(prefix)) return;
        yield record;
      }
      if (lastKey === undefined || records.length < 512) return;
      after = lastKey;
    }
  }

  /** recordConflict stores a conflict, keeping the id of one already open at that path. Returns its id and whether it is new. */
  recordConflict(session: number, path: string, reason: string, base: Entry | undefined, alpha: Entry | undefined, beta: Entry | undefined): { id: number; isNew: boolean } {
    const existing = this.stmts.conflictOpenAt.get(session, path);
    if (existing !== undefined) {
      this.stmts.conflictUpdate.run(reason, entryToJson(base), entryToJson(alpha), entryToJson(beta), existing.id);
      return { id: existing.id, isNew: false };
    }
    const info = this.stmts.conflictInsert.run(session, path, reason, entryToJson(base), entryToJson(alpha), entryToJson(beta), Date.now());
    return { id: Number(info.lastInsertRowid), isNew: true };
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
    this.stmts.conflictSetState.run(state, resolution, state === 'resolved' || state === 'vanished' ? Date.now() : null, id);
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
    return this.db.transaction(fn)();
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

function recordFromRaw(raw: ArchiveRaw): ArchiveRecord {
  const [key, kind, size, hash, alphaStamp, betaStamp] = raw;
  return { path: keyPath(key), entry: entryFromColumns(kind, size, hash), alphaStamp, betaStamp };
}

function toBuffer(stamp: Uint8Array | undefined): Buffer | null {
  if (stamp === undefined) return null;
  return Buffer.isBuffer(stamp) ? stamp : Buffer.from(stamp);
}

/** sideStamp returns one side's stamp of an archive record. */
export function sideStamp(record: ArchiveRecord, side: Side): Buffer | null {
  return side === 'alpha' ? record.alphaStamp : record.betaStamp;
}
