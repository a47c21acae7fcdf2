/**
 * Trees for reconciler tests: entry fixtures, a tree notation (path -> entry)
 * and the rows the reconciler reads, merged from an archive and two sides.
 */

import type { Entry, FileEntry, UnsupportedEntry, UnsupportedReason } from '../../src/core/entry.js';
import { comparePaths, isWithin, parentOf } from '../../src/core/path.js';
import type { Row } from '../../src/core/reconcile.js';

/** Tree is one side (or the archive): every path it holds, mapped to its entry. */
export type Tree = ReadonlyMap<string, Entry>;

/** TreeSpec is a tree written as an object literal: `{ a: DIR, 'a/x': file('one') }`. */
export type TreeSpec = Readonly<Record<string, Entry>>;

const encoder = new TextEncoder();

/** hashOf is a stand-in content hash (64-bit FNV-1a, 16 hex digits); the reconciler only compares hashes. */
export function hashOf(content: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of encoder.encode(content)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

/** file returns the entry of a regular file holding content, with a scanner stamp when one is given. */
export function file(content: string, stamp?: number): FileEntry {
  const entry = { kind: 'file' as const, size: encoder.encode(content).length, hash: hashOf(content) };
  return stamp === undefined ? entry : { ...entry, stamp: Uint8Array.of(stamp) };
}

/** unsupported returns the entry of something ferry never syncs. */
export function unsupported(reason: UnsupportedReason): UnsupportedEntry {
  return { kind: 'unsupported', reason };
}

/** tree turns a spec into a tree (a map is copied as it is). */
export function tree(spec: TreeSpec | Tree): Map<string, Entry> {
  return new Map<string, Entry>(spec instanceof Map ? (spec as Tree) : Object.entries(spec as TreeSpec));
}

/** treeProblems lists every path whose parent is not a directory in the same tree (empty for a valid tree). */
export function treeProblems(t: Tree): string[] {
  const problems: string[] = [];
  for (const path of t.keys()) {
    if (path === '') {
      problems.push('the root is not a row');
      continue;
    }
    const parent = parentOf(path);
    if (parent !== '' && t.get(parent)?.kind !== 'dir') problems.push(`${path}: parent ${parent} is ${t.get(parent)?.kind ?? 'absent'}`);
  }
  return problems;
}

/** sortedPaths returns every path held by any of the trees, in `comparePaths` order. */
export function sortedPaths(...trees: Tree[]): string[] {
  const paths = new Set<string>();
  for (const t of trees) for (const path of t.keys()) paths.add(path);
  return [...paths].sort(comparePaths);
}

/**
 * rowsOf merges the archive and both sides into the sorted rows `reconcileAll`
 * reads, with the `refresh` flag set on the paths listed. Each tree must be
 * valid (it throws otherwise, so a typo in a table fails loudly).
 */
export function rowsOf(base: TreeSpec | Tree, alpha: TreeSpec | Tree, beta: TreeSpec | Tree, refresh: Iterable<string> = []): Row[] {
  const trees = { base: tree(base), alpha: tree(alpha), beta: tree(beta) };
  for (const [name, t] of Object.entries(trees)) {
    const problems = treeProblems(t);
    if (problems.length > 0) throw new Error(`invalid ${name} tree: ${problems.join('; ')}`);
  }
  const refreshed = new Set(refresh);
  return sortedPaths(trees.base, trees.alpha, trees.beta).map((path) => {
    const row = { path, base: trees.base.get(path), alpha: trees.alpha.get(path), beta: trees.beta.get(path) };
    return refreshed.has(path) ? { ...row, refresh: true } : row;
  });
}

/** deleteSubtree removes path and everything below it from t. */
export function deleteSubtree(t: Map<string, Entry>, path: string): void {
  for (const p of [...t.keys()]) if (isWithin(p, path)) t.delete(p);
}

/** subtree returns the part of t at or below path. */
export function subtree(t: Tree, path: string): Map<string, Entry> {
  return new Map([...t].filter(([p]) => isWithin(p, path)));
}

/** holdsNothingSyncable says whether a root holds nothing ferry could sync: no entries, or only unsupported ones. */
export function holdsNothingSyncable(t: Tree): boolean {
  return [...t.values()].every((entry) => entry.kind === 'unsupported');
}
