/**
 * Test support: what a host tree looks like, to prove that something did not
 * change it (not a byte, not a mode bit, no new file) and that nothing in it
 * is executable, setuid/setgid or special (DESIGN: rules 4-6).
 */

import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** A snapshot of a tree: every path with its type, permission bits and content. */
export type Snapshot = Record<string, string>;

/** snapshot records every path below root (but not those in `skip`, nor below them). */
export function snapshot(root: string, skip: ReadonlySet<string> = new Set()): Snapshot {
  const out: Snapshot = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (skip.has(path)) continue;
      const st = lstatSync(join(root, path));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[path] = `dir ${mode}`;
        walk(path);
      } else if (st.isFile()) out[path] = `file ${mode} ${readFileSync(join(root, path)).toString('base64')}`;
      else out[path] = `other ${mode}`;
    }
  };
  walk('');
  return out;
}

/** Paths below root that are executable, setuid/setgid/sticky, or not a plain file or directory. */
export function dangerous(root: string, skip: ReadonlySet<string> = new Set()): string[] {
  const bad: string[] = [];
  for (const [path, what] of Object.entries(snapshot(root, skip))) {
    const [type, modeText] = what.split(' ') as [string, string];
    const mode = Number.parseInt(modeText, 8);
    if (type === 'other' || (mode & 0o7000) !== 0 || (type === 'file' && (mode & 0o111) !== 0)) bad.push(`${path} (${what.slice(0, 16)})`);
  }
  return bad;
}
