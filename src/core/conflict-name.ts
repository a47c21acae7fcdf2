/**
 * Names for the copy kept beside a file when a conflict is resolved with
 * `--keep both`: `<stem> (conflict <side> <YYYY-MM-DD HHMMSS>)<ext>`.
 */

import { baseName, parentOf, joinPath, utf8Length, MAX_COMPONENT_BYTES } from './path.js';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** conflictStamp formats a UTC time as "YYYY-MM-DD HHMMSS". */
export function conflictStamp(at: Date): string {
  return `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} ${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}`;
}

/** splitExtension splits "notes.tar.gz" into ["notes.tar", ".gz"]; a leading dot is not an extension. */
export function splitExtension(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

/**
 * conflictCopyPath returns the path of the copy of `path` kept for `side`,
 * with `attempt` > 0 adding " 2", " 3"… when that name is taken. The stem is
 * shortened (by whole code points) so that the name stays within 255 bytes.
 */
export function conflictCopyPath(path: string, side: string, at: Date, attempt = 0): string {
  const [stem, ext] = splitExtension(baseName(path));
  const tag = ` (conflict ${side} ${conflictStamp(at)}${attempt > 0 ? ` ${attempt + 1}` : ''})`;
  let shortStem = stem;
  while (shortStem.length > 0 && utf8Length(shortStem + tag + ext) > MAX_COMPONENT_BYTES) {
    shortStem = Array.from(shortStem).slice(0, -1).join('');
  }
  return joinPath(parentOf(path), shortStem + tag + ext);
}
