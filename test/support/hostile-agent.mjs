/**
 * Test only: a hostile ferry guest agent.
 *
 *   node hostile-agent.mjs MODE /path/to/agent.mjs [PARAM]
 *
 * It is a real peer that lies: it spawns the real agent bundle, relays the
 * host's bytes to it unchanged, and relays the agent's frames back to the
 * host, mutating them according to MODE. It reads the host's requests (to
 * know which reply answers what) but never changes them.
 *
 * Stream format (src/protocol/frame.ts): 8 magic bytes, then frames of a u32
 * big-endian length L and L bytes: a type byte (1 JSON, 2 data), then the
 * JSON text, or a u32 request id and the data.
 *
 * Plain Node, no imports from the repository: it runs in the guest.
 */

import { spawn } from 'node:child_process';

const [mode = 'pass', agentPath, param] = process.argv.slice(2);
if (agentPath === undefined) {
  process.stderr.write('usage: node hostile-agent.mjs MODE /path/to/agent.mjs [PARAM]\n');
  process.exit(2);
}

const FRAME_JSON = 1;
const FRAME_DATA = 2;
const ZERO_STAMP = '0'.repeat(80);

// ---- framing ---------------------------------------------------------------

function jsonFrame(message) {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  return rawFrame(FRAME_JSON, body);
}

function rawFrame(type, body) {
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length + 1, 0);
  out[4] = type;
  body.copy(out, 5);
  return out;
}

function dataFrame(id, data) {
  const body = Buffer.alloc(4 + data.length);
  body.writeUInt32BE(id, 0);
  data.copy(body, 4);
  return rawFrame(FRAME_DATA, body);
}

// Splits a byte stream into its magic bytes and frame bodies.
function parser(onMagic, onFrame) {
  let buffer = Buffer.alloc(0);
  let magicDone = false;
  return (chunk) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    if (!magicDone) {
      if (buffer.length < 8) return;
      onMagic(buffer.subarray(0, 8));
      buffer = buffer.subarray(8);
      magicDone = true;
    }
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0);
      if (buffer.length < 4 + length) return;
      const body = buffer.subarray(4, 4 + length);
      buffer = buffer.subarray(4 + length);
      onFrame(body);
    }
  };
}

// ---- the real agent ----------------------------------------------------------

const agent = spawn(process.execPath, [agentPath], { stdio: ['pipe', 'pipe', 'inherit'] });
let finished = false;

function finish(code) {
  if (finished) return;
  finished = true;
  agent.kill('SIGKILL');
  process.stdout.write(Buffer.alloc(0), () => process.exit(code));
}

agent.on('exit', (code) => finish(code ?? 1));
agent.on('error', (error) => {
  process.stderr.write(`hostile agent: cannot start ${agentPath}: ${error.message}\n`);
  finish(1);
});
agent.stdin.on('error', () => undefined);
process.stdout.on('error', () => finish(1));

// What the host asked for, by request id.
const requests = new Map();
let firstRead;

process.stdin.on(
  'data',
  parser(
    () => undefined,
    (body) => {
      if (body[0] !== FRAME_JSON) return;
      try {
        const request = JSON.parse(body.subarray(1).toString('utf8'));
        if (typeof request.id === 'number') requests.set(request.id, request);
        if (request.t === 'read' && firstRead === undefined) firstRead = request.id;
      } catch {
        // the host's hello is not a request
      }
    },
  ),
);
// Everything from the host reaches the agent unchanged.
process.stdin.on('data', (chunk) => agent.stdin.write(chunk));
process.stdin.on('end', () => agent.stdin.end());

// ---- lying -------------------------------------------------------------------

const send = (bytes) => {
  if (!finished) process.stdout.write(bytes);
};
let helloSent = false;
let replies = 0;
let silenced = false;
let triggered = false;

function isRootListing(message) {
  const request = requests.get(message.id);
  return message.t === 'listing' && request?.t === 'list' && request.path === '';
}

// An entry for a listing, like the agent's own first entry but named `name`.
function entryNamed(listing, name, kind) {
  const model = listing.entries.find((e) => e[1] === kind) ?? [name, kind, kind === 1 ? 0o40755 : 0o100644, 5, ZERO_STAMP, 1];
  return [name, kind, ...model.slice(2)];
}

const INJECTED_NAMES = {
  'name-dotdot': ['..', 1],
  'name-dot': ['.', 1],
  'name-slash': ['a/b', 0],
  'name-traversal': ['../../escaped', 0],
  'name-empty': ['', 0],
  'name-nul': ['x\u0000y', 0],
  'name-ctrl': ['x\u0001y', 0],
  'name-del': ['x\u007fy', 0],
  'name-long': ['n'.repeat(300), 0],
  'name-long-utf8': ['\u00e9'.repeat(150), 0],
  'name-abs': [param ?? '/etc/passwd', 0],
};

function onReply(message) {
  replies++;
  const request = requests.get(message.id);
  switch (mode) {
    case 'pass':
      break;
    case 'oversize':
      // A length just over MAX_FRAME (16 MiB), then garbage; nothing more after it.
      send(Buffer.from([0x01, 0x00, 0x00, 0x01]));
      send(Buffer.alloc(64 * 1024, 0x5a));
      silenced = true;
      return;
    case 'truncated':
      if (isRootListing(message)) {
        const frame = jsonFrame(message);
        send(frame.subarray(0, Math.floor(frame.length / 2)));
        finish(0);
        return;
      }
      break;
    case 'exit':
      // A clean end between frames: the agent just goes away after its first reply.
      send(jsonFrame(message));
      finish(0);
      return;
    case 'schema-size':
      if (isRootListing(message)) {
        const entry = message.entries.find((e) => e[1] === 0) ?? message.entries[0];
        if (entry !== undefined) entry[3] = String(entry[3]);
      }
      break;
    case 'schema-field':
      if (isRootListing(message)) message.owner = 'root';
      break;
    case 'schema-type':
      if (replies === 1) message = { t: 'launch', id: message.id, command: 'rm -rf ~' };
      break;
    case 'wrong-kind':
      if (replies === 1) message = { t: 'hash', id: message.id, hash: '0123456789abcdef' };
      break;
    case 'unknown-id':
      if (replies === 1) send(jsonFrame({ t: 'ok', id: 987654 }));
      break;
    case 'duplicate-reply':
      if (replies === 1) send(jsonFrame(message));
      break;
    case 'order':
      if (isRootListing(message)) message.entries.reverse();
      break;
    case 'duplicate-name':
      if (isRootListing(message) && message.entries.length > 0) message.entries.splice(1, 0, [...message.entries[0]]);
      break;
    case 'partial':
      if (isRootListing(message) && request?.expect === undefined) {
        message.complete = false;
        message.entries = message.entries.filter((e) => e[1] === 1);
      }
      break;
    case 'lie-hash':
      if (message.t === 'hash') message.hash = message.hash.slice(0, 15) + (message.hash[15] === '0' ? '1' : '0');
      break;
    case 'extra-data':
    case 'extra-data-one':
      if (message.t === 'end' && request?.t === 'read' && (mode === 'extra-data' || message.id === firstRead)) send(dataFrame(message.id, Buffer.from('one byte too many')));
      break;
    case 'data-unknown':
      if (replies === 1) send(dataFrame(message.id, Buffer.from('data for a request that is not a read')));
      break;
    case 'bad-json':
      if (replies === 1) {
        send(rawFrame(FRAME_JSON, Buffer.from('{"t":"ok","id":')));
        silenced = true;
        return;
      }
      break;
    case 'bad-utf8':
      if (replies === 1) {
        send(rawFrame(FRAME_JSON, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
        silenced = true;
        return;
      }
      break;
    case 'frame-type':
      if (replies === 1) {
        send(rawFrame(7, Buffer.from('???')));
        silenced = true;
        return;
      }
      break;
    case 'zero-frame':
      if (replies === 1) {
        send(Buffer.alloc(4));
        silenced = true;
        return;
      }
      break;
    case 'stall':
      // Alive, connected, and never answers anything.
      silenced = true;
      return;
    default:
      if (mode in INJECTED_NAMES && isRootListing(message) && !triggered) {
        triggered = true;
        const [name, kind] = INJECTED_NAMES[mode];
        message.entries.unshift(entryNamed(message, name, kind));
      }
  }
  send(jsonFrame(message));
}

function onData(body) {
  const id = body.readUInt32BE(1);
  if (mode === 'mutate-data' || (mode === 'mutate-data-one' && id === firstRead)) {
    const copy = Buffer.from(body);
    for (let i = 5; i < copy.length; i++) copy[i] ^= 0xff;
    send(rawFrame(FRAME_DATA, copy.subarray(1)));
    return;
  }
  send(rawFrame(FRAME_DATA, body.subarray(1)));
}

agent.stdout.on(
  'data',
  parser(
    (magic) => {
      if (mode === 'silent') {
        silenced = true;
        return;
      }
      send(mode === 'magic' ? Buffer.from('SSH-2.0-') : magic);
    },
    (body) => {
      if (silenced || finished) return;
      if (body[0] === FRAME_DATA) {
        onData(body);
        return;
      }
      const message = JSON.parse(body.subarray(1).toString('utf8'));
      if (!helloSent) {
        helloSent = true;
        if (mode === 'version') message.version = 2;
        send(jsonFrame(message));
        return;
      }
      onReply(message);
    },
  ),
);
