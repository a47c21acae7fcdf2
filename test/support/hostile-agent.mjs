/**
 * Test only: a hostile ferry guest agent.
 *
 *   node hostile-agent.mjs MODE /path/to/agent.mjs [PARAM]
 *   node hostile-agent.mjs            (reads hostile.json beside itself: {"mode", "agent", "param", "disk"})
 *
 * It is a real peer that lies: it spawns the real agent bundle, relays the
 * host's bytes to it unchanged, and relays the agent's frames back to the
 * host, mutating them according to MODE. It reads the host's requests (to
 * know which reply answers what) but never changes them.
 *
 * Without arguments it stands in for the agent a daemon installed in a
 * compromised guest (~/.cache/ferry/agent-<hash>.mjs, run by `node` for
 * every channel): the guest rewrites hostile.json to change its lie.
 *
 * Stream format (src/protocol/frame.ts): 8 magic bytes, then frames of a u32
 * big-endian length L and L bytes: a type byte (1 JSON, 2 data), then the
 * JSON text, or a u32 request id and the data.
 *
 * Plain Node, no imports from the repository: it runs in the guest.
 */

import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// MODE, the real agent and PARAM: from the arguments, or else from hostile.json beside this script.
function configuration() {
  const args = process.argv.slice(2);
  if (args.length > 0) return { mode: args[0], agent: args[1], param: args[2] };
  const file = join(dirname(fileURLToPath(import.meta.url)), 'hostile.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    process.stderr.write(`hostile agent: cannot read ${file}: ${error.message}\n`);
    process.exit(2);
  }
}

// With "disk": "portable", the real agent is not given the native shims the host uploaded.
const { mode = 'pass', agent: agentPath, param, disk } = configuration();
if (typeof agentPath !== 'string') {
  process.stderr.write('usage: node hostile-agent.mjs MODE /path/to/agent.mjs [PARAM], or a hostile.json beside it\n');
  process.exit(2);
}
const configured = process.argv.length <= 2;

// Notes what the agent did in hostile.log beside it (with hostile.json only), for the tests to wait on.
function note(line) {
  if (configured) appendFileSync(join(dirname(fileURLToPath(import.meta.url)), 'hostile.log'), `${line}\n`);
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

const agentEnv = { ...process.env };
if (disk === 'portable') delete agentEnv.FERRY_SHIMS;
const agent = spawn(process.execPath, [agentPath], { stdio: ['pipe', 'pipe', 'inherit'], env: agentEnv });
let finished = false;

// Set while the agent goes on talking after the host closed the channel.
let lingering = false;

function finish(code) {
  if (finished || lingering) return;
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

// What the host asked for, by request id, the id its change notices go under, and the root it serves.
const requests = new Map();
let watchId;
let guestRoot;
let firstRead;

process.stdin.on(
  'data',
  parser(
    () => undefined,
    (body) => {
      if (body[0] !== FRAME_JSON) return;
      try {
        const request = JSON.parse(body.subarray(1).toString('utf8'));
        if (request.t === 'hello' && typeof request.root === 'string') guestRoot = resolve(request.root);
        if (typeof request.id === 'number') requests.set(request.id, request);
        if (request.t === 'watch') watchId = request.id;
        for (const [stagedId, path] of stagedFiles(request)) {
          if (mode === 'swap-on-stage' && path === 'sub/sent.txt' && swapped === undefined) swapSub(stagedId, request.id, path);
          if (mode === 'noting' || mode === 'slow-reader') note(`stage ${path}`);
        }
        if (request.t === 'read' && firstRead === undefined) firstRead = request.id;
        if (mode === 'hangup-on-stage' && request.t === 'stage' && request.size > 1024 * 1024) hangUp();
      } catch {
        // the host's hello is not a request
      }
    },
  ),
);
// The files a request stages, as [staged id, path]: one for a stage, each of a stageMany's
// (whose files take the ids id, id + 1, ...).
function stagedFiles(request) {
  if (request.t === 'stage') return [[request.id, request.path]];
  if (request.t === 'stageMany' && Array.isArray(request.files)) return request.files.map(([path], i) => [request.id + i, path]);
  return [];
}

// Just before the real agent sees the file the host sends as sub/sent.txt, sub/ becomes a symlink
// to PARAM until that file is put in place (a guest that races its own agent, and wins every time).
let swapped;
function swapSub(stageId, requestId, path) {
  const sub = join(guestRoot, 'sub');
  renameSync(sub, `${sub}.real`);
  symlinkSync(param, sub);
  swapped = { stageId, requestId, back: false };
  note(`swapped sub for a symlink to ${param} for ${path}`);
}

function swapBack() {
  const sub = join(guestRoot, 'sub');
  unlinkSync(sub);
  renameSync(`${sub}.real`, sub);
  swapped.back = true;
  note('swapped sub back');
}

// In the middle of a large file from the host: stop reading, then go away (a guest that crashes mid-transfer).
function hangUp() {
  process.stdin.pause();
  setTimeout(() => finish(0), 300);
}

// Everything from the host reaches the agent unchanged.
process.stdin.on('data', (chunk) => agent.stdin.write(chunk));
process.stdin.on('end', () => {
  agent.stdin.end();
  if (mode === 'spray-on-eof') sprayAfterEnd(1000);
});

// A guest that reads what the host sends slowly: a millisecond in every 20.
if (mode === 'slow-reader') {
  process.stdin.pause();
  setInterval(() => {
    process.stdin.resume();
    setTimeout(() => process.stdin.pause(), 1);
  }, 20);
}

// After the host closed the channel (a revoke): change notices, replies and data for `ms`, then a note of how many.
function sprayAfterEnd(ms) {
  lingering = true;
  let sent = 0;
  const timer = setInterval(() => {
    sent++;
    if (watchId !== undefined) send(jsonFrame({ t: 'changed', id: watchId, dirs: [''] }));
    send(jsonFrame({ t: 'ok', id: sent }));
    send(dataFrame(sent, Buffer.from('after the end')));
  }, 5);
  setTimeout(() => {
    clearInterval(timer);
    note(`spray-on-eof: ${sent} rounds after the host closed the channel`);
    lingering = false;
    finish(0);
  }, ms);
}

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
  'name-updown': ['a/../../b', 0],
  // A lone surrogate: JSON.stringify writes it as the escape \udc80, valid JSON, not valid Unicode.
  'name-surrogate': ['x\udc80y', 0],
};

// Change notices naming directories outside the root, sent right after the watch is accepted.
const CHANGED_DIRS = {
  'changed-dotdot': ['../..'],
  'changed-abs': ['/etc'],
  'changed-long': [`${'d/'.repeat(2100)}d`],
};

// ---- forged directories ------------------------------------------------------

// A directory the agent claims in the root listing ('escape' or 'huge'), and what it answers for it.
const FORGED_DIR = { 'list-escape': 'escape', 'huge-listing': 'huge' }[mode];
const FRAME_ROOM = 16 * 1024 * 1024 - 64 * 1024;

// A listing of `escape` that names its parent, and a file outside it.
function escapeListing(id) {
  return {
    t: 'listing',
    id,
    digest: 0,
    complete: true,
    entries: [
      ['..', 1, 0o40755, 0, ZERO_STAMP, 0],
      ['passwd', 0, 0o100644, 5, ZERO_STAMP, 0],
    ],
  };
}

// As many one-byte files as fit in one frame (PARAM caps the count): a directory that claims no end of entries.
function hugeListing(id) {
  const entries = [];
  const cap = param === undefined ? Number.POSITIVE_INFINITY : Number(param);
  let bytes = 100;
  for (let i = 0; i < cap; i++) {
    const entry = [`f${String(i).padStart(9, '0')}`, 0, 0o100644, 1, ZERO_STAMP, 0];
    bytes += JSON.stringify(entry).length + 1;
    if (bytes > FRAME_ROOM) break;
    entries.push(entry);
  }
  return { t: 'listing', id, digest: 0, complete: true, entries };
}

// Replaces the real agent's answer (an error: nothing is there) to a request about the forged directory.
function forge(message, request) {
  if (FORGED_DIR === undefined || request === undefined) return message;
  if (request.t === 'list' && request.path === FORGED_DIR) return mode === 'huge-listing' ? hugeListing(message.id) : escapeListing(message.id);
  if (request.t === 'read' && typeof request.path === 'string' && request.path.startsWith(`${FORGED_DIR}/`)) {
    send(dataFrame(message.id, Buffer.alloc(request.size, 0x78)));
    return { t: 'end', id: message.id };
  }
  if (request.t === 'hash' && typeof request.path === 'string' && request.path.startsWith(`${FORGED_DIR}/`)) {
    // xxHash64 of "x", the content of every forged file
    return { t: 'hash', id: message.id, hash: '5c80c09683041123' };
  }
  return message;
}

// ---- noise ---------------------------------------------------------------------

// Sends one byte of a frame that never ends every `ms`: alive, yet never finishing anything.
function trickle(ms) {
  const frame = Buffer.concat([Buffer.from([0x00, 0xff, 0xff, 0xff]), Buffer.alloc(1024, 0x20)]);
  let at = 0;
  setInterval(() => send(frame.subarray(at % frame.length, (at++ % frame.length) + 1)), ms);
}

function onReply(message) {
  replies++;
  const request = requests.get(message.id);
  message = forge(message, request);
  switch (mode) {
    case 'pass':
      break;
    case 'changed-dotdot':
    case 'changed-abs':
    case 'changed-long':
      if (request?.t === 'watch' && message.t === 'ok') {
        send(jsonFrame(message));
        send(jsonFrame({ t: 'changed', id: message.id, dirs: CHANGED_DIRS[mode] }));
        return;
      }
      break;
    case 'list-escape':
    case 'huge-listing':
      // In every root listing, not just the first: a directory that is
      // claimed once and then missing reads as deleted in the guest, and
      // the host's next pass would rightly remove its copy (which a test
      // checking the first sync's outcome could catch half done).
      if (isRootListing(message) && !message.entries.some((e) => e[0] === FORGED_DIR)) {
        message.entries.unshift(entryNamed(message, FORGED_DIR, 1));
      }
      break;
    case 'noting':
    case 'slow-reader':
      // Honest; it notes each file the host sends it (see above).
      break;
    case 'swap-on-stage': {
      // Once the file is in place (wherever sub/ led), or failed, sub/ is put back.
      const done =
        (request?.t === 'commit' && request.staged === swapped?.stageId) ||
        (request?.t === 'commitNew' && request.staged.includes(swapped?.stageId)) ||
        (message.t === 'error' && (message.id === swapped?.stageId || message.id === swapped?.requestId)) ||
        (message.t === 'stagedMany' && message.id === swapped?.requestId && typeof message.results[swapped.stageId - message.id]?.[0] !== 'number');
      if (done && swapped?.back === false) {
        send(jsonFrame(message));
        swapBack();
        return;
      }
      break;
    }
    case 'spray':
      // Replies, data and change notices for every id from 1 to PARAM, hoping to hit someone's request.
      if (replies === 1) {
        for (let id = 1; id <= Number(param ?? 2000); id++) {
          send(jsonFrame({ t: 'ok', id }));
          send(dataFrame(id, Buffer.from('sprayed')));
          send(jsonFrame({ t: 'changed', id, dirs: [''] }));
        }
      }
      break;
    case 'trickle':
      // A slow loris: one byte of an endless frame every PARAM ms (default 1000).
      if (replies === 1) {
        silenced = true;
        trickle(Number(param ?? 1000));
        return;
      }
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
    case 'stage-count':
      if (message.t === 'stagedMany') message.results.pop();
      break;
    case 'stage-lie':
      if (message.t === 'stagedMany') message.results[0][1] = message.results[0][1] === '0123456789abcdef' ? 'fedcba9876543210' : '0123456789abcdef';
      break;
    case 'commit-count':
      if (message.t === 'committedNew') message.results.pop();
      break;
    case 'same-count':
      if (message.t === 'same') message.same.pop();
      break;
    case 'same-schema':
      if (message.t === 'same') message.same[0] = 'yes';
      break;
    case 'commit-schema':
      if (message.t === 'committedNew') message.results[0] = 'done';
      break;
    case 'where-relative':
      if (message.t === 'where') message.real = 'home/elsewhere';
      break;
    case 'where-dotdot':
      if (message.t === 'where') message.real = '/home/../etc';
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
  if (mode === 'short-data') {
    // Half the bytes of every chunk, then the honest "end": less than the size it announced.
    const data = body.subarray(5);
    const half = Math.floor(data.length / 2);
    send(dataFrame(id, data.subarray(0, half)));
    note(`short-data: ${half} of ${data.length} bytes of ${requests.get(id)?.path}`);
    return;
  }
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
        if (mode === 'version') message.version = 99;
        send(jsonFrame(message));
        return;
      }
      onReply(message);
    },
  ),
);
