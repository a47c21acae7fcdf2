/**
 * The guest agent's protocol loop: serves one root over a byte stream (the
 * SSH exec channel's stdin/stdout), with a LocalEndpoint doing the work: on
 * ferry's native shims where the host uploaded a build this guest can load
 * (FERRY_SHIMS), else on the portable disk. The guest keeps no
 * authoritative state: staged files are temporaries, and everything else is
 * answered from the disk.
 */

import type { Readable, Writable } from 'node:stream';
import { realpath } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { ScanItem, Staged } from '../core/endpoint.js';
import type { FileEntry } from '../core/entry.js';
import { ChangedError, asError } from '../core/errors.js';
import { baseName } from '../core/path.js';
import { initHash } from '../fs/hash.js';
import type { Disk } from '../fs/disk.js';
import { LocalEndpoint } from '../fs/local.js';
import { nativeDisk } from '../fs/native.js';
import { portableDisk } from '../fs/portable-disk.js';
import { loadWatcherFile } from '../fs/watcher-binding.js';
import { ChunkQueue } from '../protocol/chunk-queue.js';
import { Coalescer } from '../protocol/coalesce.js';
import { AGENT_MAGIC, FrameDecoder, HOST_MAGIC, PROTOCOL_VERSION, ProtocolError, dataFrames, encodeJson } from '../protocol/frame.js';
import { type CommitNewResult, type GuestDisk, type Request, type StageManyResult, WIRE_KIND, checkHostHello, checkRequest, fromHex, fromWire, toHex, type WireListed } from '../protocol/messages.js';

/**
 * guestDisk is the disk this agent works on: the native shims at
 * FERRY_SHIMS if they load and this kernel has openat2, else plain Node.
 * Both list into the same records and digests, so the host cannot tell
 * them apart but by the hello.
 */
export function guestDisk(shims = process.env.FERRY_SHIMS): { disk: Disk; name: GuestDisk } {
  if (shims !== undefined && shims !== '') {
    try {
      const disk = nativeDisk(shims);
      disk.open('/').close();
      return { disk, name: 'native' };
    } catch {
      // Built against a newer C library, or a kernel before Linux 5.6: the
      // portable disk does the same work with more system calls.
    }
  }
  return { disk: portableDisk, name: 'portable' };
}

/** serve runs the agent over `input`/`output` until the host closes the stream. */
export async function serve(input: Readable, output: Writable): Promise<void> {
  const write = async (bytes: Uint8Array): Promise<void> => {
    if (!output.write(bytes)) await new Promise<void>((resolve) => output.once('drain', () => resolve()));
  };
  const outgoing = new Coalescer(write);
  const send = (...frame: Uint8Array[]): Promise<void> => outgoing.send(...frame);
  await send(AGENT_MAGIC);
  const { disk, name: diskName } = guestDisk();
  await send(encodeJson({ t: 'hello', version: PROTOCOL_VERSION, node: process.versions.node, disk: diskName }));

  const decoder = new FrameDecoder(HOST_MAGIC);
  let endpoint: LocalEndpoint | undefined;
  const inboxes = new Map<number, ChunkQueue>();
  const staged = new Map<number, Staged>();
  let stopWatching: (() => Promise<void>) | undefined;

  const reply = (message: unknown) => send(encodeJson(message));
  const fail = (id: number, error: unknown) => {
    const [code, message] = wireError(error);
    return reply({ t: 'error', id, code, message });
  };

  const handle = async (request: Request, ep: LocalEndpoint): Promise<void> => {
    const { id } = request;
    try {
      switch (request.t) {
        case 'prepare':
          await ep.prepare();
          return await reply({ t: 'ok', id });
        case 'list': {
          const listing = await ep.list(request.path, request.expect);
          const entries: WireListed[] = listing.items.map((item) => [baseName(item.path), wireKind(item), item.mode, item.size, toHex(item.stamp), item.digest]);
          return await reply({ t: 'listing', id, digest: listing.digest, complete: listing.complete, entries });
        }
        case 'unchanged': {
          const same = await ep.unchanged(
            request.dirs.map(([dir]) => dir),
            request.dirs.map(([, digest]) => digest),
          );
          return await reply({ t: 'same', id, same });
        }
        case 'hash': {
          const stamp = fromHex(request.stamp);
          const item: ScanItem = { path: request.path, kind: 'file', size: request.size, mode: 0, stamp, digest: 0 };
          return await reply({ t: 'hash', id, hash: await ep.hash(item) });
        }
        case 'read': {
          const entry: FileEntry = { kind: 'file', size: request.size, hash: '', ...(request.stamp !== undefined ? { stamp: fromHex(request.stamp) } : {}) };
          for await (const chunk of ep.read(request.path, entry)) {
            for (const frame of dataFrames(id, chunk)) await send(...frame);
          }
          return await reply({ t: 'end', id });
        }
        case 'stage': {
          const inbox = new ChunkQueue();
          inboxes.set(id, inbox);
          try {
            const result = await ep.stage(request.path, inbox, request.size);
            staged.set(id, result);
            return await reply({ t: 'staged', id, size: result.size, hash: result.hash });
          } finally {
            inboxes.delete(id);
          }
        }
        case 'stageMany': {
          // The contents come as data frames, one file after another: gathered
          // (never more than the sizes announced), then staged one by one.
          const inbox = new ChunkQueue();
          inboxes.set(id, inbox);
          let content: Buffer;
          try {
            const total = request.files.reduce((sum, [, size]) => sum + size, 0);
            content = Buffer.allocUnsafe(total);
            let filled = 0;
            for await (const chunk of inbox) {
              if (filled + chunk.length > total) throw new Error(`more than the ${total} bytes announced for ${request.files.length} files`);
              content.set(chunk, filled);
              filled += chunk.length;
            }
            if (filled !== total) throw new Error(`${filled} of the ${total} bytes announced for ${request.files.length} files`);
          } finally {
            inboxes.delete(id);
          }
          await initHash();
          let offset = 0;
          const results = request.files.map(([path, size], i): StageManyResult => {
            const bytes = content.subarray(offset, offset + size);
            offset += size;
            try {
              const result = ep.stageBytes(path, bytes);
              staged.set(id + i, result);
              return [result.size, result.hash];
            } catch (error) {
              return wireError(error);
            }
          });
          return await reply({ t: 'stagedMany', id, results });
        }
        case 'discard': {
          const s = staged.get(request.staged);
          staged.delete(request.staged);
          if (s !== undefined) await ep.discard(s);
          return await reply({ t: 'ok', id });
        }
        case 'commit': {
          const s = staged.get(request.staged);
          if (s === undefined) throw new ChangedError(`#${request.staged}`, 'nothing staged under that id');
          staged.delete(request.staged);
          const result = await ep.commit(s, request.expect === null ? undefined : fromWire(request.expect), { stripExec: request.stripExec });
          return await reply({ t: 'committed', id, digest: result.digest, strippedExec: result.strippedExec });
        }
        case 'commitNew': {
          // The ids staged here go in one call; an unknown (or repeated) id fails alone.
          const known: Staged[] = [];
          const slots = request.staged.map((stagedId) => {
            const s = staged.get(stagedId);
            if (s === undefined) return undefined;
            staged.delete(stagedId);
            return known.push(s) - 1;
          });
          const done = known.length > 0 ? await ep.commitNew(known) : [];
          const results = slots.map((slot, i): CommitNewResult => {
            const result = slot === undefined ? new ChangedError(`#${request.staged[i] ?? '?'}`, 'nothing staged under that id') : done[slot];
            if (result === undefined) return ['path', 'no outcome was given'];
            if (result instanceof Error) return wireError(result);
            return result.digest;
          });
          return await reply({ t: 'committedNew', id, results });
        }
        case 'mkdir':
          await ep.mkdir(request.path, request.expect === null ? undefined : fromWire(request.expect));
          return await reply({ t: 'ok', id });
        case 'unlink': {
          const expect = fromWire(request.expect);
          if (expect.kind !== 'file') throw new ChangedError(request.path, 'only files are unlinked');
          await ep.removeFile(request.path, expect);
          return await reply({ t: 'ok', id });
        }
        case 'rmdir':
          await ep.removeDir(request.path);
          return await reply({ t: 'ok', id });
        case 'move':
          await ep.move(request.path, request.to, fromWire(request.expect));
          return await reply({ t: 'ok', id });
        case 'inspect': {
          const entry = await ep.inspect(request.path);
          const wire = entry === undefined ? null : entry.kind === 'file' ? { kind: 'file', size: entry.size, hash: entry.hash } : entry;
          return await reply({ t: 'entry', id, entry: wire });
        }
        case 'exists':
          return await reply({ t: 'exists', id, exists: await ep.exists(request.path) });
        case 'where':
          return await reply({ t: 'where', id, real: await realpath(ep.root) });
        case 'sweep':
          await ep.sweep();
          return await reply({ t: 'ok', id });
        case 'barrier':
          await ep.barrier();
          return await reply({ t: 'ok', id });
        case 'watch': {
          if (stopWatching !== undefined) throw new Error('this agent is watching already');
          const binding = process.env.FERRY_WATCHER;
          if (binding === undefined || binding === '') throw new Error(`no file watcher for this guest's platform (${process.platform}-${process.arch}) was installed with the agent`);
          stopWatching = await ep.watch((hint) => void reply({ t: 'changed', id, ...hint }), request.only);
          return await reply({ t: 'ok', id });
        }
        case 'end':
          return;
      }
    } catch (error) {
      await fail(id, error);
    }
  };

  await new Promise<void>((resolveDone, rejectDone) => {
    input.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        rejectDone(asError(error));
        return;
      }
      for (const frame of frames) {
        if (frame.type === 'data') {
          inboxes.get(frame.id)?.push(frame.data);
          continue;
        }
        try {
          const message: unknown = JSON.parse(frame.text);
          if (endpoint === undefined) {
            const hello = checkHostHello(message);
            if (hello.version !== PROTOCOL_VERSION) throw new ProtocolError(`the host speaks protocol ${hello.version}, this agent ${PROTOCOL_VERSION}`);
            const root = isAbsolute(hello.root) ? hello.root : resolve(hello.root);
            endpoint = new LocalEndpoint('beta', root, disk, () => loadWatcherFile(process.env.FERRY_WATCHER ?? ''));
            continue;
          }
          const request = checkRequest(message);
          if (request.t === 'end') {
            inboxes.get(request.id)?.finish();
            continue;
          }
          void handle(request, endpoint);
        } catch (error) {
          rejectDone(asError(error));
          return;
        }
      }
    });
    input.on('end', () => resolveDone());
    input.on('error', (error) => rejectDone(error));
  });
  await stopWatching?.();
  await endpoint?.sweep();
  await outgoing.flush();
}

// An error as the host is told it: a change under the path (rescanned there) or a failure, and why.
function wireError(error: unknown): ['changed' | 'path', string] {
  return [error instanceof ChangedError ? 'changed' : 'path', (error instanceof Error ? error.message : String(error)).slice(0, 4000)];
}

function wireKind(item: ScanItem): number {
  if (item.kind === 'file') return WIRE_KIND.file;
  if (item.kind === 'dir') return WIRE_KIND.dir;
  switch (item.reason) {
    case 'symlink':
      return WIRE_KIND.symlink;
    case 'special':
      return WIRE_KIND.special;
    case 'bad-name':
      return WIRE_KIND.badName;
    default:
      return WIRE_KIND.unreadable;
  }
}
