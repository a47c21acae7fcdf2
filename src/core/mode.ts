/**
 * The mode policy (DESIGN rule 4): mode bits are never copied.
 *
 * New files are created 0666 and new directories 0777, each less the umask
 * (the kernel applies it). A replaced file keeps its own permission bits, but
 * setuid, setgid and sticky are always cleared, and the exec bits are cleared
 * when the new content came from the guest side onto the host.
 */

/** The mode a new file is created with, before the umask. */
export const NEW_FILE_MODE = 0o666;
/** The mode a new directory is created with, before the umask. */
export const NEW_DIR_MODE = 0o777;

const PERMISSION_BITS = 0o777;
const EXEC_BITS = 0o111;

/** ReplacedMode is the permission bits for a replaced file, and whether exec bits were stripped. */
export interface ReplacedMode {
  readonly mode: number;
  readonly strippedExec: boolean;
}

/**
 * replacedFileMode returns the permission bits a file keeps when its content
 * is replaced: its own rwx bits without setuid/setgid/sticky, and without exec
 * bits when `fromGuest` (content from the guest landing on the host).
 */
export function replacedFileMode(oldMode: number, fromGuest: boolean): ReplacedMode {
  const kept = oldMode & PERMISSION_BITS;
  if (fromGuest && (kept & EXEC_BITS) !== 0) return { mode: kept & ~EXEC_BITS, strippedExec: true };
  return { mode: kept, strippedExec: false };
}
