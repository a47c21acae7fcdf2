/**
 * Test support: ferry's audit log, read straight from ferry.db in a
 * FERRY_HOME (it works with or without a daemon running).
 */

import { join } from 'node:path';
import Database from 'better-sqlite3';

/** LogRow is one entry of the audit log. */
export interface LogRow {
  readonly kind: string;
  readonly path: string | null;
  readonly detail: string;
}

/** auditLog returns the whole audit log of `home`, oldest first. */
export function auditLog(home: string): LogRow[] {
  const db = new Database(join(home, 'ferry.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT kind, path, detail FROM log ORDER BY id').all() as LogRow[];
  } finally {
    db.close();
  }
}
