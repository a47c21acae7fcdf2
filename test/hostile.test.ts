/**
 * A hostile guest: `ferry sync` against an agent that lies (see
 * support/hostile-agent.mjs), through the built CLI and a real sshd. Every
 * lie must end the sync with exit 1 and a reason, logged in the audit log,
 * within a bounded time, with nothing on the host changed: not a byte, not a
 * mode bit, no new file, nothing executable or setuid (DESIGN: trust model,
 * rules 6-7).
 */

import { copyFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AGENT_BUNDLE } from './support/agent.js';
import { auditLog } from './support/audit-log.js';
import { type CliResult, type Pair, makePair, readTree, runFerry } from './support/cli.js';
import { dangerous, snapshot } from './support/snapshot.js';
import { type Sshd, startSshd, sshdUnavailable } from './support/sshd.js';

const HOSTILE_AGENT = join(dirname(fileURLToPath(import.meta.url)), 'support', 'hostile-agent.mjs');
/** No run may take longer than this: a hostile guest must not hang the host. */
const RUN_LIMIT_MS = 60_000;

const ALPHA = { 'a.txt': 'alpha a\n', 'b.txt': 'alpha b\n', 'sub/c.txt': 'alpha c\n', 'sub/deep/d.txt': 'alpha d\n' };
// Beta holds files only: a lie told while copying (a content lie, extra
// data) comes after the honest part of the same pass, and a directory from
// beta would already have been created on alpha by then.
const BETA = { 'w.txt': 'beta w\n', 'x.txt': 'beta x\n', 'y.txt': 'beta y\n' };

interface HostileCase {
  /** The hostile agent's MODE. */
  readonly mode: string;
  readonly what: string;
  /** The reason ferry must name (on stderr, and in the audit log). */
  readonly reason: RegExp;
  /** The lie comes during the handshake: ferry says the agent did not start. */
  readonly handshake?: boolean;
  /** A plain lost connection: a clear "closed" message, not necessarily a logged violation. */
  readonly lost?: boolean;
  /** The agent's PARAM, from the test's top directory. */
  readonly param?: (top: string) => string;
  /** Sync honestly first, then change beta like this, so the lie is about an update of a file alpha has. */
  readonly after?: (beta: string) => void;
  /** How many honest syncs come before `after` (1 unless given). */
  readonly honest?: number;
}

const IMPOSSIBLE_NAME = /listing entry 0 has an impossible name/;
const CONTENT_LIE = /sent content for \S+ that does not match the hash it announced/;

const CASES: HostileCase[] = [
  { mode: 'oversize', what: 'a frame over the 16 MiB limit', reason: /frame of 16777217 bytes is outside 1\.\.16777216/ },
  { mode: 'zero-frame', what: 'a frame of length 0', reason: /frame of 0 bytes is outside/ },
  { mode: 'truncated', what: 'half a frame, then exit', reason: /the stream ended in the middle of a frame/ },
  { mode: 'exit', what: 'the agent exits between frames', reason: /the connection to ssh:\/\/\S+ closed/, lost: true },
  { mode: 'magic', what: 'wrong magic bytes', reason: /did not start with ferry's magic bytes/, handshake: true },
  { mode: 'version', what: 'a hello with another protocol version', reason: /speaks protocol version 99/, handshake: true },
  { mode: 'frame-type', what: 'an unknown frame type', reason: /unknown frame type 7/ },
  { mode: 'bad-json', what: 'a message that is not JSON', reason: /a message is not valid JSON/ },
  { mode: 'bad-utf8', what: 'a message that is not UTF-8', reason: /a message is not valid UTF-8/ },
  { mode: 'schema-size', what: 'a listing entry with a string size', reason: /listing entry \d+ size is not an integer/ },
  { mode: 'schema-field', what: 'a listing with an unknown field', reason: /listing has an unknown field "owner"/ },
  { mode: 'schema-type', what: 'an unknown message type', reason: /unknown message type "launch"/ },
  { mode: 'wrong-kind', what: 'a reply of the wrong kind', reason: /a "hash" reply to a request that expects exists/ },
  { mode: 'unknown-id', what: 'a reply to a request never made', reason: /a reply to request 987654, which was never made/ },
  { mode: 'duplicate-reply', what: 'a second reply to an answered request', reason: /a reply to request \d+, which was never made or is already answered/ },
  { mode: 'data-unknown', what: 'data for a request that is not a read', reason: /data for request \d+, which is not a read in progress/ },
  { mode: 'name-dotdot', what: 'a listing entry named ".."', reason: /listing entry 0 has an invalid name \(component "\.\." is not allowed\)/ },
  { mode: 'name-dot', what: 'a listing entry named "."', reason: /listing entry 0 has an invalid name \(component "\." is not allowed\)/ },
  { mode: 'name-slash', what: 'a listing entry named "a/b"', reason: IMPOSSIBLE_NAME },
  { mode: 'name-traversal', what: 'a listing entry named "../../escaped"', reason: IMPOSSIBLE_NAME },
  { mode: 'name-empty', what: 'a listing entry with an empty name', reason: IMPOSSIBLE_NAME },
  { mode: 'name-nul', what: 'a listing entry with NUL in its name', reason: IMPOSSIBLE_NAME },
  { mode: 'name-abs', what: 'a listing entry named by an absolute host path', reason: IMPOSSIBLE_NAME, param: (top) => join(top, 'planted') },
  { mode: 'name-ctrl', what: 'a name with \\u0001 not flagged bad-name', reason: /listing entry 0 has an invalid name \(component contains a control character\)/ },
  { mode: 'name-del', what: 'a name with DEL not flagged bad-name', reason: /listing entry 0 has an invalid name \(component contains a control character\)/ },
  { mode: 'name-long', what: 'a 300-byte name', reason: /listing entry 0 has an invalid name \(component is longer than 255 bytes\)/ },
  { mode: 'name-long-utf8', what: 'a name of 150 characters and 300 bytes', reason: /listing entry 0 has an invalid name \(component is longer than 255 bytes\)/ },
  { mode: 'order', what: 'a listing out of order', reason: /listing entry \d+ is out of order/ },
  { mode: 'duplicate-name', what: 'a listing naming one entry twice', reason: /listing entry 1 is out of order/ },
  { mode: 'partial', what: 'a partial listing nobody asked for', reason: /a partial listing nobody asked for/ },
  { mode: 'extra-data', what: 'more data than the read asked for', reason: /more data than the \d+ bytes asked for/ },
  { mode: 'mutate-data', what: 'content other than its announced hash (new files from beta)', reason: CONTENT_LIE },
  {
    mode: 'mutate-data',
    what: 'content other than its announced hash (an update of a file alpha has)',
    reason: CONTENT_LIE,
    after: (beta) => writeFileSync(join(beta, 'a.txt'), 'beta updated a\n'),
  },
  { mode: 'stage-count', what: 'fewer outcomes than the files sent to stage together', reason: /it answered \d+ of \d+ stagings/ },
  { mode: 'stage-lie', what: 'a staged hash other than that of the bytes sent', reason: /it staged other bytes for \S+ than were sent/ },
  { mode: 'commit-count', what: 'fewer outcomes than the files it was asked to commit', reason: /it answered 3 of 4 commits/ },
  { mode: 'commit-schema', what: 'a commit outcome that is neither a digest nor an error', reason: /committedNew result 0 is neither a digest nor \[code, message\]/ },
  // Honest syncs first, so that listings are recorded for the lying one to be asked about.
  { mode: 'same-count', what: 'fewer answers than the directories asked about', reason: /answered for 2 of the 3 directories asked about/, after: () => undefined, honest: 2 },
  { mode: 'same-schema', what: 'an answer about a directory that is not a boolean', reason: /same 0 is not a boolean/, after: () => undefined, honest: 2 },
  { mode: 'lie-hash', what: 'a hash reply that does not match the content sent', reason: CONTENT_LIE },
  { mode: 'where-relative', what: "a root's canonical path that is not absolute", reason: /where real is not an absolute path/ },
  { mode: 'where-dotdot', what: "a root's canonical path through \"..\"", reason: /where real: component "\.\." is not allowed/ },
  { mode: 'silent', what: 'an agent that never says hello', reason: /did not answer within 30 s/, handshake: true },
];

const unavailable = sshdUnavailable();

describe('a hostile guest agent', () => {
  let sshd: Sshd | undefined;
  let agentDir = '';
  beforeAll(async () => {
    if (unavailable !== undefined) return;
    sshd = await startSshd();
    // Both scripts must be readable by the guest user, in the guest's home.
    agentDir = sshd.guestDir('hostile-agent');
    copyFileSync(HOSTILE_AGENT, join(agentDir, 'hostile-agent.mjs'));
    copyFileSync(AGENT_BUNDLE, join(agentDir, 'agent.mjs'));
    sshd.chownToGuest(agentDir);
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  const guest = (): Sshd => {
    if (sshd === undefined) throw new Error(`the hostile-agent tests need a real sshd: ${unavailable ?? 'sshd did not start'}`);
    return sshd;
  };

  /** run syncs pair once with the hostile agent in `mode`, and how long it took. */
  const run = async (pair: Pair, mode: string, param?: string): Promise<CliResult & { ms: number }> => {
    const server = guest();
    server.chownToGuest(pair.beta);
    const command = ['exec', 'node', join(agentDir, 'hostile-agent.mjs'), mode, join(agentDir, 'agent.mjs'), ...(param !== undefined ? [param] : [])].join(' ');
    const started = Date.now();
    // A guest that stops answering is cut off after FERRY_AGENT_TIMEOUT seconds.
    const result = await runFerry(pair.home, ['sync', pair.alpha, pair.betaArg, '--once', '--key', server.clientKey], RUN_LIMIT_MS, {
      FERRY_AGENT_COMMAND: command,
      FERRY_AGENT_TIMEOUT: '3',
    });
    return { ...result, ms: Date.now() - started };
  };

  // The control: with nothing to lie about, the relay is a faithful agent.
  test.concurrent('an honest relay syncs both ways (exit 0)', async ({ expect }) => {
    const pair = makePair(ALPHA, BETA, guest());
    const r = await run(pair, 'pass');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readTree(pair.alpha)).toEqual(readTree(pair.beta));
    expect(readTree(pair.alpha)).toMatchObject({ ...ALPHA, ...BETA });
    expect(auditLog(pair.home).filter((row) => row.kind === 'protocol-violation')).toEqual([]);
  });

  test.concurrent.for(CASES)(
    '$what: exit 1, the reason, logged, the host untouched',
    { timeout: RUN_LIMIT_MS + 30_000 },
    async (c, { expect }) => {
      const pair = makePair(ALPHA, BETA, guest());
      const top = dirname(pair.alpha);
      writeFileSync(join(top, 'sentinel.txt'), 'outside both trees\n');
      if (c.after !== undefined) {
        for (let i = 0; i < (c.honest ?? 1); i++) {
          const honest = await run(pair, 'pass');
          expect(honest.stderr).toBe('');
          expect(honest.status).toBe(0);
        }
        c.after(pair.beta);
      }
      // FERRY_HOME lives next to alpha; it is ferry's own state, not the user's files.
      const notUser = new Set(['home']);
      const before = snapshot(top, notUser);
      const violationsBefore = c.after === undefined ? 0 : auditLog(pair.home).filter((row) => row.kind === 'protocol-violation').length;

      const r = await run(pair, c.mode, c.param?.(top));

      expect(r.ms).toBeLessThan(RUN_LIMIT_MS);
      expect(r.stderr).toMatch(c.handshake === true ? /^ferry: the ferry agent in \S+ did not start: / : /^ferry: sync halted: /);
      expect(r.stderr).toMatch(c.reason);
      expect(r.stderr).not.toMatch(/unexpected error/);
      expect(r.status).toBe(1);
      expect(snapshot(top, notUser)).toEqual(before);
      expect(dangerous(top, notUser)).toEqual([]);
      const violations = auditLog(pair.home).filter((row) => row.kind === 'protocol-violation');
      if (c.lost === true) expect(r.stderr).toMatch(/connection to .* closed/);
      else {
        expect(violations.length).toBeGreaterThan(violationsBefore);
        expect(violations.at(-1)?.detail).toMatch(c.reason);
      }
    },
  );

  // When one file's content does not match its announced hash, the other
  // files from the same lying guest, staged in the same batch, are not put
  // in place either.
  test('after a content lie, nothing else of its batch from the guest lands on alpha', async () => {
    const pair = makePair(ALPHA, BETA, guest());
    const before = snapshot(pair.alpha);
    const r = await run(pair, 'mutate-data-one');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(CONTENT_LIE);
    expect(r.stderr).toMatch(/nothing more from it was applied/);
    const violations = auditLog(pair.home).filter((row) => row.kind === 'protocol-violation');
    expect(violations.map((row) => row.detail)).toEqual([expect.stringMatching(CONTENT_LIE)]);
    expect(snapshot(pair.alpha)).toEqual(before);
  }, RUN_LIMIT_MS + 30_000);

  // An agent that says hello and then never answers (a slow loris) is cut
  // off once requests go unanswered for FERRY_AGENT_TIMEOUT seconds.
  test('an agent that stalls after hello: ferry gives up within a bounded time', async () => {
    const pair = makePair(ALPHA, BETA, guest());
    const before = snapshot(pair.alpha);
    const r = await run(pair, 'stall');
    expect(r.ms).toBeLessThan(RUN_LIMIT_MS);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/sync halted: .*unanswered for 3 s/);
    expect(auditLog(pair.home).some((row) => row.kind === 'protocol-violation' && /unanswered for 3 s/.test(row.detail))).toBe(true);
    expect(snapshot(pair.alpha)).toEqual(before);
  }, RUN_LIMIT_MS + 30_000);
});
