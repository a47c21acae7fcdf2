/**
 * The portable Disk, in plain Node, for the guest agent (the guest has no
 * compiler and no ferry build): readdir + lstat, link + unlink for a rename
 * that must not replace, fsync of each touched file and directory for
 * durability. Its records, order and digests equal the native scanner's.
 */

import { execFile } from 'node:child_process';
import { constants as C, lstatSync, readdirSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { DIGEST_OFFSET, RECORD_KIND, RECORD_SIZE, STAMP_OFFSET, type Disk, type RawListing } from './disk.js';
import { stampDigest } from './stamp.js';
import { SEED, type U64, chain, fnv1a64, splitNumber, top52 } from './mix64.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function validUtf8(name: Buffer): boolean {
  try {
    utf8.decode(name);
    return true;
  } catch {
    return false;
  }
}

async function scanDir(path: string, expect?: number): Promise<RawListing> {
  // Synchronous calls: the agent serves one host, and a promise per entry
  // costs more than the lstat it waits for.
  await Promise.resolve();
  const raw = readdirSync(path, { encoding: 'buffer' });
  raw.sort((a, b) => Buffer.compare(a, b));
  const prefix = Buffer.from(`${path}/`);
  const stats = raw.map((name) => {
    try {
      return lstatSync(Buffer.concat([prefix, name]), { bigint: true });
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined;
    }
  });
  const names: string[] = [];
  const kept: Buffer[] = [];
  const records = Buffer.alloc(raw.length * RECORD_SIZE);
  let count = 0;
  raw.forEach((name, i) => {
    const st = stats[i];
    if (st === null) return; // vanished since it was listed
    const r = records.subarray(count * RECORD_SIZE, (count + 1) * RECORD_SIZE);
    let kind: number;
    if (st === undefined) kind = RECORD_KIND.unreadable;
    else if (st.isFile()) kind = RECORD_KIND.file;
    else if (st.isDirectory()) kind = RECORD_KIND.dir;
    else if (st.isSymbolicLink()) kind = RECORD_KIND.symlink;
    else kind = RECORD_KIND.special;
    if (!validUtf8(name)) kind = RECORD_KIND.badName;
    r.writeUInt32LE(kind, 0);
    if (st !== undefined && st !== null) {
      r.writeUInt32LE(Number(st.mode), 4);
      r.writeDoubleLE(Number(st.size), 8);
      const words = [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs];
      words.forEach((w, k) => r.writeBigUInt64LE(BigInt.asUintN(64, w), STAMP_OFFSET + 8 * k));
      r.writeDoubleLE(stampDigest(r.subarray(STAMP_OFFSET, STAMP_OFFSET + 40)), DIGEST_OFFSET);
    }
    names.push(name.toString('utf8'));
    kept.push(name);
    count++;
  });
  let h: U64 = [SEED[0], (SEED[1] ^ count) >>> 0];
  for (let i = 0; i < count; i++) {
    const r = records.subarray(i * RECORD_SIZE);
    const kind = r.readUInt32LE(0);
    const name = fnv1a64(kept[i] as Buffer);
    h = chain(h, name[0], name[1]);
    h = chain(h, 0, kind);
    if (kind !== RECORD_KIND.dir) {
      const [dh, dl] = splitNumber(r.readDoubleLE(DIGEST_OFFSET));
      h = chain(h, dh, dl);
    }
  }
  const digest = top52(h);
  if (expect !== undefined && expect === digest) {
    const dirNames: string[] = [];
    const dirRecords: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const r = records.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE);
      if (r.readUInt32LE(0) === RECORD_KIND.dir) {
        dirNames.push(names[i] as string);
        dirRecords.push(r);
      }
    }
    return { names: dirNames, records: Buffer.concat(dirRecords), digest, complete: false };
  }
  return { names, records: records.subarray(0, count * RECORD_SIZE), digest, complete: true };
}

async function renameNoReplace(from: string, to: string): Promise<undefined> {
  const st = await fsp.lstat(from);
  if (!st.isDirectory()) {
    // link(2) fails with EEXIST when `to` exists: an atomic no-replace move of a file.
    await fsp.link(from, to);
    await fsp.unlink(from);
    return undefined;
  }
  // RACE: a directory cannot be linked; something created at `to` between
  // this check and the rename is replaced if it is an empty directory, and
  // makes the rename fail otherwise. Only the guest agent takes this path.
  const existing = await fsp.lstat(to).catch(() => undefined);
  if (existing !== undefined) throw Object.assign(new Error(`EEXIST: ${to} exists`), { code: 'EEXIST' });
  await fsp.rename(from, to);
  return undefined;
}

async function fsyncPath(path: string): Promise<void> {
  let handle;
  try {
    handle = await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // renamed or removed since: its directory is synced
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// `sync --file-system` (coreutils) is syncfs(2): one call instead of an
// fsync per file. Where it is missing, every touched file and directory is
// fsynced instead.
let syncfsCommand: boolean | undefined;

function syncFileSystem(root: string): Promise<boolean> {
  if (syncfsCommand === false) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile('sync', ['--file-system', root], (error) => {
      syncfsCommand = error === null;
      resolve(syncfsCommand);
    });
  });
}

async function sync(root: string, touched: readonly string[]): Promise<void> {
  if (touched.length > 8 && (await syncFileSystem(root))) return;
  const paths = touched.length > 0 ? touched : [root];
  await Promise.all(paths.map((path) => fsyncPath(path.startsWith('/') ? path : join(root, path))));
}

/** portableDisk is the Disk in plain Node. */
export const portableDisk: Disk = { scanDir, renameNoReplace, sync };
