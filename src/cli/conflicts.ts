/**
 * `ferry conflicts`, `ferry conflicts show <id>` and `ferry resolve <id>`.
 */

import { closeSync, constants, readSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeEntry } from '../core/entry.js';
import { UsageError } from '../core/errors.js';
import type { Tree } from '../fs/disk.js';
import { nativeDisk } from '../fs/native.js';
import type { ConflictRecord, Resolution, Store } from '../state/store.js';
import { EXIT, formatBytes, plural, printJson, printLines } from './output.js';
import { PowerboxStore } from '../state/powerbox-store.js';
import { looksRemote, parseTarget } from '../transport/target.js';

const DIFF_LIMIT = 1 << 20;

// The most lines two versions may differ by (removed plus added) for
// `conflicts show` to diff them, and the most time it spends trying: the
// line diff (Myers) takes time in proportion to the lines times their
// differences, and two unrelated 100 KB files kept it busy for minutes.
const DIFF_MAX_EDITS = 2000;
const DIFF_MAX_MS = 1000;

/** GRANT_BETA matches the beta label of a grant's session: vm:<name>#<grant id>:<guest root>. */
const GRANT_BETA = /^vm:([^#]+)#(\d+):(.*)$/s;

function parseId(arg: string | undefined, store: Store): ConflictRecord {
  if (arg === undefined) throw new UsageError('give a conflict id (see `ferry conflicts`)');
  if (!/^[1-9][0-9]*$/.test(arg)) throw new UsageError(`${JSON.stringify(arg)} is not a conflict id; ids are the numbers \`ferry conflicts\` lists`);
  const conflict = store.conflict(Number(arg));
  if (conflict === undefined) throw new UsageError(`no conflict with id ${arg}; \`ferry conflicts\` lists the open ones`);
  return conflict;
}

/** conflictsCommand lists open and pending conflicts of every session. */
export function conflictsCommand(store: Store, json: boolean): Promise<number> {
  const conflicts = store.openConflicts();
  const rows = conflicts.map((c) => {
    const session = store.sessionById(c.session);
    const grant = GRANT_BETA.exec(session?.beta ?? '');
    return {
      id: c.id,
      session: c.session,
      grant: grant === null ? null : Number(grant[2]),
      vm: grant === null ? null : (grant[1] ?? null),
      alphaRoot: session?.alpha ?? '',
      betaRoot: grant === null ? (session?.beta ?? '') : `${grant[1] ?? ''}:${grant[3] ?? ''}`,
      path: c.path,
      reason: c.reason,
      alpha: describeEntry(c.alpha),
      beta: describeEntry(c.beta),
      state: c.state,
      resolution: c.resolution,
      detectedAt: new Date(c.detectedAt).toISOString(),
    };
  });
  if (json) printJson(rows);
  else if (rows.length === 0) process.stdout.write('no conflicts\n');
  else {
    printLines(
      rows.map((r) => {
        const pending = r.state === 'pending' ? ` [keep ${r.resolution} on next sync]` : '';
        const where = r.grant === null ? `${r.alphaRoot} ⇄ ${r.betaRoot}` : `grant ${r.grant} (${r.alphaRoot} ⇄ ${r.betaRoot})`;
        return `${r.id}\t${where}\t${r.path}\t${r.reason}${pending}`;
      }),
    );
  }
  return Promise.resolve(EXIT.ok);
}

interface SideInfo {
  readonly root: string;
  readonly present: boolean;
  readonly kind?: string;
  readonly size?: number;
  readonly modified?: string;
  readonly mode?: string;
}

// What a local side holds at path: its metadata and, for a small file, its
// text, read through a tree pinned at the root like every host-side read.
function localSide(root: string, path: string): { info: SideInfo; text: string | undefined } {
  let tree;
  try {
    tree = nativeDisk().open(root);
  } catch {
    return { info: { root, present: false }, text: undefined };
  }
  try {
    const st = tree.stat(path);
    if (st === undefined) return { info: { root, present: false }, text: undefined };
    const kind = { file: 'file', dir: 'directory', symlink: 'symbolic link', special: 'special file' }[st.kind];
    const modified = new Date(Number(st.stamp.readBigUInt64LE(24) / 1_000_000n)).toISOString();
    const info = { root, present: true, kind, size: st.size, modified, mode: (st.mode & 0o7777).toString(8).padStart(4, '0') };
    return { info, text: st.kind === 'file' && st.size <= DIFF_LIMIT ? readText(tree, path, st.size) : undefined };
  } catch {
    return { info: { root, present: false }, text: undefined };
  } finally {
    tree.close();
  }
}

function readText(tree: Tree, path: string, size: number): string | undefined {
  const fd = tree.open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const data = Buffer.alloc(size);
    const n = readSync(fd, data, 0, size, 0);
    return data.subarray(0, n).includes(0) ? undefined : data.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

// What a guest (ssh) side holds at path: its metadata and, for a small file,
// its text. A grant's guest is reached as the daemon reaches it: the VM's
// key and its pinned host key.
async function remoteSide(store: Store, root: string, path: string, key: string | undefined): Promise<{ info: SideInfo; text: string | undefined }> {
  const { connectGuest } = await import('../transport/ssh.js');
  const grant = GRANT_BETA.exec(root);
  let guest;
  if (grant !== null) {
    const vm = new PowerboxStore(store).vm(grant[1] ?? '');
    if (vm === undefined) throw new UsageError(`the VM of this conflict (${grant[1] ?? ''}) is gone`);
    guest = await connectGuest({ user: vm.user, host: vm.host, port: vm.port, path: grant[3] ?? '' }, 'beta', {
      home: store.home,
      key: vm.keyFile,
      acceptNewHostKey: false,
      pinnedHostKey: Buffer.from(vm.hostKey, 'base64'),
    });
  } else {
    guest = await connectGuest(parseTarget(root), 'beta', { acceptNewHostKey: false, home: store.home, ...(key !== undefined ? { key } : {}) });
  }
  try {
    const entry = await guest.endpoint.inspect(path);
    if (entry === undefined) return { info: { root, present: false }, text: undefined };
    if (entry.kind !== 'file') return { info: { root, present: true, kind: entry.kind === 'dir' ? 'directory' : describeEntry(entry) }, text: undefined };
    let text: string | undefined;
    if (entry.size <= DIFF_LIMIT) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of guest.endpoint.read(path, { kind: 'file', size: entry.size, hash: entry.hash })) chunks.push(chunk);
      const data = Buffer.concat(chunks);
      text = data.includes(0) ? undefined : data.toString('utf8');
    }
    return { info: { root, present: true, kind: 'file', size: entry.size }, text };
  } finally {
    guest.close();
  }
}

/** showConflictCommand prints one conflict: both sides' metadata and, for text, a unified diff. */
export async function showConflictCommand(store: Store, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean', default: false }, key: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length > 1) throw new UsageError('usage: ferry conflicts show <id> [--json] [--key FILE]');
  const conflict = parseId(positionals[0], store);
  const session = store.sessionById(conflict.session);
  if (session === undefined) throw new UsageError(`conflict ${conflict.id} belongs to a session that no longer exists`);
  const { info: alpha, text: alphaText } = localSide(session.alpha, conflict.path);
  let beta: SideInfo;
  let betaText: string | undefined;
  if (looksRemote(session.beta) || GRANT_BETA.test(session.beta)) {
    ({ info: beta, text: betaText } = await remoteSide(store, session.beta, conflict.path, values.key));
  } else {
    ({ info: beta, text: betaText } = localSide(session.beta, conflict.path));
  }
  const diff = alphaText !== undefined && betaText !== undefined ? await textDiff(conflict.path, alphaText, betaText) : undefined;
  if (values.json) {
    printJson({
      id: conflict.id,
      path: conflict.path,
      reason: conflict.reason,
      state: conflict.state,
      resolution: conflict.resolution,
      detectedAt: new Date(conflict.detectedAt).toISOString(),
      base: describeEntry(conflict.base),
      alpha,
      beta,
      diff: diff?.patch ?? null,
    });
    return EXIT.ok;
  }
  const where = (info: SideInfo) => (looksRemote(info.root) ? `${info.root}/${conflict.path}` : join(info.root, conflict.path));
  const line = (label: string, info: SideInfo) => {
    if (!info.present) return `${label}: absent  (${where(info)})`;
    const details = [info.kind ?? '', ...(info.size !== undefined ? [formatBytes(info.size)] : []), ...(info.modified !== undefined ? [`modified ${info.modified}`] : []), ...(info.mode !== undefined ? [`mode ${info.mode}`] : [])];
    return `${label}: ${details.join(', ')}  (${where(info)})`;
  };
  const out = [
    `conflict ${conflict.id}: ${conflict.path}`,
    `  ${conflict.reason}`,
    `  detected ${new Date(conflict.detectedAt).toISOString()}; state ${conflict.state}${conflict.resolution !== null ? ` (keep ${conflict.resolution})` : ''}`,
    `  last agreed: ${describeEntry(conflict.base)}`,
    `  ${line('alpha', alpha)}`,
    `  ${line('beta ', beta)}`,
  ];
  if (diff?.patch !== undefined) out.push('', ...diff.patch.trimEnd().split('\n'));
  else if (diff !== undefined) out.push('', `  (no diff: too many differences to show (${plural(diff.alphaLines, 'line')} on alpha, ${diff.betaLines} on beta); compare the files directly)`);
  else if (alpha.kind === 'file' && beta.kind === 'file') out.push('', '  (no diff: a side is binary or larger than 1 MiB)');
  if (conflict.state === 'open' || conflict.state === 'pending') out.push('', `resolve with: ferry resolve ${conflict.id} --keep alpha|beta|both`);
  printLines(out);
  return EXIT.ok;
}

/** TextDiff is the unified diff of two texts, or, when they differ too much to diff in bounded time, their line counts. */
interface TextDiff {
  readonly patch: string | undefined;
  readonly alphaLines: number;
  readonly betaLines: number;
}

async function textDiff(path: string, alphaText: string, betaText: string): Promise<TextDiff> {
  const { createTwoFilesPatch } = await import('diff');
  const patch = createTwoFilesPatch(`alpha/${path}`, `beta/${path}`, alphaText, betaText, undefined, undefined, { context: 3, maxEditLength: DIFF_MAX_EDITS, timeout: DIFF_MAX_MS });
  return { patch, alphaLines: lineCount(alphaText), betaLines: lineCount(betaText) };
}

function lineCount(text: string): number {
  if (text === '') return 0;
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n : n + 1;
}

const KEEP: Record<string, Resolution> = { alpha: 'alpha', beta: 'beta', host: 'alpha', guest: 'beta', both: 'both' };

/** resolveCommand records how a conflict is to be resolved; the next sync of its pair applies it. */
export function resolveCommand(store: Store, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { keep: { type: 'string' }, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('usage: ferry resolve <id> --keep alpha|beta|host|guest|both');
  const conflict = parseId(positionals[0], store);
  if (values.keep === undefined) throw new UsageError('say which version to keep: --keep alpha|beta|host|guest|both');
  const keep = KEEP[values.keep];
  if (keep === undefined) throw new UsageError(`--keep ${values.keep}: choose alpha, beta, host, guest or both`);
  if (conflict.state !== 'open' && conflict.state !== 'pending') throw new UsageError(`conflict ${conflict.id} is already ${conflict.state}`);
  store.transaction(() => {
    store.setConflictState(conflict.id, 'pending', keep);
    store.log('resolve', conflict.session, conflict.path, `keep ${keep} requested`);
  });
  const session = store.sessionById(conflict.session);
  if (values.json) printJson({ id: conflict.id, path: conflict.path, keep, state: 'pending' });
  else {
    // A grant's pair is the daemon's (its beta reads vm:NAME#ID:path), not one for `ferry sync`.
    const grant = GRANT_BETA.exec(session?.beta ?? '');
    const when =
      grant !== null
        ? `the daemon applies it to grant ${grant[2] ?? ''} (VM ${grant[1] ?? ''}) at once`
        : `applied by the next \`ferry sync ${session?.alpha ?? '<alpha>'} ${session?.beta ?? '<beta>'}\` (at once by one running with --watch)`;
    // A grant speaks of host and guest.
    const kept = grant !== null && keep !== 'both' ? (keep === 'alpha' ? 'host' : 'guest') : keep;
    printLines([`conflict ${conflict.id} (${conflict.path}): keeping ${kept}; ${when}`]);
  }
  return Promise.resolve(EXIT.ok);
}
