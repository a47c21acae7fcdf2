/**
 * Error classes with a stable `code`. Transient errors mean "this path moved
 * under us; rescan and reconcile again"; fatal ones stop the session.
 */

/** FerryError is the base of ferry's errors: a stable code and a message that says what could not be done. */
export class FerryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** ChangedError is transient: a path no longer is what the plan expected (compare-and-swap failed). */
export class ChangedError extends FerryError {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super('ECHANGED', `${path} changed during the sync (${detail}); it will be rescanned`);
  }
}

/** PathError is a failure for one path that leaves the rest of the session running. */
export class PathError extends FerryError {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('EPATH', message, options);
  }
}

/** SessionHalt stops a whole session with a reason for people (a vanished root, a mass deletion). */
export class SessionHalt extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EHALT', message, options);
  }
}

/** ConnectionLost is a SessionHalt because the link to a side broke (not because it lied): watch mode reconnects. */
export class ConnectionLost extends SessionHalt {}

/** UsageError is bad input on the command line: exit status 2. */
export class UsageError extends FerryError {
  constructor(message: string) {
    super('EUSAGE', message);
  }
}

/** asError is what was thrown, as an Error (a thrown non-Error becomes its message). */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
