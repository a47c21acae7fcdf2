/**
 * The agent protocol's messages, and a validity check for each one that
 * arrives. Everything from the guest is hostile: decoding calls the check,
 * and a message that fails it ends the channel with the reason.
 */

import type { Entry } from '../core/entry.js';
import { compareNames, componentProblem, parsePath, InvalidPathError } from '../core/path.js';
import { ProtocolError } from './frame.js';

/** Kinds of listed entries, as the Disk records them. */
export const WIRE_KIND = { file: 0, dir: 1, symlink: 2, special: 3, unreadable: 4, badName: 5 } as const;

/** WireEntry is an Entry on the wire, with the stamp as 80 hex digits. */
export type WireEntry =
  | { readonly kind: 'file'; readonly size: number; readonly hash: string; readonly stamp?: string; readonly digest?: number }
  | { readonly kind: 'dir' }
  | { readonly kind: 'unsupported'; readonly reason: 'symlink' | 'special' | 'unreadable' | 'bad-name' };

/** A listed entry: [name, kind, mode, size, stamp (80 hex), stamp digest]. */
export type WireListed = [string, number, number, number, string, number];

/** Requests from the host to the agent. */
export type Request =
  | { t: 'prepare'; id: number }
  | { t: 'list'; id: number; path: string; expect?: number }
  /** Which of these directories still list with the digest given: many recorded listings checked in one round trip. */
  | { t: 'unchanged'; id: number; dirs: [path: string, digest: number][] }
  | { t: 'hash'; id: number; path: string; size: number; stamp: string }
  | { t: 'read'; id: number; path: string; size: number; stamp?: string }
  | { t: 'stage'; id: number; path: string; size: number }
  /**
   * Stages small files at once: their contents follow as data frames under
   * this id, one after another, then an end. The files' staged ids are id,
   * id + 1, ... in order.
   */
  | { t: 'stageMany'; id: number; files: [path: string, size: number][] }
  | { t: 'end'; id: number }
  | { t: 'discard'; id: number; staged: number }
  | { t: 'commit'; id: number; staged: number; expect: WireEntry | null; stripExec: boolean }
  /** Commits many staged files at paths where nothing may be, in one round trip. */
  | { t: 'commitNew'; id: number; staged: number[] }
  | { t: 'mkdir'; id: number; path: string; expect: WireEntry | null }
  | { t: 'unlink'; id: number; path: string; expect: WireEntry }
  | { t: 'rmdir'; id: number; path: string }
  | { t: 'move'; id: number; path: string; to: string; expect: WireEntry }
  | { t: 'inspect'; id: number; path: string }
  | { t: 'exists'; id: number; path: string }
  | { t: 'sweep'; id: number }
  | { t: 'barrier'; id: number }
  /** Where the root is in the guest: its canonical path (no link, no `..`). */
  | { t: 'where'; id: number }
  | { t: 'watch'; id: number; only?: string };

/** Replies from the agent to the host. */
export type Reply =
  | { t: 'ok'; id: number }
  | { t: 'listing'; id: number; digest: number; complete: boolean; entries: WireListed[] }
  /** For each directory of an unchanged request, in order: whether it lists with the digest given. */
  | { t: 'same'; id: number; same: boolean[] }
  | { t: 'hash'; id: number; hash: string }
  | { t: 'end'; id: number }
  | { t: 'staged'; id: number; size: number; hash: string }
  /** One result per file of a stageMany, in order. */
  | { t: 'stagedMany'; id: number; results: StageManyResult[] }
  | { t: 'committed'; id: number; digest: number; strippedExec: boolean }
  /** One result per staged id of a commitNew, in order: the new stamp digest, or why it failed. */
  | { t: 'committedNew'; id: number; results: CommitNewResult[] }
  | { t: 'entry'; id: number; entry: WireEntry | null }
  | { t: 'exists'; id: number; exists: boolean }
  | { t: 'where'; id: number; real: string }
  | { t: 'error'; id: number; code: 'changed' | 'path'; message: string }
  /** After a watch request is accepted: changes in the guest, under that request's id, until the channel ends. */
  | { t: 'changed'; id: number; dirs?: string[]; deleted?: boolean; rescan?: string };

/** A file's outcome in a stageMany: [size, hash] staged, or [error code, message]. */
export type StageManyResult = [number, string] | ['changed' | 'path', string];

/** A file's outcome in a commitNew: its stamp digest, or [error code, message]. */
export type CommitNewResult = number | ['changed' | 'path', string];

/** The agent's first message. */
export interface AgentHello {
  t: 'hello';
  version: number;
  node: string;
  /** The disk the agent works on: ferry's native shims, or plain Node where they are not there or do not load. */
  disk: GuestDisk;
}

/** GuestDisk names the disk a guest agent works on. */
export type GuestDisk = 'native' | 'portable';

/** AgentInfo is what an agent says of itself: its Node.js version and its disk. */
export interface AgentInfo {
  readonly node: string;
  readonly disk: GuestDisk;
}

/** The host's first message: which root to serve. */
export interface HostHello {
  t: 'hello';
  version: number;
  root: string;
}

// ---- checks ---------------------------------------------------------------

type Json = Record<string, unknown>;

function fail(what: string): never {
  throw new ProtocolError(what);
}

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not an object`);
  return value as Json;
}

function exactKeys(o: Json, required: readonly string[], optional: readonly string[], what: string): void {
  for (const key of required) if (!(key in o)) fail(`${what} lacks "${key}"`);
  for (const key of Object.keys(o)) if (!required.includes(key) && !optional.includes(key)) fail(`${what} has an unknown field "${key}"`);
}

function uint(value: unknown, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) fail(`${what} is not an integer in 0..${max}`);
  return value;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail(`${what} is not a boolean`);
  return value;
}

function text(value: unknown, max: number, what: string): string {
  if (typeof value !== 'string' || value.length > max) fail(`${what} is not a string of at most ${max} characters`);
  return value;
}

function hex(value: unknown, digits: number, what: string): string {
  if (typeof value !== 'string' || value.length !== digits || !/^[0-9a-f]+$/.test(value)) fail(`${what} is not ${digits} hex digits`);
  return value;
}

function path(value: unknown, what: string): string {
  const s = text(value, 4096 * 4, what);
  try {
    return parsePath(s);
  } catch (error) {
    if (error instanceof InvalidPathError) fail(`${what}: ${error.reason}`);
    throw error;
  }
}

// An absolute path in the guest (a root's canonical path): at most
// PATH_MAX bytes, every component a valid name.
function guestPath(value: unknown, what: string): string {
  const s = text(value, 4096, what);
  if (!s.startsWith('/') || Buffer.byteLength(s) > 4096) fail(`${what} is not an absolute path of at most 4096 bytes`);
  if (s !== '/') path(s.slice(1), what);
  return s;
}

/** The largest size or offset on the wire (2^53 - 1). */
export const MAX_SIZE = Number.MAX_SAFE_INTEGER;
/** Stamp digests are 52-bit. */
export const MAX_DIGEST = 2 ** 52 - 1;
const MAX_ID = 2 ** 32 - 1;
const MAX_MESSAGE = 4096;
/** Files one stageMany may carry (with MAX_STAGE_MANY_FILE, at most 16 MiB in all). */
export const MAX_STAGE_MANY = 256;
/** The largest file a stageMany may carry. */
export const MAX_STAGE_MANY_FILE = 64 * 1024;
/** Staged files one commitNew may name (a batch of the engine's is smaller). */
export const MAX_COMMIT_NEW = 4096;
/** Directories one unchanged request may name. */
export const MAX_UNCHANGED = 4096;
/** Directories one change notice may name; a watcher with more asks for a rescan instead. */
export const MAX_CHANGED_DIRS = 4096;

/** checkWireEntry validates an entry from the wire. */
export function checkWireEntry(value: unknown, what: string): WireEntry {
  const o = object(value, what);
  switch (o.kind) {
    case 'file':
      exactKeys(o, ['kind', 'size', 'hash'], ['stamp', 'digest'], what);
      uint(o.size, MAX_SIZE, `${what}.size`);
      hex(o.hash, 16, `${what}.hash`);
      if (o.stamp !== undefined) hex(o.stamp, 80, `${what}.stamp`);
      if (o.digest !== undefined) uint(o.digest, MAX_DIGEST, `${what}.digest`);
      return o as WireEntry;
    case 'dir':
      exactKeys(o, ['kind'], [], what);
      return o as WireEntry;
    case 'unsupported':
      exactKeys(o, ['kind', 'reason'], [], what);
      if (!['symlink', 'special', 'unreadable', 'bad-name'].includes(o.reason as string)) fail(`${what}.reason is unknown`);
      return o as WireEntry;
    default:
      return fail(`${what}.kind is unknown`);
  }
}

function checkListed(value: unknown, i: number): WireListed {
  if (!Array.isArray(value) || value.length !== 6) fail(`listing entry ${i} is not [name, kind, mode, size, stamp, digest]`);
  const [name, kind, mode, size, stamp, digest] = value as unknown[];
  const n = text(name, 1024, `listing entry ${i} name`);
  const k = uint(kind, 5, `listing entry ${i} kind`);
  if (n.length === 0 || n.includes('/') || n.includes('\0')) fail(`listing entry ${i} has an impossible name`);
  // Only an entry the agent itself flags as a bad name may carry one.
  if (k !== WIRE_KIND.badName && componentProblem(n) !== undefined) fail(`listing entry ${i} has an invalid name (${componentProblem(n) ?? ''})`);
  uint(mode, 0xffffffff, `listing entry ${i} mode`);
  uint(size, MAX_SIZE, `listing entry ${i} size`);
  hex(stamp, 80, `listing entry ${i} stamp`);
  uint(digest, MAX_DIGEST, `listing entry ${i} digest`);
  return value as WireListed;
}

/** checkReply validates one message from the agent. */
export function checkReply(value: unknown): Reply {
  const o = object(value, 'message');
  const id = uint(o.id, MAX_ID, 'message id');
  void id;
  switch (o.t) {
    case 'ok':
    case 'end':
      exactKeys(o, ['t', 'id'], [], o.t);
      break;
    case 'listing': {
      exactKeys(o, ['t', 'id', 'digest', 'complete', 'entries'], [], 'listing');
      uint(o.digest, MAX_DIGEST, 'listing digest');
      bool(o.complete, 'listing complete');
      if (!Array.isArray(o.entries)) fail('listing entries is not an array');
      const entries = o.entries as unknown[];
      let previous: string | undefined;
      entries.forEach((entry, i) => {
        const [name] = checkListed(entry, i);
        if (previous !== undefined && compareNames(previous, name) >= 0) fail(`listing entry ${i} is out of order`);
        previous = name;
      });
      break;
    }
    case 'same':
      exactKeys(o, ['t', 'id', 'same'], [], 'same');
      if (!Array.isArray(o.same) || o.same.length > MAX_UNCHANGED) fail(`same is not an array of at most ${MAX_UNCHANGED}`);
      (o.same as unknown[]).forEach((same, i) => bool(same, `same ${i}`));
      break;
    case 'hash':
      exactKeys(o, ['t', 'id', 'hash'], [], 'hash');
      hex(o.hash, 16, 'hash');
      break;
    case 'staged':
      exactKeys(o, ['t', 'id', 'size', 'hash'], [], 'staged');
      uint(o.size, MAX_SIZE, 'staged size');
      hex(o.hash, 16, 'staged hash');
      break;
    case 'committed':
      exactKeys(o, ['t', 'id', 'digest', 'strippedExec'], [], 'committed');
      uint(o.digest, MAX_DIGEST, 'committed digest');
      bool(o.strippedExec, 'committed strippedExec');
      break;
    case 'stagedMany':
      exactKeys(o, ['t', 'id', 'results'], [], 'stagedMany');
      if (!Array.isArray(o.results) || o.results.length > MAX_STAGE_MANY) fail(`stagedMany results is not an array of at most ${MAX_STAGE_MANY}`);
      (o.results as unknown[]).forEach((result, i) => {
        if (!Array.isArray(result) || result.length !== 2) fail(`stagedMany result ${i} is neither [size, hash] nor [code, message]`);
        const [first, second] = result as unknown[];
        if (typeof first === 'number') {
          uint(first, MAX_STAGE_MANY_FILE, `stagedMany result ${i} size`);
          hex(second, 16, `stagedMany result ${i} hash`);
        } else if (first === 'changed' || first === 'path') text(second, MAX_MESSAGE, `stagedMany result ${i} message`);
        else fail(`stagedMany result ${i} is neither [size, hash] nor [code, message]`);
      });
      break;
    case 'committedNew':
      exactKeys(o, ['t', 'id', 'results'], [], 'committedNew');
      if (!Array.isArray(o.results) || o.results.length > MAX_COMMIT_NEW) fail(`committedNew results is not an array of at most ${MAX_COMMIT_NEW}`);
      (o.results as unknown[]).forEach((result, i) => {
        if (typeof result === 'number') uint(result, MAX_DIGEST, `committedNew result ${i}`);
        else if (!Array.isArray(result) || result.length !== 2 || (result[0] !== 'changed' && result[0] !== 'path')) fail(`committedNew result ${i} is neither a digest nor [code, message]`);
        else text(result[1], MAX_MESSAGE, `committedNew result ${i} message`);
      });
      break;
    case 'entry':
      exactKeys(o, ['t', 'id', 'entry'], [], 'entry');
      if (o.entry !== null) checkWireEntry(o.entry, 'entry');
      break;
    case 'exists':
      exactKeys(o, ['t', 'id', 'exists'], [], 'exists');
      bool(o.exists, 'exists');
      break;
    case 'where':
      exactKeys(o, ['t', 'id', 'real'], [], 'where');
      guestPath(o.real, 'where real');
      break;
    case 'changed': {
      exactKeys(o, ['t', 'id'], ['dirs', 'deleted', 'rescan'], 'changed');
      if ((o.dirs === undefined) === (o.rescan === undefined)) fail('changed names neither or both of dirs and rescan');
      if (o.rescan !== undefined) {
        text(o.rescan, MAX_MESSAGE, 'changed rescan');
        if (o.deleted !== undefined) fail('changed has "deleted" with a rescan');
      } else {
        if (o.deleted !== undefined) bool(o.deleted, 'changed deleted');
        if (!Array.isArray(o.dirs) || o.dirs.length === 0 || o.dirs.length > MAX_CHANGED_DIRS) fail(`changed dirs is not an array of 1..${MAX_CHANGED_DIRS} paths`);
        (o.dirs as unknown[]).forEach((dir, i) => path(dir, `changed dir ${i}`));
      }
      break;
    }
    case 'error':
      exactKeys(o, ['t', 'id', 'code', 'message'], [], 'error');
      if (o.code !== 'changed' && o.code !== 'path') fail('error code is unknown');
      text(o.message, MAX_MESSAGE, 'error message');
      break;
    default:
      fail(`unknown message type ${JSON.stringify(String(o.t)).slice(0, 40)}`);
  }
  return o as Reply;
}

/** checkAgentHello validates the agent's first message. */
export function checkAgentHello(value: unknown): AgentHello {
  const o = object(value, 'hello');
  if (o.t !== 'hello') fail('the agent did not say hello first');
  exactKeys(o, ['t', 'version', 'node', 'disk'], [], 'hello');
  uint(o.version, 1000, 'hello version');
  text(o.node, 64, 'hello node');
  if (o.disk !== 'native' && o.disk !== 'portable') fail('hello disk is neither "native" nor "portable"');
  return o as unknown as AgentHello;
}

/** checkHostHello validates the host's first message (in the agent). */
export function checkHostHello(value: unknown): HostHello {
  const o = object(value, 'hello');
  if (o.t !== 'hello') fail('the host did not say hello first');
  exactKeys(o, ['t', 'version', 'root'], [], 'hello');
  uint(o.version, 1000, 'hello version');
  text(o.root, 4096, 'hello root');
  return o as unknown as HostHello;
}

/** checkRequest validates one request from the host (in the agent). */
export function checkRequest(value: unknown): Request {
  const o = object(value, 'request');
  uint(o.id, MAX_ID, 'request id');
  const withPath = (extra: readonly string[], optional: readonly string[] = []) => {
    exactKeys(o, ['t', 'id', 'path', ...extra], optional, String(o.t));
    path(o.path, `${String(o.t)} path`);
  };
  switch (o.t) {
    case 'prepare':
    case 'end':
    case 'sweep':
    case 'barrier':
    case 'where':
      exactKeys(o, ['t', 'id'], [], o.t);
      break;
    case 'watch':
      exactKeys(o, ['t', 'id'], ['only'], 'watch');
      if (o.only !== undefined && (typeof o.only !== 'string' || o.only.includes('/') || componentProblem(o.only) !== undefined)) fail('watch only is not a valid name');
      break;
    case 'list':
      withPath([], ['expect']);
      if (o.expect !== undefined) uint(o.expect, MAX_DIGEST, 'list expect');
      break;
    case 'unchanged':
      exactKeys(o, ['t', 'id', 'dirs'], [], 'unchanged');
      if (!Array.isArray(o.dirs) || o.dirs.length === 0 || o.dirs.length > MAX_UNCHANGED) fail(`unchanged dirs is not an array of 1..${MAX_UNCHANGED}`);
      (o.dirs as unknown[]).forEach((dir, i) => {
        if (!Array.isArray(dir) || dir.length !== 2) fail(`unchanged dir ${i} is not [path, digest]`);
        path(dir[0], `unchanged dir ${i} path`);
        uint(dir[1], MAX_DIGEST, `unchanged dir ${i} digest`);
      });
      break;
    case 'hash':
      withPath(['size', 'stamp']);
      uint(o.size, MAX_SIZE, 'hash size');
      hex(o.stamp, 80, 'hash stamp');
      break;
    case 'read':
      withPath(['size'], ['stamp']);
      uint(o.size, MAX_SIZE, 'read size');
      if (o.stamp !== undefined) hex(o.stamp, 80, 'read stamp');
      break;
    case 'stage':
      withPath(['size']);
      uint(o.size, MAX_SIZE, 'stage size');
      break;
    case 'stageMany':
      exactKeys(o, ['t', 'id', 'files'], [], 'stageMany');
      if (!Array.isArray(o.files) || o.files.length === 0 || o.files.length > MAX_STAGE_MANY) fail(`stageMany files is not an array of 1..${MAX_STAGE_MANY}`);
      (o.files as unknown[]).forEach((file, i) => {
        if (!Array.isArray(file) || file.length !== 2) fail(`stageMany file ${i} is not [path, size]`);
        path(file[0], `stageMany file ${i} path`);
        uint(file[1], MAX_STAGE_MANY_FILE, `stageMany file ${i} size`);
      });
      break;
    case 'discard':
      exactKeys(o, ['t', 'id', 'staged'], [], 'discard');
      uint(o.staged, MAX_ID, 'discard staged');
      break;
    case 'commit':
      exactKeys(o, ['t', 'id', 'staged', 'expect', 'stripExec'], [], 'commit');
      uint(o.staged, MAX_ID, 'commit staged');
      if (o.expect !== null) checkWireEntry(o.expect, 'commit expect');
      bool(o.stripExec, 'commit stripExec');
      break;
    case 'commitNew':
      exactKeys(o, ['t', 'id', 'staged'], [], 'commitNew');
      if (!Array.isArray(o.staged) || o.staged.length === 0 || o.staged.length > MAX_COMMIT_NEW) fail(`commitNew staged is not an array of 1..${MAX_COMMIT_NEW} ids`);
      (o.staged as unknown[]).forEach((id, i) => uint(id, MAX_ID, `commitNew staged ${i}`));
      break;
    case 'mkdir':
      withPath(['expect']);
      if (o.expect !== null) checkWireEntry(o.expect, 'mkdir expect');
      break;
    case 'unlink':
      withPath(['expect']);
      checkWireEntry(o.expect, 'unlink expect');
      break;
    case 'rmdir':
    case 'inspect':
    case 'exists':
      withPath([]);
      break;
    case 'move':
      withPath(['to', 'expect']);
      path(o.to, 'move to');
      checkWireEntry(o.expect, 'move expect');
      break;
    default:
      fail(`unknown request type ${JSON.stringify(String(o.t)).slice(0, 40)}`);
  }
  return o as unknown as Request;
}

/** toWire converts an Entry for the wire (stamps as hex). */
export function toWire(entry: Entry): WireEntry {
  // A directory's `tree` (a conflict's record) is the host's own business.
  if (entry.kind === 'dir') return { kind: 'dir' };
  if (entry.kind !== 'file') return entry;
  return {
    kind: 'file',
    size: entry.size,
    hash: entry.hash,
    ...(entry.stamp !== undefined ? { stamp: toHex(entry.stamp) } : {}),
    ...(entry.digest !== undefined ? { digest: entry.digest } : {}),
  };
}

/** fromWire converts a wire entry back. */
export function fromWire(entry: WireEntry): Entry {
  if (entry.kind !== 'file') return entry;
  return {
    kind: 'file',
    size: entry.size,
    hash: entry.hash,
    ...(entry.stamp !== undefined ? { stamp: fromHex(entry.stamp) } : {}),
    ...(entry.digest !== undefined ? { digest: entry.digest } : {}),
  };
}

/** toHex formats bytes as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** fromHex parses lowercase hex (already validated). */
export function fromHex(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
