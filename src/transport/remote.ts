/**
 * The remote endpoint: one side of a session served by a ferry agent in a
 * guest, over a byte stream (an SSH exec channel).
 *
 * Everything the agent sends is hostile input: every frame is size-checked
 * before it is buffered, every message is validated against its schema, a
 * reply must answer a request that is waiting for that kind of reply, and
 * data may only arrive for a read, up to the size asked for. A violation
 * ends the channel: every pending and later call fails with a SessionHalt
 * naming the reason. Content from the guest is hashed by the host as it
 * arrives (by the staging endpoint) and checked against what the guest
 * announced before anything is renamed into place.
 */

import type { CommitOptions, CommitResult, Endpoint, FileToRead, Listing, ScanItem, Staged, WatchHint } from '../core/endpoint.js';
import type { Entry, FileEntry, Hash, Side, UnsupportedReason } from '../core/entry.js';
import { ChangedError, ConnectionLost, PathError, SessionHalt, asError } from '../core/errors.js';
import { joinPath } from '../core/path.js';
import { Batcher } from '../fs/batch.js';
import { ChunkQueue } from '../protocol/chunk-queue.js';
import { Coalescer } from '../protocol/coalesce.js';
import { AGENT_MAGIC, FrameDecoder, HOST_MAGIC, PROTOCOL_VERSION, ProtocolError, dataFrames, encodeJson } from '../protocol/frame.js';
import { type AgentInfo, type CommitNewResult, MAX_COMMIT_NEW, MAX_STAGE_MANY, MAX_STAGE_MANY_FILE, type Reply, type Request, type StageManyResult, WIRE_KIND, checkAgentHello, checkReply, fromHex, fromWire, toHex, toWire } from '../protocol/messages.js';

/** Directories asked about in one unchanged request (MAX_UNCHANGED at most)... */
const UNCHANGED_CHUNK = 1024;
/** ...and at most about this many characters of their paths: far below the frame limit, escaped or not. */
const UNCHANGED_CHUNK_CHARS = 1 << 20;

/** Channel is the byte stream to an agent. */
export interface Channel {
  write(data: Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  end(): void;
}

/**
 * How long the agent may leave requests unanswered without making progress
 * (a whole frame, or PROGRESS_BYTES of one) before the host gives up on it
 * (FERRY_AGENT_TIMEOUT, in seconds).
 */
function agentTimeoutMs(): number {
  const seconds = Number(process.env.FERRY_AGENT_TIMEOUT ?? '');
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 120_000;
}

/** Bytes of a frame still arriving that count as progress: a byte now and then does not (a slow loris). */
const PROGRESS_BYTES = 64 * 1024;

type ReplyKind = Reply['t'];

interface Pending {
  readonly accepts: readonly ReplyKind[];
  resolve(reply: Reply): void;
  reject(error: Error): void;
  /** For reads: where data goes, and how much may still come. */
  data?: ReadStream;
}

// The chunks of one read, and how many bytes it may carry.
class ReadStream extends ChunkQueue {
  constructor(readonly limit: number) {
    super();
  }
}

const REASONS: Record<number, UnsupportedReason> = {
  [WIRE_KIND.symlink]: 'symlink',
  [WIRE_KIND.special]: 'special',
  [WIRE_KIND.unreadable]: 'unreadable',
  [WIRE_KIND.badName]: 'bad-name',
};

/** How long a starting agent may take to say anything. */
export const HANDSHAKE_MS = 30_000;
/** stageMany requests in flight at once, and the fewest files worth one. */
const STAGE_MANY_PARALLEL = 4;
const STAGE_MANY_MIN = 16;

/** RemoteEndpoint is a side served by an agent over a channel. */
/** ChannelLimits bound what the agent may send over the channel. */
export interface ChannelLimits {
  readonly maxFrameBytes: number;
  readonly maxMessagesPerSecond: number;
}

export class RemoteEndpoint implements Endpoint {
  readonly trusted = false;
  private readonly decoder: FrameDecoder;
  private windowStart = Date.now();
  private windowMessages = 0;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private broken: SessionHalt | undefined;
  private hello: ((error?: Error) => void) | undefined;
  private helloDone = false;
  /** What the agent said of itself in its hello. */
  agent: AgentInfo | undefined;
  private readonly stagedIds = new WeakMap<Staged, number>();
  /** Small files from each source that reads many at once, gathered into stageMany requests. */
  private readonly stagings = new WeakMap<Endpoint, Batcher<FileToRead, Staged>>();
  private lastHeard = Date.now();
  /** Frames sent in this turn of the event loop, written together. */
  private readonly outgoing = new Coalescer((bytes) => this.write(bytes));
  /** Sends waiting for the channel to drain. */
  private readonly drainWaiters = new Set<() => void>();
  /** The drain the writers are waiting for, while the channel is full. */
  private draining: Promise<void> | undefined;
  /** Bytes received since lastHeard was last moved. */
  private unheardBytes = 0;
  private readonly watchdog: ReturnType<typeof setInterval>;
  private onEnded: (halt: SessionHalt) => void = () => undefined;
  /** Settles with the reason when the channel ends, whoever ended it. */
  readonly ended = new Promise<SessionHalt>((resolve) => (this.onEnded = resolve));
  /** The id of the accepted watch request, under which change notices arrive, and where they go. */
  private watching: { id: number; onHint: (hint: WatchHint) => void } | undefined;

  constructor(
    readonly side: Side,
    readonly label: string,
    private readonly channel: Channel,
    private readonly root: string,
    private readonly onViolation: (reason: string) => void = () => undefined,
    private readonly limits?: ChannelLimits,
    /** Bytes the agent sent before this endpoint took the channel over. */
    initial?: Buffer,
  ) {
    this.decoder = new FrameDecoder(AGENT_MAGIC, limits?.maxFrameBytes);
    channel.on('data', (chunk) => this.receive(chunk));
    // A guest that stops answering (a stalled agent, a slow loris) is cut
    // off: requests are pending and nothing arrived for the whole timeout.
    const timeout = agentTimeoutMs();
    const period = Math.min(5_000, timeout / 2);
    let lastTick = Date.now();
    this.watchdog = setInterval(() => {
      // A tick that comes late means this host was busy (its event loop
      // blocked, the agent's answer maybe waiting unread): that time is not
      // the agent's.
      const now = Date.now();
      if (now - lastTick > 2 * period) this.lastHeard += now - lastTick - period;
      lastTick = now;
      if (this.pending.size > 0 && now - this.lastHeard > timeout) {
        this.break(`it left ${this.pending.size} request(s) unanswered for ${Math.round(timeout / 1000)} s`, true, true);
      }
    }, period);
    this.watchdog.unref();
    channel.on('close', () => {
      // Logged as a violation, yet a cut link looks the same: watch mode may reconnect.
      if (this.decoder.pending > 0) this.break('the stream ended in the middle of a frame', true, true);
      else this.break(`the connection to ${label} closed`, false);
    });
    channel.on('error', (error) => this.break(`the connection to ${label} failed: ${error.message}`, false));
    if (initial !== undefined && initial.length > 0) this.receive(initial);
  }

  /** start performs the handshake: magic bytes and versions both ways. */
  async start(timeoutMs = HANDSHAKE_MS): Promise<void> {
    await this.send(HOST_MAGIC);
    await this.send(encodeJson({ t: 'hello', version: PROTOCOL_VERSION, root: this.root }));
    await new Promise<void>((resolve, reject) => {
      // The agent speaks first, and may have been heard already.
      if (this.helloDone) {
        resolve();
        return;
      }
      const timer = setTimeout(() => reject(this.break(`the agent at ${this.label} did not answer within ${timeoutMs / 1000} s`, true)), timeoutMs);
      this.hello = (error) => {
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      };
      if (this.broken !== undefined) this.hello(this.broken);
    });
  }

  /** halt returns the reason the channel ended, if it did. */
  get halted(): SessionHalt | undefined {
    return this.broken;
  }

  /** distrust ends the channel because the guest lied in a way only the engine can see; returns the halt. */
  distrust(reason: string): SessionHalt {
    return this.break(reason, true);
  }

  // Ends the channel. A violation is logged; `lost` says the link may be
  // tried again (a connection that broke, as opposed to a guest that lied).
  private break(reason: string, violation: boolean, lost = !violation): SessionHalt {
    if (this.broken !== undefined) return this.broken;
    const message = violation ? `the guest agent at ${this.label} broke the protocol: ${reason}; its connection was closed and nothing more from it was applied` : reason;
    const halt = lost ? new ConnectionLost(message) : new SessionHalt(message);
    this.onEnded(halt);
    if (violation) this.onViolation(reason);
    this.shut(halt);
    return halt;
  }

  // Ends everything in flight with `halt` and closes the channel.
  private shut(halt: SessionHalt): void {
    this.broken = halt;
    clearInterval(this.watchdog);
    for (const p of this.pending.values()) {
      p.data?.finish(halt);
      p.reject(halt);
    }
    this.pending.clear();
    this.outgoing.drop();
    for (const done of [...this.drainWaiters]) done();
    const h = this.hello;
    this.hello = undefined;
    h?.(halt);
    try {
      this.channel.end();
    } catch {
      // already closed
    }
  }

  /**
   * abort closes the channel from this side (a revoke, the end of a grant):
   * whatever is in flight fails at once instead of waiting on a guest that
   * may never answer or drain.
   */
  abort(): void {
    if (this.broken === undefined) this.shut(new SessionHalt(`the connection to ${this.label} was closed by this host`));
  }

  private receive(chunk: Buffer): void {
    if (this.broken !== undefined) return;
    try {
      const frames = this.decoder.push(chunk);
      this.unheardBytes += chunk.length;
      if (frames.length > 0 || this.unheardBytes >= PROGRESS_BYTES) {
        this.lastHeard = Date.now();
        this.unheardBytes = 0;
      }
      for (const frame of frames) {
        this.countMessage();
        if (frame.type === 'data') {
          const p = this.pending.get(frame.id);
          if (p?.data === undefined) throw new ProtocolError(`data for request ${frame.id}, which is not a read in progress`);
          if (p.data.received + frame.data.length > p.data.limit) throw new ProtocolError(`more data than the ${p.data.limit} bytes asked for`);
          p.data.push(frame.data);
          continue;
        }
        let message: unknown;
        try {
          message = JSON.parse(frame.text);
        } catch {
          throw new ProtocolError('a message is not valid JSON');
        }
        if (!this.helloDone) {
          const hello = checkAgentHello(message);
          if (hello.version !== PROTOCOL_VERSION) {
            throw new ProtocolError(`the agent speaks protocol version ${hello.version}, this ferry ${PROTOCOL_VERSION}; reinstall the agent`);
          }
          this.helloDone = true;
          this.agent = { node: hello.node, disk: hello.disk };
          const h = this.hello;
          this.hello = undefined;
          h?.();
          continue;
        }
        const reply = checkReply(message);
        if (reply.t === 'changed') {
          if (this.watching?.id !== reply.id) throw new ProtocolError(`a change notice under id ${reply.id}, which is not an accepted watch`);
          this.watching.onHint(reply.rescan !== undefined ? { rescan: `${this.label}: ${reply.rescan}` } : { dirs: reply.dirs ?? [], deleted: reply.deleted === true });
          continue;
        }
        const p = this.pending.get(reply.id);
        if (p === undefined) throw new ProtocolError(`a reply to request ${reply.id}, which was never made or is already answered`);
        if (reply.t !== 'error' && !p.accepts.includes(reply.t)) throw new ProtocolError(`a "${reply.t}" reply to a request that expects ${p.accepts.join(' or ')}`);
        this.pending.delete(reply.id);
        p.resolve(reply);
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.break(reason, true);
    }
  }

  // Counts a message against the rate limit: more than the limit within one
  // second ends the channel ("limit hit" in the reason, for the audit log).
  private countMessage(): void {
    if (this.limits === undefined) return;
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.windowMessages = 0;
    }
    if (++this.windowMessages > this.limits.maxMessagesPerSecond) throw new ProtocolError(`limit hit: more than ${this.limits.maxMessagesPerSecond} messages in one second`);
  }

  private send(...frame: Uint8Array[]): Promise<void> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    return this.outgoing.send(...frame);
  }

  private async write(bytes: Uint8Array): Promise<void> {
    if (this.broken !== undefined) throw this.broken;
    if (this.channel.write(bytes)) return;
    // Every writer that finds the channel full waits for the same drain (one
    // listener, however many transfers are in flight). A channel that breaks
    // or is closed never drains: the break releases the wait.
    this.draining ??= new Promise<void>((resolve) => {
      const done = () => {
        this.drainWaiters.delete(done);
        this.draining = undefined;
        resolve();
      };
      this.drainWaiters.add(done);
      this.channel.once('drain', done);
    });
    await this.draining;
    const broken = this.broken as SessionHalt | undefined;
    if (broken !== undefined) throw broken;
  }

  /**
   * expectReply registers request `id`. A request whose send fails is
   * abandoned by its caller: its rejection (when the channel breaks) is
   * handled here, so that it cannot take the process down.
   */
  private expectReply(id: number, accepts: readonly ReplyKind[], data?: ReadStream): Promise<Reply> {
    const reply = new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { accepts, resolve, reject, ...(data !== undefined ? { data } : {}) });
    });
    reply.catch(() => undefined);
    return reply;
  }

  private async call<K extends ReplyKind>(request: Omit<Request, 'id'>, accepts: readonly K[], data?: ReadStream): Promise<Extract<Reply, { t: K }>> {
    if (this.broken !== undefined) throw this.broken;
    if (this.pending.size === 0) this.lastHeard = Date.now();
    const id = this.nextId++;
    // Encoded first: a request too large for a frame is never registered as waiting.
    const frame = encodeJson({ ...request, id });
    const reply = this.expectReply(id, accepts, data);
    await this.send(frame);
    const answer = await reply;
    if (answer.t === 'error') {
      throw this.guestError('path' in request ? String((request as { path: string }).path) : this.label, answer.code, answer.message);
    }
    return answer as Extract<Reply, { t: K }>;
  }

  // The error the guest reported for path: a change under it (rescanned), or a failure there.
  private guestError(path: string, code: 'changed' | 'path', message: string): ChangedError | PathError {
    return code === 'changed' ? new ChangedError(path, `on ${this.side}: ${message}`) : new PathError(path, `${this.side} (${this.label}): ${message}`);
  }

  async prepare(): Promise<void> {
    try {
      await this.call({ t: 'prepare' }, ['ok']);
    } catch (error) {
      if (error instanceof PathError || error instanceof ChangedError) throw new SessionHalt(`the ${this.side} root ${this.label} cannot be used: ${error.message}; nothing was changed on either side`);
      throw error;
    }
  }

  async list(path: string, expect?: number): Promise<Listing> {
    const reply = await this.call({ t: 'list', path, ...(expect !== undefined ? { expect } : {}) } as Omit<Request, 'id'>, ['listing']);
    const items: ScanItem[] = reply.entries.map(([name, kind, mode, size, stamp, digest]) => {
      const reason = REASONS[kind];
      return {
        path: joinPath(path, name),
        kind: kind === WIRE_KIND.file ? 'file' : kind === WIRE_KIND.dir ? 'dir' : 'unsupported',
        size,
        mode,
        stamp: fromHex(stamp),
        digest,
        ...(reason !== undefined ? { reason } : {}),
      };
    });
    // A complete listing may not be partial, nor a partial one hold anything but directories.
    if (!reply.complete && items.some((item) => item.kind !== 'dir')) throw this.break('a partial listing holds more than directories', true);
    if (!reply.complete && expect === undefined) throw this.break('a partial listing nobody asked for', true);
    return { items, digest: reply.digest, complete: reply.complete };
  }

  // One request after another, each well inside a frame and answered in
  // moments (the agent lstats every entry of its directories before it
  // answers): a long check never looks like a guest that stopped answering.
  async unchanged(dirs: readonly string[], digests: readonly number[]): Promise<boolean[]> {
    const same: boolean[] = [];
    let chunk: [string, number][] = [];
    let chars = 0;
    const ask = async () => {
      const reply = await this.call({ t: 'unchanged', dirs: chunk } as Omit<Request, 'id'>, ['same']);
      if (reply.same.length !== chunk.length) throw this.break(`answered for ${reply.same.length} of the ${chunk.length} directories asked about`, true);
      same.push(...reply.same);
      chunk = [];
      chars = 0;
    };
    for (const [i, dir] of dirs.entries()) {
      chunk.push([dir, digests[i] as number]);
      chars += dir.length;
      if (chunk.length === UNCHANGED_CHUNK || chars > UNCHANGED_CHUNK_CHARS) await ask();
    }
    if (chunk.length > 0) await ask();
    return same;
  }

  async hash(item: ScanItem): Promise<Hash> {
    return (await this.call({ t: 'hash', path: item.path, size: item.size, stamp: toHex(item.stamp) } as Omit<Request, 'id'>, ['hash'])).hash;
  }

  async *read(path: string, entry: FileEntry): AsyncIterable<Uint8Array> {
    const stream = new ReadStream(entry.size);
    const request = { t: 'read', path, size: entry.size, ...(entry.stamp !== undefined ? { stamp: toHex(entry.stamp) } : {}) } as Omit<Request, 'id'>;
    const done = this.call(request, ['end'], stream).then(
      () => stream.finish(),
      (error: unknown) => stream.finish(asError(error)),
    );
    yield* stream;
    await done;
    if (stream.received !== entry.size) throw new ChangedError(path, `the guest sent ${stream.received} of ${entry.size} bytes`);
  }

  async stage(path: string, content: AsyncIterable<Uint8Array>, expectedSize: number): Promise<Staged> {
    if (this.broken !== undefined) throw this.broken;
    if (this.pending.size === 0) this.lastHeard = Date.now();
    const id = this.nextId++;
    const reply = this.expectReply(id, ['staged']);
    await this.send(encodeJson({ t: 'stage', id, path, size: expectedSize }));
    let sent = 0;
    try {
      for await (const chunk of content) {
        sent += chunk.length;
        for (const frame of dataFrames(id, chunk)) await this.send(...frame);
      }
    } finally {
      // The agent ends its staging either way; a short file fails its size check.
      await this.send(encodeJson({ t: 'end', id })).catch(() => undefined);
    }
    const answer = await reply;
    if (answer.t === 'error') throw this.guestError(path, answer.code, answer.message);
    if (answer.t !== 'staged') throw this.break('a staging answered with the wrong reply', true);
    if (answer.size !== sent) throw this.break(`it staged ${answer.size} bytes of the ${sent} sent`, true);
    const staged: Staged = { path, size: answer.size, hash: answer.hash };
    this.stagedIds.set(staged, id);
    return staged;
  }

  copyFrom(source: Endpoint, path: string, entry: FileEntry): Promise<Staged> | undefined {
    if (entry.size > MAX_STAGE_MANY_FILE || source.readMany === undefined) return undefined;
    let stagings = this.stagings.get(source);
    if (stagings === undefined) {
      stagings = new Batcher((files) => this.stageMany(source, files), STAGE_MANY_PARALLEL, STAGE_MANY_MIN, MAX_STAGE_MANY);
      this.stagings.set(source, stagings);
    }
    return stagings.add({ path, entry });
  }

  // Stages small files in one request: the source reads them together
  // (hashing each), their contents go out one after another, and the guest
  // answers for each. A guest that staged other bytes than it was sent is lying.
  private async stageMany(source: Endpoint, files: readonly FileToRead[]): Promise<(Staged | Error)[]> {
    const reading = source.readMany?.(files);
    if (reading === undefined) return Promise.all(files.map((f) => this.stage(f.path, source.read(f.path, f.entry), f.entry.size).catch(asError)));
    const { data, hashes } = await reading;
    const out: (Staged | Error)[] = hashes.map((hash) => (hash instanceof Error ? hash : new Error('not staged')));
    const sent = files.map((_, i) => i).filter((i) => !(hashes[i] instanceof Error));
    if (sent.length === 0) return out;
    if (this.broken !== undefined) throw this.broken;
    if (this.pending.size === 0) this.lastHeard = Date.now();
    // The files' staged ids are id, id + 1, ...: reserved here.
    const id = this.nextId;
    this.nextId += sent.length;
    const reply = this.expectReply(id, ['stagedMany']);
    await this.send(encodeJson({ t: 'stageMany', id, files: sent.map((i) => [(files[i] as FileToRead).path, (files[i] as FileToRead).entry.size]) }));
    for (const frame of dataFrames(id, data)) await this.send(...frame);
    await this.send(encodeJson({ t: 'end', id }));
    const answer = await reply;
    if (answer.t === 'error') {
      for (const i of sent) out[i] = this.guestError((files[i] as FileToRead).path, answer.code, answer.message);
      return out;
    }
    if (answer.t !== 'stagedMany') throw this.break('a staging answered with the wrong reply', true);
    if (answer.results.length !== sent.length) throw this.break(`it answered ${answer.results.length} of ${sent.length} stagings`, true);
    sent.forEach((i, k) => {
      const { path, entry } = files[i] as FileToRead;
      const result = answer.results[k] as StageManyResult;
      if (typeof result[0] !== 'number') out[i] = this.guestError(path, result[0], result[1]);
      else if (result[0] !== entry.size || result[1] !== hashes[i]) throw this.break(`it staged other bytes for ${path} than were sent (${result[0]} bytes, hash ${result[1]})`, true);
      else {
        const staged: Staged = { path, size: entry.size, hash: result[1] };
        this.stagedIds.set(staged, id + k);
        out[i] = staged;
      }
    });
    return out;
  }

  async discard(staged: Staged): Promise<void> {
    const id = this.stagedIds.get(staged);
    if (id !== undefined) await this.call({ t: 'discard', staged: id } as Omit<Request, 'id'>, ['ok']).catch(() => undefined);
  }

  async commit(staged: Staged, expect: Entry | undefined, options: CommitOptions): Promise<CommitResult> {
    const id = this.stagedIds.get(staged);
    if (id === undefined) throw new ChangedError(staged.path, 'not staged on this side');
    const reply = await this.call({ t: 'commit', staged: id, expect: expect === undefined ? null : toWire(expect), stripExec: options.stripExec } as Omit<Request, 'id'>, ['committed']);
    return { digest: reply.digest, strippedExec: reply.strippedExec };
  }

  async commitNew(staged: readonly Staged[]): Promise<(CommitResult | Error)[]> {
    const out: (CommitResult | Error)[] = [];
    for (let start = 0; start < staged.length; start += MAX_COMMIT_NEW) {
      const files = staged.slice(start, start + MAX_COMMIT_NEW);
      const ids = files.map((file) => this.stagedIds.get(file));
      const sent = ids.filter((id) => id !== undefined);
      const reply = sent.length > 0 ? await this.call({ t: 'commitNew', staged: sent } as Omit<Request, 'id'>, ['committedNew']) : { results: [] };
      if (reply.results.length !== sent.length) throw this.break(`it answered ${reply.results.length} of ${sent.length} commits`, true);
      let k = 0;
      files.forEach((file, i) => {
        if (ids[i] === undefined) {
          out.push(new ChangedError(file.path, 'not staged on this side'));
          return;
        }
        const result = reply.results[k++] as CommitNewResult;
        if (typeof result === 'number') out.push({ digest: result, strippedExec: false });
        else out.push(this.guestError(file.path, result[0], result[1]));
      });
    }
    return out;
  }

  async mkdir(path: string, expect: Entry | undefined): Promise<void> {
    await this.call({ t: 'mkdir', path, expect: expect === undefined ? null : toWire(expect) } as Omit<Request, 'id'>, ['ok']);
  }

  async removeFile(path: string, expect: FileEntry): Promise<void> {
    await this.call({ t: 'unlink', path, expect: toWire(expect) } as Omit<Request, 'id'>, ['ok']);
  }

  async removeDir(path: string): Promise<void> {
    await this.call({ t: 'rmdir', path } as Omit<Request, 'id'>, ['ok']);
  }

  async move(path: string, to: string, expect: Entry): Promise<void> {
    await this.call({ t: 'move', path, to, expect: toWire(expect) } as Omit<Request, 'id'>, ['ok']);
  }

  async inspect(path: string): Promise<Entry | undefined> {
    const reply = await this.call({ t: 'inspect', path } as Omit<Request, 'id'>, ['entry']);
    return reply.entry === null ? undefined : fromWire(reply.entry);
  }

  async exists(path: string): Promise<boolean> {
    return (await this.call({ t: 'exists', path } as Omit<Request, 'id'>, ['exists'])).exists;
  }

  /** where asks the agent for the root's canonical path in the guest (links and `..` resolved). */
  async where(): Promise<string> {
    return (await this.call({ t: 'where' }, ['where'])).real;
  }

  async sweep(): Promise<void> {
    await this.call({ t: 'sweep' }, ['ok']);
  }

  async barrier(): Promise<void> {
    await this.call({ t: 'barrier' }, ['ok']);
  }

  /**
   * watch asks the agent to watch its root. Its notices are hints only (the
   * engine rescans what they name), their paths validated like any path
   * from the guest. Watching ends with the channel.
   */
  async watch(onHint: (hint: WatchHint) => void, only?: string): Promise<() => Promise<void>> {
    if (this.watching !== undefined) throw new Error(`${this.label} is watched already`);
    const id = this.nextId;
    // Notices may arrive as soon as the agent subscribes, before its "ok".
    this.watching = { id, onHint };
    try {
      await this.call({ t: 'watch', ...(only !== undefined ? { only } : {}) }, ['ok']);
    } catch (error) {
      this.watching = undefined;
      if (error instanceof PathError) throw new PathError('', `${this.label} cannot be watched: ${error.message}`);
      throw error;
    }
    return () => {
      this.watching = { id, onHint: () => undefined };
      return Promise.resolve();
    };
  }

  close(): Promise<void> {
    this.abort();
    return Promise.resolve();
  }
}
