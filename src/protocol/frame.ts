/**
 * Framing of the agent stream: after each side's magic bytes, length-prefixed
 * frames. A frame is a u32 big-endian length L (1 ≤ L ≤ MAX_FRAME) and L
 * bytes: one type byte, then a JSON message (FRAME_JSON) or a data chunk for
 * a request (FRAME_DATA: u32 request id, then the bytes).
 *
 * The decoder checks the length before it allocates anything, and never
 * holds more than one frame beyond what it was given.
 */

/** The largest frame, in bytes. */
export const MAX_FRAME = 16 * 1024 * 1024;
/** The agent's magic bytes, sent first by the guest. */
export const AGENT_MAGIC = new TextEncoder().encode('FERRYAG1');
/** The host's magic bytes, sent first by the host. */
export const HOST_MAGIC = new TextEncoder().encode('FERRYHO1');
/** The protocol version both sides must speak. */
export const PROTOCOL_VERSION = 4;

/** Frame types. */
export const FRAME_JSON = 1;
export const FRAME_DATA = 2;

/** ProtocolError is a violation by the peer: the channel is closed with its reason. */
export class ProtocolError extends Error {
  readonly code = 'EPROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Frame is one decoded frame. */
export type Frame = { readonly type: 'json'; readonly text: string } | { readonly type: 'data'; readonly id: number; readonly data: Uint8Array };

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** encodeJson frames a message. */
export function encodeJson(message: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.length + 1 > MAX_FRAME) throw new ProtocolError(`message of ${body.length} bytes exceeds the frame limit`);
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(0, body.length + 1);
  out[4] = FRAME_JSON;
  out.set(body, 5);
  return out;
}

/**
 * dataHeader is the header of a data frame: `length` bytes for request
 * `id`, which follow it as they are (sent after it, never copied into it).
 */
export function dataHeader(id: number, length: number): Uint8Array {
  if (length + 5 > MAX_FRAME) throw new ProtocolError(`chunk of ${length} bytes exceeds the frame limit`);
  const out = new Uint8Array(9);
  const view = new DataView(out.buffer);
  view.setUint32(0, length + 5);
  out[4] = FRAME_DATA;
  view.setUint32(5, id);
  return out;
}

/** DATA_CHUNK is the most one data frame carries: a large file goes out in many. */
export const DATA_CHUNK = 1 << 20;

/**
 * dataFrames splits `data` into the data frames of request `id`, each a
 * header and at most DATA_CHUNK bytes of `data` (not copied), to be sent
 * one after the other.
 */
export function* dataFrames(id: number, data: Uint8Array): Generator<[header: Uint8Array, part: Uint8Array]> {
  for (let off = 0; off < data.length; off += DATA_CHUNK) {
    const part = data.subarray(off, off + DATA_CHUNK);
    yield [dataHeader(id, part.length), part];
  }
}

/** encodeData frames a chunk of data for request `id` in one buffer. */
export function encodeData(id: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + data.length);
  out.set(dataHeader(id, data.length));
  out.set(data, 9);
  return out;
}

/**
 * FrameDecoder turns a byte stream into frames. `magic` is what the peer
 * must send first. Throws ProtocolError on wrong magic, a frame over the
 * limit, an unknown frame type or JSON that is not valid UTF-8.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private magicLeft: number;

  constructor(
    private readonly magic: Uint8Array,
    /** The largest frame accepted (a grant may set it below the protocol's MAX_FRAME). */
    private readonly maxFrame = MAX_FRAME,
  ) {
    this.magicLeft = magic.length;
  }

  /** push adds bytes and returns the frames now complete. */
  push(chunk: Uint8Array): Frame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    if (this.magicLeft > 0) {
      const have = Math.min(this.buffered, this.magicLeft);
      const got = this.take(have);
      const offset = this.magic.length - this.magicLeft;
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== this.magic[offset + i]) throw new ProtocolError('the peer did not start with ferry\'s magic bytes (is it a ferry agent of this version?)');
      }
      this.magicLeft -= got.length;
      if (this.magicLeft > 0) return frames;
    }
    for (;;) {
      if (this.buffered < 4) return frames;
      const length = new DataView(this.peek(4).buffer).getUint32(0);
      if (length === 0 || length > MAX_FRAME) throw new ProtocolError(`frame of ${length} bytes is outside 1..${MAX_FRAME}`);
      if (length > this.maxFrame) throw new ProtocolError(`limit hit: a frame of ${length} bytes, more than the ${this.maxFrame} allowed`);
      if (this.buffered < 4 + length) return frames;
      this.take(4);
      const body = this.take(length);
      frames.push(parseBody(body));
    }
  }

  /** pending is the number of bytes held for an incomplete frame. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    for (const chunk of this.chunks) {
      const part = chunk.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.length;
      if (filled === n) break;
    }
    return out;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0] as Uint8Array;
      const part = chunk.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.length;
      if (part.length === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part.length);
    }
    this.buffered -= n;
    return out;
  }
}

function parseBody(body: Uint8Array): Frame {
  const type = body[0];
  if (type === FRAME_JSON) {
    try {
      return { type: 'json', text: decoder.decode(body.subarray(1)) };
    } catch {
      throw new ProtocolError('a message is not valid UTF-8');
    }
  }
  if (type === FRAME_DATA) {
    if (body.length < 5) throw new ProtocolError('a data frame is shorter than its header');
    const id = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
    return { type: 'data', id, data: body.subarray(5) };
  }
  throw new ProtocolError(`unknown frame type ${String(type)}`);
}
