// Fuzzes what a guest can send the host: the frame decoder and the message
// checks of ferry's agent protocol (the built code in dist/).
//
//   node bench/fuzz.mjs [--inputs N] [--seed S] [--json]
//
// Each input is a byte stream fed to a fresh FrameDecoder in random chunks
// (random bytes; valid magic then random frames; valid frames with flipped,
// inserted or cut bytes), and every JSON frame it yields goes through every
// check (checkReply, checkRequest, checkAgentHello, checkHostHello). Inputs
// also include structured messages: valid ones with fields swapped for
// hostile values (paths with "..", "/", NUL, control characters, huge
// numbers, wrong types, deep nesting, long arrays).
//
// A check may only refuse with ProtocolError (or, for JSON, SyntaxError:
// the endpoint turns it into one). Anything else thrown is a crash; an input
// taking more than a second is a hang; a message accepted with a path that
// climbs out or is absolute is a breach. Exit status 1 if any occurred.
// Plain Node; needs `npm run build` first.

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { AGENT_MAGIC, FrameDecoder, HOST_MAGIC, MAX_FRAME, ProtocolError, encodeData, encodeJson } from '../dist/protocol/frame.js';
import { checkAgentHello, checkHostHello, checkReply, checkRequest } from '../dist/protocol/messages.js';

const HANG_MS = 1000;

/** mulberry32: a small seeded generator, so a failure can be replayed with --seed. */
function generator(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
    bytes: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
  };
}

const STAMP = '0123456789abcdef'.repeat(5);
/** Valid messages of each kind, in both directions: the seeds that mutations start from. */
const VALID = [
  { t: 'hello', version: 1, node: '20.0.0' },
  { t: 'hello', version: 1, root: '/home/guest/x' },
  { t: 'ok', id: 1 },
  { t: 'listing', id: 2, digest: 5, complete: true, entries: [['a.txt', 0, 0o644, 3, STAMP, 7], ['d', 1, 0o755, 0, STAMP, 8]] },
  { t: 'listing', id: 2, digest: 5, complete: false, entries: [['sub', 1, 0o755, 0, STAMP, 8]] },
  { t: 'hash', id: 3, hash: '0123456789abcdef' },
  { t: 'staged', id: 4, size: 10, hash: '0123456789abcdef' },
  { t: 'committed', id: 5, digest: 9, strippedExec: false },
  { t: 'entry', id: 6, entry: { kind: 'file', size: 1, hash: '0123456789abcdef' } },
  { t: 'entry', id: 6, entry: null },
  { t: 'exists', id: 7, exists: true },
  { t: 'error', id: 8, code: 'changed', message: 'gone' },
  { t: 'changed', id: 9, dirs: ['a', 'a/b'], deleted: true },
  { t: 'changed', id: 9, rescan: 'overflow' },
  { t: 'end', id: 10 },
  { t: 'list', id: 1, path: 'a/b' },
  { t: 'read', id: 2, path: 'x', size: 4, stamp: STAMP },
  { t: 'commit', id: 3, staged: 2, expect: { kind: 'dir' }, stripExec: true },
  { t: 'move', id: 4, path: 'a', to: 'b', expect: { kind: 'file', size: 1, hash: '0123456789abcdef' } },
  { t: 'watch', id: 5, only: 'file.txt' },
];

const HOSTILE_STRINGS = ['..', '../etc/passwd', '/etc/passwd', 'a/../../b', 'a\u0000b', 'a\nb', '\u0001', '', '.', 'a//b', 'a/', '/', 'x'.repeat(300), 'é'.repeat(2000), '\ud800', 'CON', '.ferry-tmp-1-0', 'a\\b'];
const HOSTILE_VALUES = [null, true, false, 0, -1, 1.5, 2 ** 53, Number.MAX_VALUE, -0, [], {}, '', 'x', { t: 'ok' }, [1, 2, 3], '0'.repeat(80), 'g'.repeat(16)];

function hostileValue(rng, depth = 0) {
  // Long lists (past the protocol's bounds) are costly to check: one value in fifty.
  if (depth === 0 && rng.next() < 0.02) return Array.from({ length: rng.pick([4096, 4097, 20000]) }, (_, i) => (rng.next() < 0.5 ? `d${i}` : rng.pick(HOSTILE_STRINGS)));
  switch (rng.int(depth > 3 ? 3 : 6)) {
    case 0:
      return rng.pick(HOSTILE_STRINGS);
    case 1:
      return structuredClone(rng.pick(HOSTILE_VALUES));
    case 2:
      return rng.int(2 ** 31) * (rng.next() < 0.5 ? 1 : -1);
    case 3:
      return Array.from({ length: rng.int(6) }, () => hostileValue(rng, depth + 1));
    case 4:
      return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(['t', 'id', 'path', 'kind', 'x', 'entries', '__proto__', 'constructor']), hostileValue(rng, depth + 1)]));
    default:
      return Array.from({ length: rng.int(8) }, (_, i) => (rng.next() < 0.5 ? `d${i}` : rng.pick(HOSTILE_STRINGS)));
  }
}

// A valid message with one to three fields (or list items) replaced by hostile values.
function mutateMessage(rng) {
  const message = structuredClone(rng.pick(VALID));
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const keys = Object.keys(message);
    const key = rng.next() < 0.15 ? rng.pick(['extra', 'dirs', 'only', 'entries']) : rng.pick(keys);
    if (Array.isArray(message[key]) && message[key].length > 0 && rng.next() < 0.6) {
      const list = message[key];
      const i = rng.int(list.length);
      if (Array.isArray(list[i])) list[i][rng.int(list[i].length)] = hostileValue(rng);
      else list[i] = hostileValue(rng);
    } else if (rng.next() < 0.1) delete message[key];
    else message[key] = hostileValue(rng);
  }
  return message;
}

// One input: a byte stream, built one of several ways.
function makeStream(rng) {
  const magic = rng.next() < 0.5 ? AGENT_MAGIC : HOST_MAGIC;
  const parts = [];
  const kind = rng.int(5);
  if (kind === 0) return { magic, bytes: rng.bytes(rng.int(64)) };
  parts.push(rng.next() < 0.97 ? magic : rng.bytes(8));
  const frames = 1 + rng.int(4);
  for (let f = 0; f < frames; f++) {
    if (kind === 1) {
      // A header that lies about the length, or random framing.
      const header = new Uint8Array(5);
      new DataView(header.buffer).setUint32(0, rng.pick([0, 1, 5, MAX_FRAME, MAX_FRAME + 1, 2 ** 32 - 1, rng.int(100)]));
      header[4] = rng.pick([0, 1, 2, 3, 255]);
      parts.push(header, rng.bytes(rng.int(40)));
    } else if (kind === 2) {
      parts.push(encodeJson(mutateMessage(rng)));
    } else if (kind === 3) {
      parts.push(rng.next() < 0.5 ? encodeJson(rng.pick(VALID)) : encodeData(rng.int(2 ** 32), rng.bytes(rng.int(64))));
    } else {
      // A valid frame with bytes flipped, inserted or cut.
      const frame = Uint8Array.from(encodeJson(rng.next() < 0.5 ? rng.pick(VALID) : mutateMessage(rng)));
      const op = rng.int(3);
      if (op === 0) for (let i = rng.int(4) + 1; i > 0; i--) frame[rng.int(frame.length)] ^= 1 << rng.int(8);
      if (op === 1) parts.push(frame.subarray(0, rng.int(frame.length)));
      else if (op === 2) parts.push(frame.subarray(0, 3), rng.bytes(3), frame.subarray(3));
      else parts.push(frame);
    }
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.length;
  }
  return { magic, bytes };
}

const CHECKS = [checkReply, checkRequest, checkAgentHello, checkHostHello];

// Every path a check accepted must be relative and stay below the root.
function breach(message) {
  const paths = [];
  const visit = (key, value) => {
    if ((key === 'path' || key === 'to') && typeof value === 'string') paths.push(value);
    if (key === 'dirs' && Array.isArray(value)) paths.push(...value.filter((v) => typeof v === 'string'));
    if (key === 'entries' && Array.isArray(value)) for (const e of value) if (Array.isArray(e) && e[1] !== 5) paths.push(String(e[0]));
  };
  for (const [key, value] of Object.entries(message)) visit(key, value);
  return paths.find((p) => p.startsWith('/') || p.split('/').some((c) => c === '..' || c === '.' || c.includes('\0')));
}

/** fuzz runs `inputs` inputs from `seed` and returns what it found. */
export function fuzz({ inputs, seed }) {
  const rng = generator(seed);
  const found = { inputs, seed, crashes: [], hangs: [], breaches: [], refused: 0, accepted: 0, framesDecoded: 0, slowestMs: 0 };
  const started = performance.now();
  for (let n = 0; n < inputs; n++) {
    const input = makeStream(rng);
    const t0 = performance.now();
    try {
      const decoder = new FrameDecoder(input.magic);
      let off = 0;
      while (off < input.bytes.length) {
        const size = 1 + rng.int(Math.max(1, input.bytes.length - off));
        const frames = decoder.push(input.bytes.subarray(off, off + size));
        off += size;
        for (const frame of frames) {
          found.framesDecoded++;
          if (frame.type !== 'json') continue;
          let message;
          try {
            message = JSON.parse(frame.text);
          } catch (error) {
            if (!(error instanceof SyntaxError)) throw error;
            found.refused++;
            continue;
          }
          for (const check of CHECKS) {
            try {
              check(message);
              found.accepted++;
              const bad = breach(message);
              if (bad !== undefined) found.breaches.push({ n, path: bad, message: JSON.stringify(message).slice(0, 300) });
            } catch (error) {
              if (!(error instanceof ProtocolError)) throw error;
              found.refused++;
            }
          }
        }
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) found.crashes.push({ n, error: String(error?.stack ?? error).slice(0, 500) });
      else found.refused++;
    }
    const ms = performance.now() - t0;
    found.slowestMs = Math.max(found.slowestMs, ms);
    if (ms > HANG_MS) found.hangs.push({ n, ms });
  }
  found.seconds = (performance.now() - started) / 1000;
  return found;
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop());
if (isMain) {
  const { values } = parseArgs({ options: { inputs: { type: 'string', default: '1000000' }, seed: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const inputs = Number(values.inputs);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
  const found = fuzz({ inputs, seed });
  if (values.json) process.stdout.write(`${JSON.stringify(found)}\n`);
  else {
    process.stdout.write(
      `${found.inputs} inputs (seed ${found.seed}) in ${found.seconds.toFixed(1)} s: ${found.framesDecoded} frames decoded, ${found.accepted} messages accepted, ${found.refused} refusals; ` +
        `${found.crashes.length} crashes, ${found.hangs.length} hangs (slowest input ${found.slowestMs.toFixed(1)} ms), ${found.breaches.length} breaches\n`,
    );
    for (const c of found.crashes.slice(0, 5)) process.stdout.write(`crash at input ${c.n}: ${c.error}\n`);
    for (const b of found.breaches.slice(0, 5)) process.stdout.write(`breach at input ${b.n}: ${b.path} in ${b.message}\n`);
  }
  process.exit(found.crashes.length + found.hangs.length + found.breaches.length > 0 ? 1 : 0);
}
