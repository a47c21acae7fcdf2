/**
 * Schema migrations, keyed on `PRAGMA user_version`: migration i brings the
 * database from version i to i + 1, inside one transaction.
 */

import type Database from 'better-sqlite3';

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    alpha TEXT NOT NULL,
    beta TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_sync_at INTEGER,
    UNIQUE (alpha, beta)
  );
  -- The archive: one row per agreed path, keyed by (parent, name) so that a
  -- directory's children are one range. Keys use U+0001 for "/", so byte
  -- order is ferry's depth-first path order. alpha_stamp and beta_stamp: a
  -- 52-bit digest of each side's (dev, ino, size, mtime_ns, ctime_ns) when
  -- the entry was last agreed, the hash cache of that side.
  CREATE TABLE archive (
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    size INTEGER,
    hash TEXT,
    alpha_stamp INTEGER,
    beta_stamp INTEGER,
    PRIMARY KEY (session, parent, name)
  ) WITHOUT ROWID;
  -- Each side's listing digest of a directory whose direct children were all
  -- in agreement when it was recorded; a scan that finds the same digest
  -- skips those children. Any archive change below a directory drops its row.
  CREATE TABLE listings (
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    alpha INTEGER NOT NULL,
    beta INTEGER NOT NULL,
    PRIMARY KEY (session, key)
  ) WITHOUT ROWID;
  -- Changes about to be made to one side, written before they are made and
  -- cleared when the archive records them. After a crash in between, the
  -- next sync finds each one either done (and records it) or not.
  CREATE TABLE intents (
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    side TEXT NOT NULL CHECK (side IN ('alpha', 'beta')),
    path TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('copy', 'mkdir', 'remove')),
    size INTEGER,
    hash TEXT,
    PRIMARY KEY (session, side, path)
  ) WITHOUT ROWID;
  CREATE TABLE conflicts (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    base TEXT,
    alpha TEXT,
    beta TEXT,
    detected_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'pending', 'resolved', 'vanished', 'superseded')),
    resolution TEXT CHECK (resolution IN ('alpha', 'beta', 'both')),
    resolved_at INTEGER
  );
  CREATE UNIQUE INDEX conflicts_live ON conflicts (session, path) WHERE state IN ('open', 'pending');
  CREATE TABLE log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    session INTEGER,
    path TEXT,
    detail TEXT NOT NULL
  );
  `,
  `
  -- The powerbox: VMs it reaches over SSH (the guest's host key pinned when
  -- added) and the grants of host files and directories into them.
  CREATE TABLE vms (
    name TEXT PRIMARY KEY,
    backend TEXT NOT NULL CHECK (backend IN ('ssh')),
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    key_file TEXT NOT NULL,
    host_key TEXT NOT NULL,
    guest_home TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  -- state: active; cleanup (revoked, the guest copy still to be removed);
  -- revoked.
  CREATE TABLE grants (
    id INTEGER PRIMARY KEY,
    vm TEXT NOT NULL,
    host_path TEXT NOT NULL,
    guest_path TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
    read_only INTEGER NOT NULL,
    limits TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'cleanup', 'revoked')),
    session INTEGER REFERENCES sessions (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  `,
  // Where a guest beta is, whatever it was called: the server reached (its
  // address and port, and its host key), the user, and the root's canonical
  // path there. Two names of one guest directory (localhost and 127.0.0.1,
  // ~/dir and /home/u/dir) are then seen to be one.
  `
  ALTER TABLE sessions ADD COLUMN beta_where TEXT;
  CREATE INDEX sessions_beta_where ON sessions (alpha, beta_where);
  `,
];

/** SCHEMA_VERSION is the user_version of a fully migrated database. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** migrate brings db to SCHEMA_VERSION, refusing a database from a newer ferry. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`the state database has schema version ${version}, newer than this ferry understands (${SCHEMA_VERSION}); upgrade ferry`);
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    const sql = MIGRATIONS[v] ?? '';
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
