/**
 * The reconciler's table: each row an archive (base) and the two sides written
 * as trees of short named fixtures, and every decision expected from
 * `reconcileAll`, in the order it is emitted: path order, except that inside
 * a resolution the losing side's directory is removed (and replaced), or its
 * removal reported as blocked, only after everything below it. Every row runs twice: as written, and mirrored
 * (alpha and beta swapped in the input, and so in every expected op,
 * conflict, agreement, report and halt).
 */

import { describe, expect, test } from 'vitest';
import { DIR, type Entry, type Side, type UnsupportedReason, otherSide } from '../src/core/entry.js';
import { SessionHalt } from '../src/core/errors.js';
import { comparePaths } from '../src/core/path.js';
import { type Decision, MassDeletionHalt, type Op, Reconciler, type Row, massDeletionReason, reconcileAll } from '../src/core/reconcile.js';
import { type TreeSpec, file, rowsOf, unsupported } from './support/trees.js';

// Fixtures. f0 is what the archive usually holds; f1..f3 are edits.
const f0 = file('zero'); // 4 bytes
const f1 = file('one'); // 3 bytes
const f2 = file('two'); // 3 bytes, same size as f1
const f3 = file('three'); // 5 bytes
const f1s1 = file('one', 1); // f1 as scanned with one stamp...
const f1s2 = file('one', 2); // ...and with another
const d = DIR;
const link = unsupported('symlink');
const fifo = unsupported('special');
const unreadable = unsupported('unreadable');
const badName = unsupported('bad-name');
/** A file every tree keeps, so that deleting the rest is not a wholesale deletion. */
const kept: TreeSpec = { k: f3 };

/** A decision as compared: a conflict without its sentence (checked separately, by fragments). */
type Normal =
  | { readonly kind: 'op'; readonly op: Op }
  | { readonly kind: 'agree'; readonly path: string; readonly alpha: Entry | undefined; readonly beta: Entry | undefined }
  | { readonly kind: 'conflict'; readonly path: string; readonly base: Entry | undefined; readonly alpha: Entry | undefined; readonly beta: Entry | undefined }
  | { readonly kind: 'unsupported'; readonly path: string; readonly side: Side; readonly reason: UnsupportedReason };

/** An expected conflict, with fragments its sentence must contain. */
interface ExpectedConflict {
  readonly path: string;
  readonly base: Entry | undefined;
  readonly alpha: Entry | undefined;
  readonly beta: Entry | undefined;
  readonly reason: readonly string[];
}

/** What a row expects; absent lists are empty. */
interface Expected {
  readonly ops?: readonly Op[];
  readonly conflicts?: readonly ExpectedConflict[];
  readonly agrees?: readonly Extract<Normal, { kind: 'agree' }>[];
  readonly unsupported?: readonly Extract<Normal, { kind: 'unsupported' }>[];
  /**
   * The side whose root is empty (holds nothing syncable): the session halts,
   * with no decisions, because that emptiness would remove something on the
   * other side.
   */
  readonly halted?: Side;
}

/** One row of the table. */
interface Case {
  readonly description: string;
  readonly base: TreeSpec;
  readonly alpha: TreeSpec;
  readonly beta: TreeSpec;
  readonly refresh?: readonly string[];
  readonly resolutions?: Readonly<Record<string, Side>>;
  readonly expect: Expected;
}

function copy(to: Side, path: string, entry: Extract<Entry, { kind: 'file' }>, expect?: Entry): Op {
  return { kind: 'copy', to, path, entry, expect };
}
function mkdir(to: Side, path: string, expect?: Entry): Op {
  return { kind: 'mkdir', to, path, expect };
}
function remove(to: Side, path: string, expect: Entry): Op {
  return { kind: 'remove', to, path, expect };
}

/**
 * Ops that come after everything below their path instead of in path order:
 * inside a resolution, the losing side's directory that must go is emptied
 * entry by entry first, then removed (and then replaced, when the winner holds
 * a file there).
 */
const afterSubtree = new WeakSet<Op>();

/** removeLast is the remove of a directory of the losing side of a resolution, once everything below it is gone. */
function removeLast(to: Side, path: string): Op {
  const op = remove(to, path, d);
  afterSubtree.add(op);
  return op;
}
/** replaceLast is the copy of the winner's file that follows `removeLast` at the same path. */
function replaceLast(to: Side, path: string, entry: Extract<Entry, { kind: 'file' }>): Op {
  const op = copy(to, path, entry);
  afterSubtree.add(op);
  return op;
}
function conflict(path: string, base: Entry | undefined, alpha: Entry | undefined, beta: Entry | undefined, ...reason: string[]): ExpectedConflict {
  return { path, base, alpha, beta, reason };
}

/** Conflicts that come after everything below their path: blocked removals (see `blockedLast`). */
const conflictsAfterSubtree = new WeakSet<ExpectedConflict>();

/**
 * blockedLast is the conflict emitted instead of `removeLast` (and
 * `replaceLast`) when the losing side's directory holds an entry ferry does
 * not sync: with the directory's own row entries, after its subtree.
 */
function blockedLast(loser: Side, path: string, base: Entry | undefined, alpha: Entry | undefined, beta: Entry | undefined): ExpectedConflict {
  const expected = conflict(path, base, alpha, beta, `the directory cannot be removed from ${loser}: it holds entries ferry does not sync`);
  conflictsAfterSubtree.add(expected);
  return expected;
}
function agree(path: string, alpha: Entry | undefined, beta: Entry | undefined = alpha): Extract<Normal, { kind: 'agree' }> {
  return { kind: 'agree', path, alpha, beta };
}
function reported(side: Side, path: string, reason: UnsupportedReason): Extract<Normal, { kind: 'unsupported' }> {
  return { kind: 'unsupported', path, side, reason };
}

const table: readonly Case[] = [
  // Nothing changed.
  { description: 'nothing anywhere: no decisions', base: {}, alpha: {}, beta: {}, expect: {} },
  { description: 'unchanged file', base: { a: f0 }, alpha: { a: f0 }, beta: { a: f0 }, expect: {} },
  { description: 'unchanged empty directory', base: { a: d }, alpha: { a: d }, beta: { a: d }, expect: {} },
  {
    description: 'unchanged tree three levels deep',
    base: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f0, 'a/y': f1, z: f2 },
    alpha: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f0, 'a/y': f1, z: f2 },
    beta: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f0, 'a/y': f1, z: f2 },
    expect: {},
  },
  {
    description: 'unchanged file with a different stamp on each side (a stamp is not content)',
    base: { a: f1s1 },
    alpha: { a: f1s2 },
    beta: { a: f1s1 },
    expect: {},
  },
  {
    description: 'file rewritten on alpha with the same content (new stamp): no change',
    base: { a: f0 },
    alpha: { a: file('zero', 7) },
    beta: { a: f0 },
    expect: {},
  },

  // Created on one side.
  { description: 'file created on alpha', base: {}, alpha: { a: f1 }, beta: {}, expect: { ops: [copy('beta', 'a', f1)] } },
  { description: 'file created on beta', base: {}, alpha: {}, beta: { a: f2 }, expect: { ops: [copy('alpha', 'a', f2)] } },
  { description: 'empty directory created on alpha', base: {}, alpha: { a: d }, beta: {}, expect: { ops: [mkdir('beta', 'a')] } },
  {
    description: 'directory tree created on alpha',
    base: {},
    alpha: { a: d, 'a/b': d, 'a/b/x': f1, 'a/y': f2 },
    beta: {},
    expect: { ops: [mkdir('beta', 'a'), mkdir('beta', 'a/b'), copy('beta', 'a/b/x', f1), copy('beta', 'a/y', f2)] },
  },
  {
    description: 'file created inside an unchanged directory on alpha',
    base: { a: d },
    alpha: { a: d, 'a/x': f1 },
    beta: { a: d },
    expect: { ops: [copy('beta', 'a/x', f1)] },
  },
  {
    description: 'file created three levels down in new directories on beta',
    base: { a: d },
    alpha: { a: d },
    beta: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f2 },
    expect: { ops: [mkdir('alpha', 'a/b'), mkdir('alpha', 'a/b/c'), copy('alpha', 'a/b/c/x', f2)] },
  },
  {
    description: 'different files created on each side',
    base: {},
    alpha: { a: f1 },
    beta: { b: f2 },
    expect: { ops: [copy('beta', 'a', f1), copy('alpha', 'b', f2)] },
  },
  {
    description: 'a copied entry carries the source side stamp',
    base: {},
    alpha: { a: f1s1 },
    beta: {},
    expect: { ops: [copy('beta', 'a', f1s1)] },
  },

  // Modified on one side.
  { description: 'file modified on alpha', base: { a: f0 }, alpha: { a: f1 }, beta: { a: f0 }, expect: { ops: [copy('beta', 'a', f1, f0)] } },
  { description: 'file modified on beta', base: { a: f0 }, alpha: { a: f0 }, beta: { a: f3 }, expect: { ops: [copy('alpha', 'a', f3, f0)] } },
  {
    description: 'file modified to the same size with a different hash',
    base: { a: f1 },
    alpha: { a: f2 },
    beta: { a: f1 },
    expect: { ops: [copy('beta', 'a', f2, f1)] },
  },
  {
    description: 'file modified deep below unchanged directories',
    base: { a: d, 'a/b': d, 'a/b/x': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/x': f1 },
    beta: { a: d, 'a/b': d, 'a/b/x': f0 },
    expect: { ops: [copy('beta', 'a/b/x', f1, f0)] },
  },
  {
    description: 'different files modified on each side',
    base: { a: f0, b: f0 },
    alpha: { a: f1, b: f0 },
    beta: { a: f0, b: f2 },
    expect: { ops: [copy('beta', 'a', f1, f0), copy('alpha', 'b', f2, f0)] },
  },

  // Deleted on one side.
  {
    description: 'file deleted on alpha',
    base: { a: f0, ...kept },
    alpha: { ...kept },
    beta: { a: f0, ...kept },
    expect: { ops: [remove('beta', 'a', f0)] },
  },
  {
    description: 'file deleted on beta',
    base: { a: f0, ...kept },
    alpha: { a: f0, ...kept },
    beta: { ...kept },
    expect: { ops: [remove('alpha', 'a', f0)] },
  },
  {
    description: 'empty directory deleted on alpha',
    base: { a: d, ...kept },
    alpha: { ...kept },
    beta: { a: d, ...kept },
    expect: { ops: [remove('beta', 'a', d)] },
  },
  {
    description: 'directory with an unchanged subtree deleted on alpha: one remove, nothing below',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f1, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f1, ...kept },
    expect: { ops: [remove('beta', 'a', d)] },
  },
  {
    description: 'directory with an unchanged subtree deleted on beta',
    base: { a: d, 'a/x': f0, 'a/y': f0, ...kept },
    alpha: { a: d, 'a/x': f0, 'a/y': f0, ...kept },
    beta: { ...kept },
    expect: { ops: [remove('alpha', 'a', d)] },
  },
  {
    description: 'subdirectory deleted on alpha inside a kept directory',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f1 },
    alpha: { a: d, 'a/y': f1 },
    beta: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f1 },
    expect: { ops: [remove('beta', 'a/b', d)] },
  },
  {
    description: 'file deleted inside a directory on alpha',
    base: { a: d, 'a/x': f0, 'a/y': f1 },
    alpha: { a: d, 'a/y': f1 },
    beta: { a: d, 'a/x': f0, 'a/y': f1 },
    expect: { ops: [remove('beta', 'a/x', f0)] },
  },
  {
    description: 'different files deleted on each side',
    base: { a: f0, b: f1, ...kept },
    alpha: { b: f1, ...kept },
    beta: { a: f0, ...kept },
    expect: { ops: [remove('beta', 'a', f0), remove('alpha', 'b', f1)] },
  },
  {
    description: 'directory deleted on alpha, the sibling "a.b" after its subtree modified on beta',
    base: { a: d, 'a/x': f0, 'a.b': f0, ...kept },
    alpha: { 'a.b': f0, ...kept },
    beta: { a: d, 'a/x': f0, 'a.b': f1, ...kept },
    expect: { ops: [remove('beta', 'a', d), copy('alpha', 'a.b', f1, f0)] },
  },
  {
    description: 'directory deleted on alpha, the sibling "ab" deleted on beta',
    base: { a: d, 'a/x': f0, ab: f0, ...kept },
    alpha: { ab: f0, ...kept },
    beta: { a: d, 'a/x': f0, ...kept },
    expect: { ops: [remove('beta', 'a', d), remove('alpha', 'ab', f0)] },
  },
  {
    description: 'last directory of the tree deleted on alpha (its removal flushed at the end)',
    base: { k: f3, z: d, 'z/x': f0 },
    alpha: { k: f3 },
    beta: { k: f3, z: d, 'z/x': f0 },
    expect: { ops: [remove('beta', 'z', d)] },
  },

  // Type changes.
  { description: 'file replaced by an empty directory on alpha', base: { a: f0 }, alpha: { a: d }, beta: { a: f0 }, expect: { ops: [mkdir('beta', 'a', f0)] } },
  {
    description: 'file replaced by a directory tree on alpha',
    base: { a: f0 },
    alpha: { a: d, 'a/b': d, 'a/b/y': f2, 'a/x': f1 },
    beta: { a: f0 },
    expect: { ops: [mkdir('beta', 'a', f0), mkdir('beta', 'a/b'), copy('beta', 'a/b/y', f2), copy('beta', 'a/x', f1)] },
  },
  {
    description: 'file replaced by a directory tree on beta',
    base: { a: f0 },
    alpha: { a: f0 },
    beta: { a: d, 'a/x': f1 },
    expect: { ops: [mkdir('alpha', 'a', f0), copy('alpha', 'a/x', f1)] },
  },
  {
    description: 'empty directory replaced by a file on alpha',
    base: { a: d },
    alpha: { a: f1 },
    beta: { a: d },
    expect: { ops: [remove('beta', 'a', d), copy('beta', 'a', f1)] },
  },
  {
    description: 'directory tree replaced by a file on alpha, subtree unchanged on beta',
    base: { a: d, 'a/b': d, 'a/b/y': f0, 'a/x': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/b': d, 'a/b/y': f0, 'a/x': f0 },
    expect: { ops: [remove('beta', 'a', d), copy('beta', 'a', f1)] },
  },
  {
    description: 'directory tree replaced by a file on beta, subtree unchanged on alpha',
    base: { a: d, 'a/x': f0, b: f0 },
    alpha: { a: d, 'a/x': f0, b: f0 },
    beta: { a: f3, b: f0 },
    expect: { ops: [remove('alpha', 'a', d), copy('alpha', 'a', f3)] },
  },
  { description: 'file replaced by a directory on both sides: agree', base: { a: f0 }, alpha: { a: d }, beta: { a: d }, expect: { agrees: [agree('a', d)] } },
  {
    description: 'file replaced by directories with different children on each side',
    base: { a: f0 },
    alpha: { a: d, 'a/x': f1 },
    beta: { a: d, 'a/y': f2 },
    expect: { agrees: [agree('a', d)], ops: [copy('beta', 'a/x', f1), copy('alpha', 'a/y', f2)] },
  },
  {
    description: 'directory replaced by the same file on both sides: agree, and the archive below is cleaned',
    base: { a: d, 'a/x': f0, 'a/y': f0 },
    alpha: { a: f1 },
    beta: { a: f1 },
    expect: { agrees: [agree('a', f1), agree('a/x', undefined), agree('a/y', undefined)] },
  },
  {
    description: 'directory replaced by different files on each side: conflict, nothing below',
    base: { a: d, 'a/x': f0 },
    alpha: { a: f1 },
    beta: { a: f3 },
    expect: { conflicts: [conflict('a', d, f1, f3, 'replaced on both sides with different contents')] },
  },
  {
    description: 'file replaced by a directory on alpha, modified on beta: conflict',
    base: { a: f0 },
    alpha: { a: d, 'a/x': f1 },
    beta: { a: f2 },
    expect: { conflicts: [conflict('a', f0, d, f2, 'a directory on alpha', 'a file of 3 bytes on beta')] },
  },
  {
    description: 'file replaced by a directory on alpha, deleted on beta: conflict',
    base: { a: f0, ...kept },
    alpha: { a: d, 'a/x': f1, ...kept },
    beta: { ...kept },
    expect: { conflicts: [conflict('a', f0, d, undefined, 'changed on alpha (now a directory)', 'deleted on beta')] },
  },
  {
    description: 'directory replaced by a file on alpha, deleted on beta: conflict',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { a: f1, ...kept },
    beta: { ...kept },
    expect: { conflicts: [conflict('a', d, f1, undefined, 'changed on alpha (now a file of 3 bytes)', 'deleted on beta')] },
  },
  {
    description: 'directory replaced by a file on alpha while beta changed a file below: conflict on the directory',
    base: { a: d, 'a/x': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/x': f2 },
    expect: { conflicts: [conflict('a', d, f1, d, 'directory replaced by a file on alpha while its contents changed on beta')] },
  },
  {
    description: 'directory replaced by a file on alpha while beta created a file below: conflict',
    base: { a: d },
    alpha: { a: f1 },
    beta: { a: d, 'a/n': f2 },
    expect: { conflicts: [conflict('a', d, f1, d, 'replaced by a file on alpha')] },
  },
  {
    description: 'directory replaced by a file on alpha while beta deleted a file below: conflict',
    base: { a: d, 'a/x': f0, 'a/y': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/y': f0 },
    expect: { conflicts: [conflict('a', d, f1, d)] },
  },
  {
    description: 'directory replaced by a file on beta while alpha changed a file two levels below: conflict',
    base: { a: d, 'a/b': d, 'a/b/x': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/x': f1 },
    beta: { a: f2 },
    expect: { conflicts: [conflict('a', d, d, f2, 'directory replaced by a file on beta while its contents changed on alpha')] },
  },
  {
    description: 'created as a file on alpha and as a directory tree on beta: conflict, nothing below',
    base: {},
    alpha: { a: f1 },
    beta: { a: d, 'a/x': f2 },
    expect: { conflicts: [conflict('a', undefined, f1, d, 'a file of 3 bytes on alpha', 'a directory on beta')] },
  },

  // The same change on both sides.
  { description: 'same file created on both sides: agree', base: {}, alpha: { a: f1 }, beta: { a: f1 }, expect: { agrees: [agree('a', f1)] } },
  { description: 'file modified the same way on both sides: agree', base: { a: f0 }, alpha: { a: f1 }, beta: { a: f1 }, expect: { agrees: [agree('a', f1)] } },
  {
    description: 'file deleted on both sides: agree on its absence',
    base: { a: f0, ...kept },
    alpha: { ...kept },
    beta: { ...kept },
    expect: { agrees: [agree('a', undefined)] },
  },
  { description: 'empty directory created on both sides: agree', base: {}, alpha: { a: d }, beta: { a: d }, expect: { agrees: [agree('a', d)] } },
  {
    description: 'same directory tree created on both sides: agree on every path',
    base: {},
    alpha: { a: d, 'a/b': d, 'a/x': f1 },
    beta: { a: d, 'a/b': d, 'a/x': f1 },
    expect: { agrees: [agree('a', d), agree('a/b', d), agree('a/x', f1)] },
  },
  {
    description: 'directory created on both sides with different files inside',
    base: {},
    alpha: { a: d, 'a/x': f1 },
    beta: { a: d, 'a/y': f2 },
    expect: { agrees: [agree('a', d)], ops: [copy('beta', 'a/x', f1), copy('alpha', 'a/y', f2)] },
  },
  {
    description: 'directory tree deleted on both sides: agree on every path',
    base: { a: d, 'a/b': d, 'a/b/y': f0, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { ...kept },
    expect: { agrees: [agree('a', undefined), agree('a/b', undefined), agree('a/b/y', undefined), agree('a/x', undefined)] },
  },
  {
    description: 'same file created on both sides with different stamps: agree, each with its own stamp',
    base: {},
    alpha: { a: f1s1 },
    beta: { a: f1s2 },
    expect: { agrees: [agree('a', f1s1, f1s2)] },
  },
  {
    description: 'identical change on one path beside a one-sided change on another',
    base: { a: f0, b: f0 },
    alpha: { a: f1, b: f2 },
    beta: { a: f1, b: f0 },
    expect: { agrees: [agree('a', f1)], ops: [copy('beta', 'b', f2, f0)] },
  },

  // Changed on both sides: conflicts.
  {
    description: 'modified differently on both sides: conflict',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f2 },
    expect: { conflicts: [conflict('a', f0, f1, f2, 'contents changed on both sides')] },
  },
  {
    description: 'created differently on both sides: conflict',
    base: {},
    alpha: { a: f1 },
    beta: { a: f2 },
    expect: { conflicts: [conflict('a', undefined, f1, f2, 'created on both sides with different contents')] },
  },
  {
    description: 'modified on alpha, deleted on beta: conflict',
    base: { a: f0, ...kept },
    alpha: { a: f1, ...kept },
    beta: { ...kept },
    expect: { conflicts: [conflict('a', f0, f1, undefined, 'changed on alpha (now a file of 3 bytes)', 'deleted on beta')] },
  },
  {
    description: 'deleted on alpha, modified on beta: conflict',
    base: { a: f0, ...kept },
    alpha: { ...kept },
    beta: { a: f3, ...kept },
    expect: { conflicts: [conflict('a', f0, undefined, f3, 'deleted on alpha', 'changed on beta (now a file of 5 bytes)')] },
  },
  {
    description: 'conflict on one file does not stop its siblings',
    base: { a: d, 'a/x': f0, 'a/y': f0, 'a/z': f0 },
    alpha: { a: d, 'a/x': f1, 'a/y': f1, 'a/z': f0 },
    beta: { a: d, 'a/x': f0, 'a/y': f2, 'a/z': f3 },
    expect: { ops: [copy('beta', 'a/x', f1, f0), copy('alpha', 'a/z', f3, f0)], conflicts: [conflict('a/y', f0, f1, f2)] },
  },
  {
    description: 'conflict on a directory skips its subtree but not the sibling "a.b"',
    base: { 'a.b': f0 },
    alpha: { a: d, 'a/x': f1, 'a.b': f1 },
    beta: { a: f2, 'a.b': f0 },
    expect: { conflicts: [conflict('a', undefined, d, f2)], ops: [copy('beta', 'a.b', f1, f0)] },
  },
  {
    description: 'conflicts at two levels are independent',
    base: { a: d, 'a/x': f0, b: f0 },
    alpha: { a: d, 'a/x': f1, b: f1 },
    beta: { a: d, 'a/x': f2, b: f2 },
    expect: { conflicts: [conflict('a/x', f0, f1, f2), conflict('b', f0, f1, f2)] },
  },
  {
    description: 'modify/delete conflict two levels down',
    base: { a: d, 'a/b': d, 'a/b/x': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/x': f1 },
    beta: { a: d, 'a/b': d },
    expect: { conflicts: [conflict('a/b/x', f0, f1, undefined)] },
  },
  {
    description: 'file versus directory conflict inside a directory created on both sides',
    base: {},
    alpha: { a: d, 'a/n': f1 },
    beta: { a: d, 'a/n': d, 'a/n/x': f2 },
    expect: { agrees: [agree('a', d)], conflicts: [conflict('a/n', undefined, f1, d)] },
  },

  // A directory deleted on one side against its subtree on the other.
  {
    description: 'directory deleted on alpha, file modified deep below on beta: conflict on the directory only',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/b': d, 'a/b/x': f1, 'a/y': f0, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d, 'directory deleted on alpha while its contents changed on beta')] },
  },
  {
    description: 'directory deleted on alpha, file created below on beta: conflict',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/n': f1, 'a/x': f0, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d)] },
  },
  {
    description: 'directory deleted on alpha, file deleted below on beta: conflict',
    base: { a: d, 'a/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/y': f0, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d)] },
  },
  {
    description: 'directory deleted on alpha, subdirectory created below on beta: conflict',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/b': d, 'a/x': f0, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d)] },
  },
  {
    description: 'directory deleted on alpha, a file below replaced by a directory on beta: conflict',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': d, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d)] },
  },
  {
    description: 'directory deleted on alpha, symlink created below on beta: conflict, no report below it',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/l': link, 'a/x': f0, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d)] },
  },
  {
    description: 'directory deleted on beta, file modified three levels below on alpha: conflict',
    base: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f0, ...kept },
    alpha: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f1, ...kept },
    beta: { ...kept },
    expect: { conflicts: [conflict('a', d, d, undefined, 'directory deleted on beta while its contents changed on alpha')] },
  },
  {
    description: 'directory deleted on alpha against a change below on beta; a sibling change still syncs',
    base: { a: d, 'a/x': f0, b: f0, ...kept },
    alpha: { b: f1, ...kept },
    beta: { a: d, 'a/x': f2, b: f0, ...kept },
    expect: { conflicts: [conflict('a', d, undefined, d)], ops: [copy('beta', 'b', f1, f0)] },
  },
  {
    description: 'subdirectory deleted on alpha against a change below on beta: conflict there, the parent syncs',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f0 },
    alpha: { a: d, 'a/y': f1 },
    beta: { a: d, 'a/b': d, 'a/b/x': f2, 'a/y': f0 },
    expect: { conflicts: [conflict('a/b', d, undefined, d)], ops: [copy('beta', 'a/y', f1, f0)] },
  },
  {
    description: 'directory deleted on alpha, a file below rewritten with its old content on beta: removed',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': file('zero', 5), ...kept },
    expect: { ops: [remove('beta', 'a', d)] },
  },
  {
    description: 'two directories deleted on alpha: one unchanged on beta, one changed below',
    base: { a: d, 'a/x': f0, b: d, 'b/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': f0, b: d, 'b/x': f1, ...kept },
    expect: { ops: [remove('beta', 'a', d)], conflicts: [conflict('b', d, undefined, d)] },
  },
  {
    description: 'directory deleted on alpha while beta created the sibling "a!" just after its subtree',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': f0, 'a!': f1, ...kept },
    expect: { ops: [remove('beta', 'a', d), copy('alpha', 'a!', f1)] },
  },

  // Unsupported entries.
  { description: 'symlink created on alpha', base: {}, alpha: { l: link }, beta: {}, expect: { unsupported: [reported('alpha', 'l', 'symlink')] } },
  { description: 'special file created on beta', base: {}, alpha: {}, beta: { p: fifo }, expect: { unsupported: [reported('beta', 'p', 'special')] } },
  {
    description: 'file turned unreadable on alpha: reported, nothing copied or removed',
    base: { a: f0 },
    alpha: { a: unreadable },
    beta: { a: f0 },
    expect: { unsupported: [reported('alpha', 'a', 'unreadable')] },
  },
  {
    description: 'entry with a bad name created inside a directory on alpha',
    base: { a: d },
    alpha: { a: d, 'a/bad': badName },
    beta: { a: d },
    expect: { unsupported: [reported('alpha', 'a/bad', 'bad-name')] },
  },
  {
    description: 'symlinks at the same path on both sides: both reported',
    base: {},
    alpha: { l: link },
    beta: { l: link },
    expect: { unsupported: [reported('alpha', 'l', 'symlink'), reported('beta', 'l', 'symlink')] },
  },
  {
    description: 'symlink on alpha and special file on beta at the same path',
    base: {},
    alpha: { l: link },
    beta: { l: fifo },
    expect: { unsupported: [reported('alpha', 'l', 'symlink'), reported('beta', 'l', 'special')] },
  },
  {
    description: 'file replaced by a symlink on alpha, modified on beta: reported, no conflict',
    base: { a: f0 },
    alpha: { a: link },
    beta: { a: f1 },
    expect: { unsupported: [reported('alpha', 'a', 'symlink')] },
  },
  {
    description: 'file replaced by a symlink on alpha, deleted on beta: reported only',
    base: { a: f0, ...kept },
    alpha: { a: link, ...kept },
    beta: { ...kept },
    expect: { unsupported: [reported('alpha', 'a', 'symlink')] },
  },
  {
    description: 'directory replaced by a symlink on alpha hides the unchanged subtree on beta: nothing removed',
    base: { a: d, 'a/b': d, 'a/x': f0 },
    alpha: { a: link },
    beta: { a: d, 'a/b': d, 'a/x': f0 },
    expect: { unsupported: [reported('alpha', 'a', 'symlink')] },
  },
  {
    description: 'directory replaced by a symlink on alpha hides changes below it on beta',
    base: { a: d, 'a/x': f0 },
    alpha: { a: link },
    beta: { a: d, 'a/n': f2, 'a/x': f1 },
    expect: { unsupported: [reported('alpha', 'a', 'symlink')] },
  },
  {
    description: 'symlink on alpha where beta created a directory tree: nothing below it is copied',
    base: {},
    alpha: { a: link },
    beta: { a: d, 'a/x': f1 },
    expect: { unsupported: [reported('alpha', 'a', 'symlink')] },
  },
  {
    description: 'unreadable directory on beta hides the files alpha created below it',
    base: { a: d },
    alpha: { a: d, 'a/x': f1 },
    beta: { a: unreadable },
    expect: { unsupported: [reported('beta', 'a', 'unreadable')] },
  },
  {
    description: 'directory created on alpha holding a symlink and a file',
    base: {},
    alpha: { a: d, 'a/l': link, 'a/x': f1 },
    beta: {},
    expect: { ops: [mkdir('beta', 'a'), copy('beta', 'a/x', f1)], unsupported: [reported('alpha', 'a/l', 'symlink')] },
  },
  {
    description: 'unsupported entry does not stop the siblings after it',
    base: { a: f0, b: f0 },
    alpha: { a: fifo, b: f1 },
    beta: { a: f0, b: f0 },
    expect: { unsupported: [reported('alpha', 'a', 'special')], ops: [copy('beta', 'b', f1, f0)] },
  },
  {
    description: 'symlink on beta where alpha created a file: reported, not overwritten',
    base: {},
    alpha: { a: f1 },
    beta: { a: link },
    expect: { unsupported: [reported('beta', 'a', 'symlink')] },
  },
  {
    description: 'entry with a bad name on beta where alpha deleted the archived file',
    base: { a: f0, ...kept },
    alpha: { ...kept },
    beta: { a: badName, ...kept },
    expect: { unsupported: [reported('beta', 'a', 'bad-name')] },
  },

  // The refresh flag.
  {
    description: 'refresh on an unchanged file records both stamps',
    base: { a: f1s1 },
    alpha: { a: f1s2 },
    beta: { a: f1s1 },
    refresh: ['a'],
    expect: { agrees: [agree('a', f1s2, f1s1)] },
  },
  {
    description: 'refresh on an unchanged directory',
    base: { a: d },
    alpha: { a: d },
    beta: { a: d },
    refresh: ['a'],
    expect: { agrees: [agree('a', d)] },
  },
  {
    description: 'refresh on a file changed on one side: the copy only',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f0 },
    refresh: ['a'],
    expect: { ops: [copy('beta', 'a', f1, f0)] },
  },
  {
    description: 'refresh on an identical change: one agreement',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f1 },
    refresh: ['a'],
    expect: { agrees: [agree('a', f1)] },
  },
  {
    description: 'refresh on a conflict: the conflict only',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f2 },
    refresh: ['a'],
    expect: { conflicts: [conflict('a', f0, f1, f2)] },
  },
  {
    description: 'refresh below a conflicted directory: nothing for it',
    base: { a: d, 'a/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': f0, 'a/y': f1, ...kept },
    refresh: ['a/x'],
    expect: { conflicts: [conflict('a', d, undefined, d)] },
  },
  {
    description: 'refresh only where flagged',
    base: { a: f1s1, b: f1s1 },
    alpha: { a: f1s2, b: f1s2 },
    beta: { a: f1s1, b: f1s1 },
    refresh: ['b'],
    expect: { agrees: [agree('b', f1s2, f1s1)] },
  },
  {
    description: 'refresh on a path deleted on both sides: one agreement',
    base: { a: f0, ...kept },
    alpha: { ...kept },
    beta: { ...kept },
    refresh: ['a'],
    expect: { agrees: [agree('a', undefined)] },
  },

  // Resolutions.
  {
    description: 'resolved modify/modify conflict, alpha wins',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f2 },
    resolutions: { a: 'alpha' },
    expect: { ops: [copy('beta', 'a', f1, f2)] },
  },
  {
    description: 'resolved modify/modify conflict, beta wins',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f2 },
    resolutions: { a: 'beta' },
    expect: { ops: [copy('alpha', 'a', f2, f1)] },
  },
  {
    description: 'resolved modify/delete conflict, the modification wins',
    base: { a: f0, ...kept },
    alpha: { a: f1, ...kept },
    beta: { ...kept },
    resolutions: { a: 'alpha' },
    expect: { ops: [copy('beta', 'a', f1)] },
  },
  {
    description: 'resolved modify/delete conflict, the deletion wins',
    base: { a: f0, ...kept },
    alpha: { a: f1, ...kept },
    beta: { ...kept },
    resolutions: { a: 'beta' },
    expect: { ops: [remove('alpha', 'a', f1)] },
  },
  {
    description: 'resolved file-versus-directory conflict, the file wins: the directory is emptied, removed, then replaced',
    base: {},
    alpha: { a: f1 },
    beta: { a: d, 'a/x': f2 },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/x', f2), removeLast('beta', 'a'), replaceLast('beta', 'a', f1)] },
  },
  {
    description: 'resolved file-versus-directory conflict, the directory wins: its subtree is copied',
    base: {},
    alpha: { a: f1 },
    beta: { a: d, 'a/x': f2 },
    resolutions: { a: 'beta' },
    expect: { ops: [mkdir('alpha', 'a', f1), copy('alpha', 'a/x', f2)] },
  },
  {
    description: 'resolved directory-deletion conflict, the deletion wins: each entry below goes as scanned, then the directory',
    base: { a: d, 'a/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/n': f2, 'a/x': f1, 'a/y': f0, ...kept },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/n', f2), remove('beta', 'a/x', f1), remove('beta', 'a/y', f0), removeLast('beta', 'a')] },
  },
  {
    description: 'resolved directory-deletion conflict, the changed subtree wins: it is copied back whole',
    base: { a: d, 'a/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/n': f2, 'a/x': f1, 'a/y': f0, ...kept },
    resolutions: { a: 'beta' },
    expect: { ops: [mkdir('alpha', 'a'), copy('alpha', 'a/n', f2), copy('alpha', 'a/x', f1), copy('alpha', 'a/y', f0)] },
  },
  {
    description: 'resolved directory-replaced-by-file conflict, the file wins',
    base: { a: d, 'a/x': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/x': f2 },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/x', f2), removeLast('beta', 'a'), replaceLast('beta', 'a', f1)] },
  },
  {
    description: 'resolved directory-replaced-by-file conflict, the changed directory wins',
    base: { a: d, 'a/x': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/x': f2 },
    resolutions: { a: 'beta' },
    expect: { ops: [mkdir('alpha', 'a', f1), copy('alpha', 'a/x', f2)] },
  },
  {
    description: 'two directories diverged below (no resolution): a conflict and copies both ways',
    base: { a: d, 'a/x': f0 },
    alpha: { a: d, 'a/x': f1, 'a/y': f3 },
    beta: { a: d, 'a/x': f2, 'a/z': f0 },
    expect: { ops: [copy('beta', 'a/y', f3), copy('alpha', 'a/z', f0)], conflicts: [conflict('a/x', f0, f1, f2)] },
  },
  {
    description: 'whole directory resolved for alpha: beta mirrors alpha below it',
    base: { a: d, 'a/x': f0 },
    alpha: { a: d, 'a/x': f1, 'a/y': f3 },
    beta: { a: d, 'a/x': f2, 'a/z': f0 },
    resolutions: { a: 'alpha' },
    expect: { ops: [copy('beta', 'a/x', f1, f2), copy('beta', 'a/y', f3), remove('beta', 'a/z', f0)] },
  },
  {
    description: 'a resolution does not reach the sibling "a.b"',
    base: { a: f0, 'a.b': f0 },
    alpha: { a: f1, 'a.b': f1 },
    beta: { a: f2, 'a.b': f2 },
    resolutions: { a: 'alpha' },
    expect: { ops: [copy('beta', 'a', f1, f2)], conflicts: [conflict('a.b', f0, f1, f2)] },
  },
  {
    description: 'resolved for alpha, where alpha now holds a symlink: reported, nothing copied',
    base: { a: f0 },
    alpha: { a: link },
    beta: { a: f2 },
    resolutions: { a: 'alpha' },
    expect: { unsupported: [reported('alpha', 'a', 'symlink')] },
  },
  {
    description: 'resolved directory with a symlink inside on the winning side: reported, the rest flows',
    base: { a: d, 'a/x': f0 },
    alpha: { a: d, 'a/l': link, 'a/x': f1 },
    beta: { a: d, 'a/x': f2 },
    resolutions: { a: 'alpha' },
    expect: { ops: [copy('beta', 'a/x', f1, f2)], unsupported: [reported('alpha', 'a/l', 'symlink')] },
  },
  {
    description: 'resolution on a path both sides and the archive agree on: nothing',
    base: { a: f1 },
    alpha: { a: f1 },
    beta: { a: f1 },
    resolutions: { a: 'beta' },
    expect: {},
  },
  {
    description: 'resolution on a path where both sides now agree: the agreement is still recorded',
    base: { a: f0 },
    alpha: { a: f1 },
    beta: { a: f1 },
    resolutions: { a: 'alpha' },
    expect: { agrees: [agree('a', f1)] },
  },
  {
    description: 'resolved directory where both sides deleted a file below: the archive is still cleaned',
    base: { a: d, 'a/x': f0, 'a/y': f0 },
    alpha: { a: d, 'a/y': f1 },
    beta: { a: d, 'a/y': f2 },
    resolutions: { a: 'alpha' },
    expect: { agrees: [agree('a/x', undefined)], ops: [copy('beta', 'a/y', f1, f2)] },
  },
  {
    description: 'nested resolutions: the inner winner holds below it, the outer winner for the rest',
    base: { a: d, 'a/b': f0, 'a/c': f0 },
    alpha: { a: d, 'a/b': f1, 'a/c': f1 },
    beta: { a: d, 'a/b': f2, 'a/c': f2 },
    resolutions: { a: 'alpha', 'a/b': 'beta' },
    expect: { ops: [copy('alpha', 'a/b', f2, f1), copy('beta', 'a/c', f1, f2)] },
  },

  // Resolutions: agreement is recorded against the archive.
  {
    description: 'resolved directory where both sides made the same change below: the agreement is recorded',
    base: { a: d, 'a/x': f0, 'a/y': f0 },
    alpha: { a: d, 'a/x': f1, 'a/y': f1 },
    beta: { a: d, 'a/x': f1, 'a/y': f2 },
    resolutions: { a: 'beta' },
    expect: { agrees: [agree('a/x', f1)], ops: [copy('alpha', 'a/y', f2, f1)] },
  },
  {
    description: 'resolved directory where both sides created the same file below: the agreement is recorded',
    base: { a: d, 'a/y': f0 },
    alpha: { a: d, 'a/n': f3, 'a/y': f1 },
    beta: { a: d, 'a/n': f3, 'a/y': f2 },
    resolutions: { a: 'alpha' },
    expect: { agrees: [agree('a/n', f3)], ops: [copy('beta', 'a/y', f1, f2)] },
  },
  {
    description: 'refresh inside a resolved directory on a path both sides and the archive agree on: recorded',
    base: { a: d, 'a/x': f1s1, 'a/y': f0 },
    alpha: { a: d, 'a/x': f1s2, 'a/y': f1 },
    beta: { a: d, 'a/x': f1s1, 'a/y': f2 },
    refresh: ['a/x'],
    resolutions: { a: 'alpha' },
    expect: { agrees: [agree('a/x', f1s2, f1s1)], ops: [copy('beta', 'a/y', f1, f2)] },
  },

  // Resolutions: nested scopes are a stack.
  {
    description: 'nested resolutions: leaving the inner scope returns to the outer winner, "a/b.c" included',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/b.c': f0, 'a/c': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/x': f1, 'a/b.c': f1, 'a/c': f1 },
    beta: { a: d, 'a/b': d, 'a/b/x': f2, 'a/b.c': f2, 'a/c': f2 },
    resolutions: { a: 'alpha', 'a/b': 'beta' },
    expect: { ops: [copy('alpha', 'a/b/x', f2, f1), copy('beta', 'a/b.c', f1, f2), copy('beta', 'a/c', f1, f2)] },
  },
  {
    description: 'three nested resolutions: each path takes its innermost winner',
    base: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f0, 'a/b/y': f0, 'a/z': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f1, 'a/b/y': f1, 'a/z': f1 },
    beta: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/x': f2, 'a/b/y': f2, 'a/z': f2 },
    resolutions: { a: 'alpha', 'a/b': 'beta', 'a/b/c': 'alpha' },
    expect: { ops: [copy('beta', 'a/b/c/x', f1, f2), copy('alpha', 'a/b/y', f2, f1), copy('beta', 'a/z', f1, f2)] },
  },
  {
    description: 'nested resolutions end with the outer scope: the sibling "a.b" is still a conflict',
    base: { a: d, 'a/x': f0, 'a.b': f0 },
    alpha: { a: d, 'a/x': f1, 'a.b': f1 },
    beta: { a: d, 'a/x': f2, 'a.b': f2 },
    resolutions: { a: 'alpha', 'a/x': 'beta' },
    expect: { ops: [copy('alpha', 'a/x', f2, f1)], conflicts: [conflict('a.b', f0, f1, f2)] },
  },
  {
    description: 'nested resolution whose winner deleted a directory the outer winner keeps: emptied and removed, then the outer winner again',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/c': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/x': f1, 'a/c': f1 },
    beta: { a: d, 'a/c': f2 },
    resolutions: { a: 'alpha', 'a/b': 'beta' },
    expect: { ops: [remove('alpha', 'a/b/x', f1), removeLast('alpha', 'a/b'), copy('beta', 'a/c', f1, f2)] },
  },

  // Resolutions: the losing side's directory goes entry by entry, deepest directory first.
  {
    description: 'resolved directory deletion over a loser subdirectory: the subdirectory is removed before its parent',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/b': d, 'a/b/x': f1, 'a/y': f0, ...kept },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/b/x', f1), removeLast('beta', 'a/b'), remove('beta', 'a/y', f0), removeLast('beta', 'a')] },
  },
  {
    description: 'resolved directory replaced by a file over loser subdirectories, one of them empty: deepest first, then the file',
    base: { a: d, 'a/b': d, 'a/b/x': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/b': d, 'a/b/x': f2, 'a/c': d },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/b/x', f2), removeLast('beta', 'a/b'), removeLast('beta', 'a/c'), removeLast('beta', 'a'), replaceLast('beta', 'a', f1)] },
  },
  {
    description: 'resolved directory: a loser subdirectory the winner lacks is removed before the next sibling syncs',
    base: { a: d, 'a/x': f0 },
    alpha: { a: d, 'a/x': f1 },
    beta: { a: d, 'a/b': d, 'a/b/y': f2, 'a/x': f2 },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/b/y', f2), removeLast('beta', 'a/b'), copy('beta', 'a/x', f1, f2)] },
  },
  {
    description: 'resolved directory deletion: its removal comes before the sibling "a.b" syncs',
    base: { a: d, 'a/x': f0, 'a.b': f0, ...kept },
    alpha: { 'a.b': f1, ...kept },
    beta: { a: d, 'a/x': f2, 'a.b': f0, ...kept },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/x', f2), removeLast('beta', 'a'), copy('beta', 'a.b', f1, f0)] },
  },
  {
    description: 'resolved directory deletion where the archive holds a path neither side has: agreed absent among the removals',
    base: { a: d, 'a/x': f0, 'a/z': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': f2, ...kept },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/x', f2), removeLast('beta', 'a')], agrees: [agree('a/z', undefined)] },
  },
  {
    description: 'resolved deletion of the last directory of the tree: removed when the rows end',
    base: { k: f3, z: d, 'z/x': f0 },
    alpha: { k: f3 },
    beta: { k: f3, z: d, 'z/x': f1 },
    resolutions: { z: 'alpha' },
    expect: { ops: [remove('beta', 'z/x', f1), removeLast('beta', 'z')] },
  },
  {
    description: 'resolved directory deletion: each loser file is removed against its scanned entry, stamp included',
    base: { a: d, 'a/x': f1s1, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/x': f1s2, 'a/y': f2, ...kept },
    resolutions: { a: 'alpha' },
    expect: { ops: [remove('beta', 'a/x', f1s2), remove('beta', 'a/y', f2), removeLast('beta', 'a')] },
  },

  // Resolutions: a losing directory holding entries ferry does not sync cannot go; its removal becomes a conflict.
  {
    description: 'resolved directory deletion over a symlink directly inside: the rest is removed, the directory is a conflict after its subtree',
    base: { a: d, 'a/x': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/l': link, 'a/x': f1, ...kept },
    resolutions: { a: 'alpha' },
    expect: {
      unsupported: [reported('beta', 'a/l', 'symlink')],
      ops: [remove('beta', 'a/x', f1)],
      conflicts: [blockedLast('beta', 'a', d, undefined, d)],
    },
  },
  {
    description: 'resolved directory deletion over a fifo deep in nested loser directories: every enclosing directory is blocked, deepest first',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/b': d, 'a/b/c': d, 'a/b/c/p': fifo, 'a/b/x': f1, 'a/y': f0, ...kept },
    resolutions: { a: 'alpha' },
    expect: {
      unsupported: [reported('beta', 'a/b/c/p', 'special')],
      ops: [remove('beta', 'a/b/x', f1), remove('beta', 'a/y', f0)],
      conflicts: [blockedLast('beta', 'a/b/c', undefined, undefined, d), blockedLast('beta', 'a/b', d, undefined, d), blockedLast('beta', 'a', d, undefined, d)],
    },
  },
  {
    description: 'resolved directory deletion: a loser subdirectory without unsupported entries is still removed, its blocked sibling and parent are not',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/c': d, 'a/c/y': f0, 'a.b': f0, ...kept },
    alpha: { 'a.b': f1, ...kept },
    beta: { a: d, 'a/b': d, 'a/b/l': link, 'a/b/x': f0, 'a/c': d, 'a/c/y': f1, 'a.b': f0, ...kept },
    resolutions: { a: 'alpha' },
    expect: {
      unsupported: [reported('beta', 'a/b/l', 'symlink')],
      ops: [remove('beta', 'a/b/x', f0), remove('beta', 'a/c/y', f1), removeLast('beta', 'a/c'), copy('beta', 'a.b', f1, f0)],
      conflicts: [blockedLast('beta', 'a/b', d, undefined, d), blockedLast('beta', 'a', d, undefined, d)],
    },
  },
  {
    description: 'resolved directory replaced by a file over an unreadable entry: no removal and no replacement, a conflict after the subtree',
    base: { a: d, 'a/x': f0 },
    alpha: { a: f1 },
    beta: { a: d, 'a/u': unreadable, 'a/x': f2 },
    resolutions: { a: 'alpha' },
    expect: {
      unsupported: [reported('beta', 'a/u', 'unreadable')],
      ops: [remove('beta', 'a/x', f2)],
      conflicts: [blockedLast('beta', 'a', d, f1, d)],
    },
  },
  {
    description: 'resolved directory replaced by a file over a subdirectory holding a bad name: both blocked, the sibling "a.b" after them',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a.b': f0 },
    alpha: { a: f1, 'a.b': f0 },
    beta: { a: d, 'a/b': d, 'a/b/n': badName, 'a/b/x': f0, 'a/c': f2, 'a.b': f3 },
    resolutions: { a: 'alpha' },
    expect: {
      unsupported: [reported('beta', 'a/b/n', 'bad-name')],
      ops: [remove('beta', 'a/b/x', f0), remove('beta', 'a/c', f2), copy('alpha', 'a.b', f3, f0)],
      conflicts: [blockedLast('beta', 'a/b', d, undefined, d), blockedLast('beta', 'a', d, f1, d)],
    },
  },
  {
    description: 'nested resolution whose winner deleted a directory holding a symlink: only that directory is blocked, the outer winner flows',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/c': f0 },
    alpha: { a: d, 'a/b': d, 'a/b/l': link, 'a/b/x': f1, 'a/c': f1 },
    beta: { a: d, 'a/c': f2 },
    resolutions: { a: 'alpha', 'a/b': 'beta' },
    expect: {
      unsupported: [reported('alpha', 'a/b/l', 'symlink')],
      ops: [remove('alpha', 'a/b/x', f1), copy('beta', 'a/c', f1, f2)],
      conflicts: [blockedLast('alpha', 'a/b', d, d, undefined)],
    },
  },
  {
    description: 'resolved directory deletion over a symlink that replaced a loser subdirectory: reported, and the directory above it blocked',
    base: { a: d, 'a/b': d, 'a/b/x': f0, 'a/y': f0, ...kept },
    alpha: { ...kept },
    beta: { a: d, 'a/b': link, 'a/y': f1, ...kept },
    resolutions: { a: 'alpha' },
    expect: {
      unsupported: [reported('beta', 'a/b', 'symlink')],
      ops: [remove('beta', 'a/y', f1)],
      conflicts: [blockedLast('beta', 'a', d, undefined, d)],
    },
  },

  // Wholesale deletion.
  {
    description: 'alpha root emptied while beta is unchanged: halt',
    base: { a: f0, b: d, 'b/x': f0 },
    alpha: {},
    beta: { a: f0, b: d, 'b/x': f0 },
    expect: { halted: 'alpha' },
  },
  {
    description: 'beta root emptied while alpha is unchanged: halt',
    base: { a: f0, b: d, 'b/x': f0 },
    alpha: { a: f0, b: d, 'b/x': f0 },
    beta: {},
    expect: { halted: 'beta' },
  },
  {
    description: 'alpha root emptied while beta modified a file: halt',
    base: { a: f0, b: f0 },
    alpha: {},
    beta: { a: f1, b: f0 },
    expect: { halted: 'alpha' },
  },
  {
    description: 'alpha root emptied while beta keeps only an empty directory: halt',
    base: { a: f0, b: d },
    alpha: {},
    beta: { b: d },
    expect: { halted: 'alpha' },
  },
  {
    description: 'beta root emptied while alpha created a file: halt',
    base: { a: f0 },
    alpha: { a: f0, n: f1 },
    beta: {},
    expect: { halted: 'beta' },
  },
  {
    description: 'alpha root emptied with refresh flags set: still a halt',
    base: { a: f0 },
    alpha: {},
    beta: { a: f0 },
    refresh: ['a'],
    expect: { halted: 'alpha' },
  },
  {
    description: 'both roots emptied: no halt, the archive is cleaned',
    base: { a: f0, b: d, 'b/x': f0 },
    alpha: {},
    beta: {},
    expect: { agrees: [agree('a', undefined), agree('b', undefined), agree('b/x', undefined)] },
  },
  {
    description: 'alpha root empty with an empty archive: a first sync copies beta, no halt',
    base: {},
    alpha: {},
    beta: { a: f1, b: d },
    expect: { ops: [copy('alpha', 'a', f1), mkdir('alpha', 'b')] },
  },
  {
    description: 'alpha root emptied while every archived file on beta changed: conflicts, no halt',
    base: { a: f0, b: d, 'b/x': f0 },
    alpha: {},
    beta: { a: f1, b: d, 'b/x': f2 },
    expect: {
      conflicts: [
        conflict('a', f0, undefined, f1, 'deleted on alpha', 'changed on beta'),
        conflict('b', d, undefined, d, 'directory deleted on alpha while its contents changed on beta'),
      ],
    },
  },
  {
    description: 'alpha root emptied while beta changed one file and kept another: halt',
    base: { a: d, 'a/x': f0, b: f0 },
    alpha: {},
    beta: { a: d, 'a/x': f1, b: f0 },
    expect: { halted: 'alpha' },
  },
  {
    description: 'alpha root emptied while beta changed, deleted or created every path: conflicts and copies, no halt',
    base: { a: f0, b: f0 },
    alpha: {},
    beta: { a: f1, n: f3 },
    expect: { conflicts: [conflict('a', f0, undefined, f1)], agrees: [agree('b', undefined)], ops: [copy('alpha', 'n', f3)] },
  },
  {
    description: 'alpha root emptied while beta created a file before an unchanged one: halt, the copy discarded too',
    base: { b: f0 },
    alpha: {},
    beta: { a: f1, b: f0 },
    expect: { halted: 'alpha' },
  },
  {
    description: 'alpha root holding only a symlink counts as empty: halt',
    base: { a: f0, b: f0 },
    alpha: { l: link },
    beta: { a: f0, b: f0 },
    expect: { halted: 'alpha' },
  },
  {
    description: 'alpha root holding only unsupported entries where the archive had files: reported, nothing removed, no halt',
    base: { a: f0, b: d, 'b/x': f0 },
    alpha: { a: link, b: unreadable },
    beta: { a: f0, b: d, 'b/x': f0 },
    expect: { unsupported: [reported('alpha', 'a', 'symlink'), reported('alpha', 'b', 'unreadable')] },
  },
  {
    description: 'alpha root emptied: a resolution for alpha does not lift the halt',
    base: { a: f0 },
    alpha: {},
    beta: { a: f1 },
    resolutions: { a: 'alpha' },
    expect: { halted: 'alpha' },
  },
  {
    description: 'alpha root emptied: a resolution for beta copies to alpha, no halt',
    base: { a: f0 },
    alpha: {},
    beta: { a: f1 },
    resolutions: { a: 'beta' },
    expect: { ops: [copy('alpha', 'a', f1)] },
  },
  {
    description: 'alpha root emptied but for one file: the deletions propagate',
    base: { a: f0, b: f0, c: d, 'c/x': f0 },
    alpha: { b: f0 },
    beta: { a: f0, b: f0, c: d, 'c/x': f0 },
    expect: { ops: [remove('beta', 'a', f0), remove('beta', 'c', d)] },
  },
];

const swapSide = (side: Side, mirrored: boolean): Side => (mirrored ? otherSide(side) : side);
const swapWords = (text: string): string => text.replace(/\b(alpha|beta)\b/g, (word) => (word === 'alpha' ? 'beta' : 'alpha'));

function pathOf(decision: Normal): string {
  return decision.kind === 'op' ? decision.op.path : decision.path;
}

/** normalise drops conflict sentences, to compare decisions with `Normal` ones. */
function normalise(decisions: readonly Decision[]): Normal[] {
  return orderReports(
    decisions.map((decision): Normal => {
      if (decision.kind !== 'conflict') return decision;
      const { path, base, alpha, beta } = decision.conflict;
      return { kind: 'conflict', path, base, alpha, beta };
    }),
  );
}

/** orderReports puts the two sides' unsupported reports at one path alpha first (mirroring swaps them). */
function orderReports(decisions: Normal[]): Normal[] {
  const out = [...decisions];
  for (let i = 0; i + 1 < out.length; i++) {
    const [x, y] = [out[i], out[i + 1]];
    if (x?.kind === 'unsupported' && y?.kind === 'unsupported' && x.path === y.path && x.side === 'beta') [out[i], out[i + 1]] = [y, x];
  }
  return out;
}

/**
 * orderKey is where the reconciler emits a decision: at its path, or for an op
 * that waits for its subtree, just after the last path below it (a made-up
 * last child, U+10FFFF, sorts after every real name).
 */
function orderKey(decision: Normal): string {
  return decision.kind === 'op' && afterSubtree.has(decision.op) ? `${decision.op.path}/\u{10FFFF}` : pathOf(decision);
}

/** mirror swaps alpha and beta in one expected decision. */
function mirror(decision: Normal): Normal {
  switch (decision.kind) {
    case 'op':
      return { kind: 'op', op: { ...decision.op, to: otherSide(decision.op.to) } };
    case 'agree':
    case 'conflict':
      return { ...decision, alpha: decision.beta, beta: decision.alpha };
    case 'unsupported':
      return { ...decision, side: otherSide(decision.side) };
  }
}

/** expectedDecisions merges a row's expectations into the one list the reconciler should return, in path order. */
function expectedDecisions(expected: Expected, mirrored: boolean): Normal[] {
  const keyed: (readonly [Normal, string])[] = [
    ...(expected.ops ?? []).map((op): Normal => ({ kind: 'op', op })).map((n) => [n, orderKey(n)] as const),
    ...(expected.conflicts ?? []).map((c) => {
      const n: Normal = { kind: 'conflict', path: c.path, base: c.base, alpha: c.alpha, beta: c.beta };
      return [n, conflictsAfterSubtree.has(c) ? `${c.path}/\u{10FFFF}` : c.path] as const;
    }),
    ...[...(expected.agrees ?? []), ...(expected.unsupported ?? [])].map((n) => [n, orderKey(n)] as const),
  ];
  // Stable: decisions at one path keep the order they were written in.
  keyed.sort(([, x], [, y]) => comparePaths(x, y));
  const all = keyed.map(([n]) => n);
  return orderReports(mirrored ? all.map(mirror) : all);
}

function run(c: Case, mirrored: boolean): void {
  const alpha = mirrored ? c.beta : c.alpha;
  const beta = mirrored ? c.alpha : c.beta;
  const resolutions = new Map(Object.entries(c.resolutions ?? {}).map(([path, side]) => [path, swapSide(side, mirrored)]));
  const result = reconcileAll(rowsOf(c.base, alpha, beta, c.refresh), { resolutions });

  if (c.expect.halted !== undefined) {
    expect(result).not.toHaveProperty('decisions');
    expect(result.halted).toContain(`the ${swapSide(c.expect.halted, mirrored)} root is empty`);
    return;
  }
  if (result.halted !== undefined) expect.fail(`unexpected halt: ${result.halted}`);
  expect(normalise(result.decisions)).toEqual(expectedDecisions(c.expect, mirrored));

  for (const want of c.expect.conflicts ?? []) {
    const got = result.decisions.find((decision) => decision.kind === 'conflict' && decision.conflict.path === want.path);
    if (got?.kind !== 'conflict') continue; // already reported by toEqual above
    for (const fragment of want.reason) expect(got.conflict.reason).toContain(mirrored ? swapWords(fragment) : fragment);
  }
}

describe('reconcile table', () => {
  test('has over a hundred and ten rows, each described once', () => {
    expect(table.length).toBeGreaterThanOrEqual(110);
    expect(new Set(table.map((c) => c.description)).size).toBe(table.length);
  });

  describe.for(['as written', 'mirrored'] as const)('%s', (mode) => {
    // Rows as [description, row] so that the title is the whole description
    // ('$description' would be quoted and cut at 40 characters).
    test.for(table.map((c) => [c.description, c] as const))('%s', ([, c]) => run(c, mode === 'mirrored'));
  });
});

describe('the empty-root halt', () => {
  // alpha emptied; beta created "a", kept "b" as archived, and changed the file below "c".
  const rows = rowsOf({ b: f0, c: d, 'c/x': f0 }, {}, { a: f1, b: f0, c: d, 'c/x': f2 });

  test('the streaming reconciler throws MassDeletionHalt, a SessionHalt, at the row whose removal the empty root would cause', () => {
    const reconciler = new Reconciler({ alphaEmpty: true, betaEmpty: false });
    const [a, b] = rows as [Row, Row, ...Row[]];
    expect(reconciler.push(a)).toEqual([{ kind: 'op', op: copy('alpha', 'a', f1) }]);
    let thrown: unknown;
    try {
      reconciler.push(b);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MassDeletionHalt);
    expect(thrown).toBeInstanceOf(SessionHalt);
    expect((thrown as Error).message).toBe(massDeletionReason('alpha'));
  });

  test('a directory removal halts when it is emitted, after the subtree: at end() for the last directory', () => {
    const reconciler = new Reconciler({ alphaEmpty: true });
    const last = rowsOf({ k: f3, z: d, 'z/x': f0 }, { k: f3 }, { k: f3, z: d, 'z/x': f0 });
    for (const row of last) expect(reconciler.push(row)).toEqual([]);
    expect(() => reconciler.end()).toThrow(MassDeletionHalt);
  });

  test('without the flags the reconciler never halts: the removal is emitted', () => {
    const reconciler = new Reconciler();
    const decisions = [...rows.flatMap((row) => reconciler.push(row)), ...reconciler.end()];
    expect(decisions.map((decision) => (decision.kind === 'op' ? `${decision.op.kind} ${decision.op.to} ${decision.op.path}` : `${decision.kind}`))).toEqual([
      'copy alpha a',
      'remove beta b',
      'conflict',
    ]);
  });

  test('reconcileAll computes the flags from the rows, and options override them', () => {
    expect(reconcileAll(rows).halted).toBe(massDeletionReason('alpha'));
    expect(reconcileAll(rows, { alphaEmpty: false }).halted).toBeUndefined();
    // beta is not empty, but told so: beta's emptiness would cause no removal on alpha.
    expect(reconcileAll(rows, { alphaEmpty: false, betaEmpty: true }).halted).toBeUndefined();
    // Both told so: the removal on beta still halts, for alpha.
    expect(reconcileAll(rows, { betaEmpty: true }).halted).toBe(massDeletionReason('alpha'));
  });

  test('a side told empty halts where its emptiness would remove something on the other side', () => {
    const deleted = rowsOf({ a: f0, ...kept }, { a: f0, ...kept }, { ...kept });
    expect(reconcileAll(deleted).halted).toBeUndefined();
    expect(reconcileAll(deleted, { betaEmpty: true }).halted).toBe(massDeletionReason('beta'));
  });
});
