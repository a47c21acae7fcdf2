/**
 * Property tests of the reconciler, after Balasubramaniam and Pierce, "What is
 * a file synchronizer?" (MobiCom 1998): from a random archive both sides once
 * agreed on, each side makes random edits; the decisions of `reconcileAll`,
 * applied to in-memory copies of both trees, must leave valid trees, keep
 * conflicts untouched, propagate every change made on one side only, keep what
 * the sides already agree on, and converge.
 */

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { DIR, type Entry, type Side, type UnsupportedReason, otherSide, sameEntry } from '../src/core/entry.js';
import { comparePaths, isWithin, joinPath } from '../src/core/path.js';
import { type Decision, type Op, Reconciler, type ReconcileResult, type Row, reconcileAll } from '../src/core/reconcile.js';
import { type Tree, deleteSubtree, file, rowsOf, sortedPaths, subtree, treeProblems, unsupported } from './support/trees.js';

const RUNS = { numRuns: 1000 };

// A small world: three names, of which "a.b" sorts between "a"'s subtree and
// "b" (so scopes ending early or late show up), three contents, depth 3.
const NAMES = ['a', 'a.b', 'b'] as const;
const CONTENTS = ['x', 'y', 'z'] as const;
const REASONS: readonly UnsupportedReason[] = ['symlink', 'special', 'unreadable', 'bad-name'];
const MAX_DEPTH = 3;

/** Every path of depth 1 to MAX_DEPTH over NAMES. */
const UNIVERSE: readonly string[] = (() => {
  const paths: string[] = [];
  let level = [''];
  for (let depth = 1; depth <= MAX_DEPTH; depth++) {
    level = level.flatMap((parent) => NAMES.map((name) => joinPath(parent, name)));
    paths.push(...level);
  }
  return paths.sort(comparePaths);
})();

/** Listing is a subtree as (path relative to its top, entry) pairs; "" is the top itself. */
type Listing = readonly (readonly [string, Entry])[];

const fileArb = fc.constantFrom(...CONTENTS).map((content) => file(content));

/** nodeArb generates a file, an empty directory or (above MAX_DEPTH) a directory with children. */
function nodeArb(depth: number): fc.Arbitrary<Listing> {
  const leaf = fc.oneof(
    { weight: 3, arbitrary: fileArb.map((entry): Listing => [['', entry]]) },
    { weight: 1, arbitrary: fc.constant<Listing>([['', DIR]]) },
  );
  if (depth === MAX_DEPTH) return leaf;
  return fc.oneof(leaf, childrenArb(depth + 1).map((children): Listing => [['', DIR], ...children]));
}

/** childrenArb generates the contents of a directory whose children are at depth. */
function childrenArb(depth: number): fc.Arbitrary<Listing> {
  const children = NAMES.map((name) =>
    fc.option(
      nodeArb(depth).map((node): Listing => node.map(([rel, entry]) => [rel === '' ? name : `${name}/${rel}`, entry] as const)),
      { nil: undefined },
    ),
  );
  return fc.tuple(...children).map((nodes) => nodes.flatMap((node) => node ?? []));
}

/**
 * Edit is one change a user makes on one side. `pick` chooses the path: among
 * the paths the side holds, or (when `fresh` or the side is empty) among all
 * paths of the world, so that edits both touch what exists and create.
 */
interface Edit {
  readonly action: 'delete' | 'write' | 'mkdir' | 'unsupported';
  readonly pick: number;
  readonly fresh: boolean;
  readonly content: (typeof CONTENTS)[number];
  readonly reason: UnsupportedReason;
}

const editArb: fc.Arbitrary<Edit> = fc.record({
  action: fc.oneof(
    { weight: 3, arbitrary: fc.constant('delete' as const) },
    { weight: 4, arbitrary: fc.constant('write' as const) },
    { weight: 2, arbitrary: fc.constant('mkdir' as const) },
    { weight: 1, arbitrary: fc.constant('unsupported' as const) },
  ),
  pick: fc.nat({ max: 1000 }),
  fresh: fc.boolean(),
  content: fc.constantFrom(...CONTENTS),
  reason: fc.constantFrom(...REASONS),
});

/**
 * Scenario is an archive and the edits made since: some on both sides alike,
 * then some on each; now and then a side is emptied wholesale afterwards (an
 * unmounted disk), which random edits alone rarely do.
 */
interface Scenario {
  readonly archive: Listing;
  readonly shared: readonly Edit[];
  readonly alpha: readonly Edit[];
  readonly beta: readonly Edit[];
  readonly emptied: 'none' | Side | 'both';
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  archive: childrenArb(1),
  shared: fc.array(editArb, { maxLength: 2 }),
  alpha: fc.array(editArb, { maxLength: 4 }),
  beta: fc.array(editArb, { maxLength: 4 }),
  emptied: fc.oneof(
    { weight: 12, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom('alpha' as const, 'beta' as const, 'both' as const) },
  ),
});

/** Trees is the archive and both sides. */
interface Trees {
  readonly base: Map<string, Entry>;
  readonly alpha: Map<string, Entry>;
  readonly beta: Map<string, Entry>;
}

/** makeDirectories turns every ancestor of path into a directory, replacing whatever was there. */
function makeDirectories(t: Map<string, Entry>, path: string): void {
  let ancestor = '';
  for (const name of path.split('/').slice(0, -1)) {
    ancestor = joinPath(ancestor, name);
    if (t.get(ancestor)?.kind !== 'dir') {
      deleteSubtree(t, ancestor);
      t.set(ancestor, DIR);
    }
  }
}

function applyEdit(t: Map<string, Entry>, edit: Edit): void {
  const held = [...t.keys()].sort(comparePaths);
  const choices = edit.fresh || held.length === 0 ? UNIVERSE : held;
  const path = choices[edit.pick % choices.length] ?? 'a';
  if (edit.action === 'delete') {
    deleteSubtree(t, path);
    return;
  }
  makeDirectories(t, path);
  if (edit.action === 'mkdir' && t.get(path)?.kind === 'dir') return;
  deleteSubtree(t, path);
  t.set(path, edit.action === 'write' ? file(edit.content) : edit.action === 'mkdir' ? DIR : unsupported(edit.reason));
}

function build(s: Scenario): Trees {
  const base = new Map<string, Entry>(s.archive);
  const alpha = new Map(base);
  const beta = new Map(base);
  for (const edit of s.shared) {
    applyEdit(alpha, edit);
    applyEdit(beta, edit);
  }
  for (const edit of s.alpha) applyEdit(alpha, edit);
  for (const edit of s.beta) applyEdit(beta, edit);
  if (s.emptied === 'alpha' || s.emptied === 'both') alpha.clear();
  if (s.emptied === 'beta' || s.emptied === 'both') beta.clear();
  return { base, alpha, beta };
}

function rowsFor(t: Trees): Row[] {
  return rowsOf(t.base, t.alpha, t.beta);
}

function decisionsOf(result: ReconcileResult): Decision[] {
  if (result.halted !== undefined) throw new Error(`unexpected halt: ${result.halted}`);
  return result.decisions;
}

function isHalt(t: Trees): boolean {
  return t.base.size > 0 && (t.alpha.size === 0) !== (t.beta.size === 0);
}

/** pathOf is the path a decision is about. */
function pathOf(decision: Decision): string {
  switch (decision.kind) {
    case 'op':
      return decision.op.path;
    case 'conflict':
      return decision.conflict.path;
    default:
      return decision.path;
  }
}

/** Scopes are the paths below which nothing may change: conflicts and unsupported entries. */
interface Scopes {
  readonly conflicts: readonly string[];
  readonly unsupported: readonly string[];
}

function scopesOf(decisions: readonly Decision[]): Scopes {
  return {
    conflicts: decisions.flatMap((d) => (d.kind === 'conflict' ? [d.conflict.path] : [])),
    unsupported: decisions.flatMap((d) => (d.kind === 'unsupported' ? [d.path] : [])),
  };
}

const within = (path: string, scopes: readonly string[]): boolean => scopes.some((scope) => isWithin(path, scope));

function sameTree(x: Tree, y: Tree): boolean {
  return sortedPaths(x, y).every((path) => sameEntry(x.get(path), y.get(path)));
}

/** Synced is both sides after applying the ops, and every compare-and-swap that would have failed. */
interface Synced {
  readonly alpha: Map<string, Entry>;
  readonly beta: Map<string, Entry>;
  readonly casFailures: string[];
}

/**
 * applyOps applies ops in order to copies of both sides, checking each op's
 * expectation as the applier's compare-and-swap would: the target holds
 * `expect`, and (when checkArchive) a removed subtree is still the archive's.
 */
function applyOps(t: Trees, decisions: readonly Decision[], checkArchive: (path: string) => boolean): Synced {
  const sides = { alpha: new Map(t.alpha), beta: new Map(t.beta) };
  const casFailures: string[] = [];
  for (const decision of decisions) {
    if (decision.kind !== 'op') continue;
    const op: Op = decision.op;
    const side = sides[op.to];
    if (!sameEntry(side.get(op.path), op.expect)) casFailures.push(`${op.kind} ${op.to} ${op.path}: expected ${JSON.stringify(op.expect)}`);
    switch (op.kind) {
      case 'copy':
        side.set(op.path, op.entry);
        break;
      case 'mkdir':
        side.set(op.path, DIR);
        break;
      case 'remove':
        if (checkArchive(op.path) && !sameTree(subtree(side, op.path), subtree(t.base, op.path)))
          casFailures.push(`remove ${op.to} ${op.path}: subtree differs from the archive`);
        deleteSubtree(side, op.path);
        break;
    }
  }
  return { ...sides, casFailures };
}

/** recordDecisions is the archive after the decisions are applied, as the engine records them. */
function recordDecisions(base: Tree, decisions: readonly Decision[]): Map<string, Entry> {
  const archive = new Map(base);
  for (const decision of decisions) {
    if (decision.kind === 'op') {
      const { op } = decision;
      if (op.kind === 'remove') deleteSubtree(archive, op.path);
      else archive.set(op.path, op.kind === 'copy' ? op.entry : DIR);
    } else if (decision.kind === 'agree') {
      if (decision.alpha === undefined) archive.delete(decision.path);
      else archive.set(decision.path, decision.alpha);
    }
  }
  return archive;
}

/** reconcileUnchecked runs the streaming reconciler without the wholesale-deletion check. */
function reconcileUnchecked(rows: readonly Row[]): Decision[] {
  const reconciler = new Reconciler();
  return [...rows.flatMap((row) => reconciler.push(row)), ...reconciler.end()];
}

/** comparable drops conflict sentences (their word order depends on the side) and orders two reports at one path alpha first. */
function comparable(decisions: readonly Decision[]): unknown[] {
  const out: Decision[] = decisions.map((d) => (d.kind === 'conflict' ? { kind: 'conflict', conflict: { ...d.conflict, reason: '' } } : d));
  for (let i = 0; i + 1 < out.length; i++) {
    const [x, y] = [out[i], out[i + 1]];
    if (x?.kind === 'unsupported' && y?.kind === 'unsupported' && x.path === y.path && x.side === 'beta') [out[i], out[i + 1]] = [y, x];
  }
  return out;
}

function mirrorDecision(d: Decision): Decision {
  switch (d.kind) {
    case 'op':
      return { kind: 'op', op: { ...d.op, to: otherSide(d.op.to) } };
    case 'agree':
      return { ...d, alpha: d.beta, beta: d.alpha };
    case 'conflict':
      return { kind: 'conflict', conflict: { ...d.conflict, alpha: d.conflict.beta, beta: d.conflict.alpha } };
    case 'unsupported':
      return { ...d, side: otherSide(d.side) };
  }
}

describe('reconciler properties', () => {
  test('the generator reaches the interesting cases', () => {
    // Not a property: a guard that the world is rich enough for the ones below.
    const seen = { halt: 0, conflict: 0, dirConflict: 0, remove: 0, mkdir: 0, agree: 0, unsupported: 0 };
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const t = build(s);
        const result = reconcileAll(rowsFor(t));
        if (result.halted !== undefined) {
          seen.halt++;
          return;
        }
        for (const d of result.decisions) {
          if (d.kind === 'conflict') seen.conflict++;
          if (d.kind === 'conflict' && d.conflict.reason.startsWith('directory')) seen.dirConflict++;
          if (d.kind === 'op' && d.op.kind === 'remove') seen.remove++;
          if (d.kind === 'op' && d.op.kind === 'mkdir') seen.mkdir++;
          if (d.kind === 'agree') seen.agree++;
          if (d.kind === 'unsupported') seen.unsupported++;
        }
      }),
      { ...RUNS, seed: 1 },
    );
    for (const [kind, count] of Object.entries(seen)) expect(count, kind).toBeGreaterThan(30);
  });

  test('determinism: the same rows give deep-equal results, and streaming row by row gives the same', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const rows = rowsFor(build(s));
        const first = reconcileAll(rows);
        expect(reconcileAll(structuredClone(rows))).toEqual(first);
        if (first.halted === undefined) expect(reconcileUnchecked(rows)).toEqual(first.decisions);
      }),
      RUNS,
    );
  });

  test('wholesale deletion: a halt exactly when one root was emptied with a non-empty archive, and then no decisions', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const t = build(s);
        const result = reconcileAll(rowsFor(t));
        expect(result.halted !== undefined).toBe(isHalt(t));
        if (result.halted !== undefined) expect(result).toEqual({ halted: result.halted });
      }),
      RUNS,
    );
  });

  test('symmetry: swapping alpha and beta swaps every decision', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const t = build(s);
        const result = reconcileAll(rowsFor(t));
        const swapped = reconcileAll(rowsOf(t.base, t.beta, t.alpha));
        if (result.halted !== undefined) {
          expect(swapped.halted).toBeDefined();
          return;
        }
        expect(comparable(decisionsOf(swapped))).toEqual(comparable(result.decisions.map(mirrorDecision)));
      }),
      RUNS,
    );
  });

  test('decisions come in path order, at most one outcome a path, and nothing below a conflict or an unsupported entry (f)', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const t = build(s);
        fc.pre(!isHalt(t));
        const decisions = decisionsOf(reconcileAll(rowsFor(t)));
        const problems: string[] = [];
        decisions.forEach((d, i) => {
          const previous = decisions[i - 1];
          if (previous !== undefined && comparePaths(pathOf(previous), pathOf(d)) > 0) problems.push(`${pathOf(d)} after ${pathOf(previous)}`);
        });
        const outcomes = decisions.filter((d) => d.kind === 'agree' || d.kind === 'conflict').map(pathOf);
        if (new Set(outcomes).size !== outcomes.length) problems.push(`two outcomes for one path: ${outcomes.join(', ')}`);
        const { conflicts, unsupported: reports } = scopesOf(decisions);
        for (const d of decisions) {
          const path = pathOf(d);
          if (d.kind !== 'conflict' && within(path, conflicts)) problems.push(`${d.kind} at ${path}, at or below a conflict`);
          if (d.kind !== 'unsupported' && within(path, reports)) problems.push(`${d.kind} at ${path}, at or below an unsupported entry`);
        }
        expect(problems).toEqual([]);
      }),
      RUNS,
    );
  });

  test('applying the ops: valid trees, ops that find what they expect, conflicts untouched, one-sided changes propagated, agreements kept (a-d)', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const t = build(s);
        fc.pre(!isHalt(t));
        const decisions = decisionsOf(reconcileAll(rowsFor(t)));
        const synced = applyOps(t, decisions, () => true);
        const { conflicts, unsupported: reports } = scopesOf(decisions);
        const problems: string[] = [...synced.casFailures];

        // (a) Both trees stay valid: every parent is a directory.
        problems.push(...treeProblems(synced.alpha).map((p) => `alpha: ${p}`), ...treeProblems(synced.beta).map((p) => `beta: ${p}`));

        for (const path of sortedPaths(t.base, t.alpha, t.beta, synced.alpha, synced.beta)) {
          const [base, alpha, beta] = [t.base.get(path), t.alpha.get(path), t.beta.get(path)];
          const [alphaAfter, betaAfter] = [synced.alpha.get(path), synced.beta.get(path)];
          const untouched = sameEntry(alphaAfter, alpha) && sameEntry(betaAfter, beta);
          // (b) A conflict, and everything below it, is left as it is on both sides; so is an unsupported entry.
          if (within(path, conflicts) && !untouched) problems.push(`${path}: changed below a conflict`);
          if (within(path, reports) && !untouched) problems.push(`${path}: changed below an unsupported entry`);
          // (d) What the sides already agree on stays.
          if (sameEntry(alpha, beta) && !untouched) problems.push(`${path}: agreed, then changed`);
          // (c) A change made on one side only reaches the other.
          if (within(path, conflicts) || within(path, reports)) continue;
          const alphaChanged = !sameEntry(alpha, base);
          if (alphaChanged === !sameEntry(beta, base)) continue;
          const changed = alphaChanged ? alpha : beta;
          if (!sameEntry(alphaAfter, changed) || !sameEntry(betaAfter, changed)) problems.push(`${path}: changed on ${alphaChanged ? 'alpha' : 'beta'} only, not propagated`);
        }
        expect(problems).toEqual([]);
      }),
      RUNS,
    );
  });

  test('convergence: after the sync the archive matches both sides outside conflicts, and reconciling again gives no ops (e)', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const t = build(s);
        fc.pre(!isHalt(t));
        const decisions = decisionsOf(reconcileAll(rowsFor(t)));
        const synced = applyOps(t, decisions, () => true);
        const archive = recordDecisions(t.base, decisions);
        const { conflicts, unsupported: reports } = scopesOf(decisions);

        const stale = sortedPaths(archive, synced.alpha, synced.beta).filter(
          (path) => !within(path, conflicts) && !within(path, reports) && !(sameEntry(archive.get(path), synced.alpha.get(path)) && sameEntry(archive.get(path), synced.beta.get(path))),
        );
        expect(stale).toEqual([]);

        // Reconciling again repeats the conflicts and reports, and nothing else.
        const rows = rowsOf(archive, synced.alpha, synced.beta);
        const remaining = decisions.filter((d) => d.kind === 'conflict' || d.kind === 'unsupported');
        expect(reconcileUnchecked(rows)).toEqual(remaining);
        const again = reconcileAll(rows);
        if (again.halted === undefined) expect(again.decisions).toEqual(remaining);
        else {
          // The one way the second pass halts: a side left empty by the sync
          // itself while the archive still holds only conflicted paths.
          expect(synced.alpha.size === 0 || synced.beta.size === 0).toBe(true);
          expect([...archive.keys()].every((path) => within(path, conflicts))).toBe(true);
        }
      }),
      RUNS,
    );
  });

  test('resolutions: every conflict resolved for a random side ends with both sides equal to the winner there, and nothing else moves', () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(fc.constantFrom<Side>('alpha', 'beta'), { minLength: 32, maxLength: 32 }), (s, winners) => {
        const t = build(s);
        fc.pre(!isHalt(t));
        const rows = rowsFor(t);
        const first = decisionsOf(reconcileAll(rows));
        const resolved = scopesOf(first).conflicts;
        const resolutions = new Map(resolved.map((path, i): [string, Side] => [path, winners[i % winners.length] ?? 'alpha']));
        const decisions = decisionsOf(reconcileAll(rows, { resolutions }));

        // Outside the resolved paths, the decisions are those made without resolutions.
        const outside = (list: readonly Decision[]): Decision[] => list.filter((d) => !within(pathOf(d), resolved));
        expect(outside(decisions)).toEqual(outside(first));
        expect(decisions.filter((d) => d.kind === 'conflict')).toEqual([]);

        const synced = applyOps(t, decisions, (path) => !within(path, resolved));
        const reports = scopesOf(decisions).unsupported;
        const problems: string[] = [...synced.casFailures];
        problems.push(...treeProblems(synced.alpha).map((p) => `alpha: ${p}`), ...treeProblems(synced.beta).map((p) => `beta: ${p}`));
        for (const path of sortedPaths(t.alpha, t.beta, synced.alpha, synced.beta)) {
          const scope = resolved.find((r) => isWithin(path, r));
          if (scope === undefined) continue;
          const [alpha, beta] = [t.alpha.get(path), t.beta.get(path)];
          const [alphaAfter, betaAfter] = [synced.alpha.get(path), synced.beta.get(path)];
          if (within(path, reports)) {
            if (!sameEntry(alphaAfter, alpha) || !sameEntry(betaAfter, beta)) problems.push(`${path}: changed below an unsupported entry`);
            continue;
          }
          const winner = resolutions.get(scope) === 'alpha' ? alpha : beta;
          if (!sameEntry(alphaAfter, winner) || !sameEntry(betaAfter, winner)) problems.push(`${path}: not the ${resolutions.get(scope)} version`);
        }
        expect(problems).toEqual([]);
      }),
      RUNS,
    );
  });
});
