/**
 * Relative paths inside a sync root.
 *
 * A path is a string of components joined by "/", with "" for the root. Every
 * path that crosses a trust boundary is built by `parsePath` or
 * `validateComponent`, which enforce DESIGN rule 6: no empty component, no
 * "." or "..", no "/", NUL, C0 control character or DEL, at most 255 bytes a
 * component and 4096 bytes in all.
 *
 * Paths are ordered depth-first: a directory comes before everything below it,
 * and siblings are ordered by code point (the same order as the bytes of their
 * UTF-8 encoding). `comparePaths` implements that order; the state layer keys
 * its rows so that SQLite returns them in the same order.
 */

/** The largest number of UTF-8 bytes in one path component. */
export const MAX_COMPONENT_BYTES = 255;
/** The largest number of UTF-8 bytes in a whole path. */
export const MAX_PATH_BYTES = 4096;

/** InvalidPathError is thrown when a path or component breaks DESIGN rule 6. */
export class InvalidPathError extends Error {
  readonly code = 'EINVALIDPATH';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`invalid path ${JSON.stringify(path)}: ${reason}`);
    this.name = 'InvalidPathError';
  }
}

/** utf8Length returns the number of bytes of the UTF-8 encoding of s. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** componentProblem says why name is not a valid path component, or returns undefined. */
export function componentProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty component';
  if (name === '.' || name === '..') return `component ${JSON.stringify(name)} is not allowed`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2f) return 'component contains "/"';
    if (c === 0) return 'component contains NUL';
    if (c < 0x20 || c === 0x7f) return 'component contains a control character';
    if (c >= 0xd800 && c <= 0xdfff) {
      const high = c <= 0xdbff;
      const next = name.charCodeAt(i + 1);
      if (high && next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return 'component is not valid Unicode';
    }
  }
  if (utf8Length(name) > MAX_COMPONENT_BYTES) return `component is longer than ${MAX_COMPONENT_BYTES} bytes`;
  return undefined;
}

/** validateComponent returns name if it is a valid component, else throws InvalidPathError. */
export function validateComponent(name: string): string {
  const problem = componentProblem(name);
  if (problem !== undefined) throw new InvalidPathError(name, problem);
  return name;
}

/** parsePath validates a relative path ("" is the root) and returns it unchanged. */
export function parsePath(path: string): string {
  if (path === '') return path;
  if (utf8Length(path) > MAX_PATH_BYTES) throw new InvalidPathError(path, `path is longer than ${MAX_PATH_BYTES} bytes`);
  for (const component of path.split('/')) {
    const problem = componentProblem(component);
    if (problem !== undefined) throw new InvalidPathError(path, problem);
  }
  return path;
}

/** joinPath appends a component to a path. */
export function joinPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** parentOf returns the parent of a non-root path ("" for a top-level name). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** baseName returns the last component of a path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** isWithin reports whether path is scope itself or lies below it. */
export function isWithin(path: string, scope: string): boolean {
  if (scope === '') return true;
  return path === scope || (path.length > scope.length && path.startsWith(scope) && path.charCodeAt(scope.length) === 0x2f);
}

// Maps a UTF-16 code unit so that unit order equals code point order:
// surrogates (U+D800..DFFF, which encode code points above U+FFFF) must sort
// after U+E000..FFFF.
function orderUnit(c: number): number {
  if (c < 0xd800) return c;
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

/**
 * comparePaths orders two paths depth-first: "/" sorts before every other
 * character, so a directory's subtree comes right after it and before its
 * next sibling. Returns a negative number, zero or a positive number.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    return orderUnit(x) - orderUnit(y);
  }
  return a.length - b.length;
}

/** compareNames orders sibling names by code point. */
export function compareNames(a: string, b: string): number {
  return comparePaths(a, b);
}
