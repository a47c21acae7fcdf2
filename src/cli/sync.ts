/**
 * `ferry sync <alpha> <beta> [--once | --watch] [--json]`.
 */

import { parseArgs } from 'node:util';
import { describeUnsupported } from '../core/entry.js';
import { SessionHalt, UsageError, asError } from '../core/errors.js';
import { shellWord } from '../core/shell.js';
import { dial } from '../transport/dial.js';
import { looksRemote, parseTarget, targetLabel } from '../transport/target.js';
import { LocalEndpoint } from '../fs/local.js';
import { nativeDisk, requireOpenat2 } from '../fs/native.js';
import { hostWatcher } from '../fs/watcher-binding.js';
import type { Store } from '../state/store.js';
import { type EarlyCheck, type Summary, type SyncEvent, checkEarly, syncSession } from '../sync/session.js';
import type { Link, WatchEvent } from '../sync/watch.js';
import { checkPair, checkRoot } from './roots.js';
import { EXIT, formatBytes, plural, printJson, printLines, markToldAsEvent, terminalSafe, whenStdoutCloses } from './output.js';

/** syncCommand runs one sync of a pair of directories, or keeps them in step with --watch. */
export async function syncCommand(store: Store, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      once: { type: 'boolean', default: false },
      watch: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      key: { type: 'string' },
      'accept-new-host-key': { type: 'boolean', default: false },
      'verify-every': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.watch && values.once) throw new UsageError('--once and --watch exclude each other: sync once, or keep watching');
  if (!values.watch && values['verify-every'] !== undefined) throw new UsageError('--verify-every applies to --watch');
  const verifyEveryMs = parseDuration(values['verify-every'] ?? '1h', '--verify-every');
  if (positionals.length !== 2) throw new UsageError('usage: ferry sync <alpha> <beta> [--once | --watch] [--json]');
  const [alphaArg, betaArg] = positionals as [string, string];
  requireOpenat2();
  if (looksRemote(alphaArg)) throw new UsageError(`${alphaArg}: alpha is the host side and must be a local directory; put the guest (ssh) side second`);
  const known = (path: string) => store.hasSessionWithRoot(path);
  const alphaRoot = checkRoot(alphaArg, 'alpha', known);
  const remote = looksRemote(betaArg) ? parseTarget(betaArg) : undefined;
  if (remote === undefined && (values.key !== undefined || values['accept-new-host-key'])) throw new UsageError('--key and --accept-new-host-key apply to an ssh:// (or user@host:path) beta');
  const betaRoot = remote === undefined ? checkRoot(betaArg, 'beta', known) : targetLabel(remote);
  if (remote === undefined) checkPair(alphaRoot, betaRoot);
  // The same two directories the other way round would be a session of their
  // own, with no record of what the first one synced: a file deleted since
  // would come back from the side that still has it.
  const swapped = remote === undefined ? store.session(betaRoot, alphaRoot, false) : undefined;
  if (swapped !== undefined && store.session(alphaRoot, betaRoot, false) === undefined) {
    throw new UsageError(
      `${betaRoot} and ${alphaRoot} are already synced the other way round (session ${swapped.id}); run \`ferry sync ${shellWord(betaRoot)} ${shellWord(alphaRoot)}\`: with the two swapped ferry would start afresh, with no record of what was synced or deleted`,
    );
  }
  // The guest's server starts up while the rest is loaded and alpha checked.
  const dialled = remote === undefined ? undefined : dial(remote);
  try {
    const watcher = values.watch ? hostWatcher : undefined;

    const connect = async (alpha = new LocalEndpoint('alpha', alphaRoot, nativeDisk(), watcher)): Promise<Link> => {
      const guest =
        remote === undefined
          ? undefined
          : await (await import('../transport/ssh.js')).connectGuest(
              remote,
              'beta',
              { acceptNewHostKey: values['accept-new-host-key'], home: store.home, ...(values.key !== undefined ? { key: values.key } : {}), ...(dialled !== undefined ? { dialled } : {}) },
              (reason) => store.log('protocol-violation', store.session(alphaRoot, betaRoot, false)?.id ?? null, null, `${betaRoot}: ${reason}`),
            );
      let where: string | undefined;
      try {
        if (guest !== undefined && remote !== undefined) {
          // Asked together: one round trip.
          const [exists, real] = await Promise.all([guest.endpoint.exists(''), guest.endpoint.where().catch(asError)]);
          if (!exists) {
            if (known(betaRoot)) throw new SessionHalt(`the beta root ${betaRoot} has vanished since the last sync; nothing was changed on either side`);
            // Something is there that has a real path: a file, or a link (which the agent never follows).
            if (!(real instanceof Error)) {
              throw new UsageError(`beta ${betaArg}: not a directory in the guest but a file or a symbolic link (leading to ${real}); ferry follows no links, not even at a root: give the directory itself`);
            }
            throw new UsageError(`beta ${betaArg}: no such directory in the guest; create it first (ferry syncs into existing directories)`);
          }
          if (real instanceof Error) throw real;
          // One guest directory under two names (localhost and 127.0.0.1,
          // ~/dir and /home/u/dir) would be two sessions, the second with no
          // record of what the first synced or deleted. Where it is: the
          // server (address, port, host key), the user, the real path. A
          // pair synced already under this name goes on as it was.
          where = `${guest.peer} ${remote.user} ${real}`;
          const other = store.session(alphaRoot, betaRoot, false) === undefined ? store.otherSessionAt(alphaRoot, betaRoot, where) : undefined;
          if (other !== undefined) {
            throw new UsageError(
              `beta ${betaArg} is the guest directory already synced with ${alphaRoot} as ${other.beta} (session ${other.id}); run \`ferry sync ${shellWord(alphaRoot)} ${shellWord(other.beta)}\`: under another name ferry would start afresh, with no record of what was synced or deleted`,
            );
          }
        }
      } catch (error) {
        guest?.close();
        throw error;
      }
      return {
        alpha,
        ...(where !== undefined ? { where } : {}),
        beta: guest?.endpoint ?? new LocalEndpoint('beta', betaRoot, nativeDisk(), watcher),
        ...(guest !== undefined ? { lost: guest.endpoint.ended, ...(guest.endpoint.agent !== undefined ? { agent: guest.endpoint.agent } : {}) } : {}),
        close: () => {
          guest?.close();
          return Promise.resolve();
        },
      };
    };
    if (values.watch) return await runWatch(store, values.json, verifyEveryMs, alphaRoot, betaRoot, connect);
    // While the guest connects, alpha checks the directories whose listings
    // the last sync recorded: the first half of the pass's first step.
    const alpha = new LocalEndpoint('alpha', alphaRoot, nativeDisk(), watcher);
    const last = remote === undefined ? undefined : store.session(alphaRoot, betaRoot, false);
    const early = last === undefined ? undefined : checkEarly(store, last.id, alpha);
    const link = await connect(alpha);
    try {
      return await runSync(store, values.json, alphaRoot, betaRoot, link, early);
    } finally {
      await link.close();
    }
  } finally {
    // Unused if the sync stopped before it connected.
    dialled?.drop();
  }
}

/** parseDuration reads "90", "90s", "15m", "1h" as milliseconds. */
function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  const scale = { s: 1000, m: 60_000, h: 3_600_000 };
  const ms = match === null ? Number.NaN : Number(match[1]) * scale[(match[2] ?? 's') as keyof typeof scale];
  if (!(ms >= 1000)) throw new UsageError(`${flag} ${JSON.stringify(text)}: give a duration of at least 1 s, such as 90s, 15m or 1h`);
  return ms;
}

async function runSync(store: Store, json: boolean, alphaRoot: string, betaRoot: string, link: Link, early?: EarlyCheck): Promise<number> {
  const values = { json };
  const session = store.session(alphaRoot, betaRoot, true);
  if (session === undefined) throw new Error('session was not created');
  if (link.where !== undefined) store.setBetaWhere(session.id, link.where);
  const progress = !values.json && process.stderr.isTTY ? new Progress() : undefined;
  const onEvent = (event: SyncEvent) => {
    if (progress !== undefined) progress.update(event);
  };
  let summary: Summary;
  try {
    summary = await syncSession({ store, session, alpha: link.alpha, beta: link.beta, onEvent, early });
  } finally {
    progress?.clear();
  }
  const remaining = store.openConflicts(session.id);
  const status = summary.failures.length > 0 ? EXIT.error : remaining.length > 0 ? EXIT.conflicts : EXIT.ok;
  if (values.json) {
    printJson({
      status: status === EXIT.ok ? 'in-sync' : status === EXIT.conflicts ? 'conflicts' : 'error',
      session: session.id,
      alpha: alphaRoot,
      beta: betaRoot,
      ...(link.agent !== undefined ? { agent: link.agent } : {}),
      ...summary,
      conflicts: remaining.map((c) => ({ id: c.id, path: c.path, reason: c.reason, state: c.state, resolution: c.resolution })),
    });
  } else {
    printSummary(alphaRoot, betaRoot, summary, remaining);
  }
  return status;
}

// Keeps the pair in step until SIGINT or SIGTERM, or until stdout's reader
// goes (`--watch --json | head`): exit 0, or 3 with conflicts open; a halt,
// or a file still changing at the stop that could not be synced, exits 1. A
// second signal exits at once: every write is crash-safe anyway.
async function runWatch(store: Store, json: boolean, verifyEveryMs: number, alphaRoot: string, betaRoot: string, connect: () => Promise<Link>): Promise<number> {
  const controller = new AbortController();
  const onEvent = json ? (event: WatchEvent) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`) : printWatchEvent;
  const onSignal = () => {
    if (controller.signal.aborted) {
      const message = 'stopped at once by a second signal: nothing is torn, and the next sync finishes what this one left';
      if (json) onEvent({ event: 'error', message });
      else process.stderr.write(`ferry: ${message}\n`);
      process.exit(EXIT.error);
    }
    if (!json) process.stderr.write('ferry: stopping after the current batch (again to stop at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const offStdoutClosed = whenStdoutCloses(() => controller.abort());
  // The first link is made before the session: connecting checks that the
  // guest directory is not synced with alpha under another name already.
  let first: Link | undefined;
  try {
    const { watchSession } = await import('../sync/watch.js');
    first = await connect();
    const session = store.session(alphaRoot, betaRoot, true);
    if (session === undefined) throw new Error('session was not created');
    if (first.where !== undefined) store.setBetaWhere(session.id, first.where);
    const firstThenNew = (): Promise<Link> => {
      const link = first;
      first = undefined;
      return link !== undefined ? Promise.resolve(link) : connect();
    };
    const unsynced = await watchSession({ store, session, connect: firstThenNew, onEvent, verifyEveryMs, signal: controller.signal });
    return unsynced > 0 ? EXIT.error : store.openConflicts(session.id).length > 0 ? EXIT.conflicts : EXIT.ok;
  } catch (error) {
    if (json && error instanceof Error) {
      onEvent({ event: 'error', message: `halted: ${error.message}` });
      markToldAsEvent(error);
    }
    throw error;
  } finally {
    // Unused if the watch stopped before it started.
    await first?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    offStdoutClosed();
  }
}

// The human form of watch events: one short line each, quiet passes unsaid.
function printWatchEvent(event: WatchEvent): void {
  const time = new Date().toTimeString().slice(0, 8);
  let line: string | undefined;
  switch (event.event) {
    case 'connected':
      line = `watching ${event.alpha} ⇄ ${event.beta} (Ctrl-C stops)`;
      break;
    case 'scanning':
      if (event.scope === 'full') line = `scanning everything: ${event.reason}`;
      break;
    case 'synced': {
      const parts: string[] = [];
      if (event.copied.beta > 0) parts.push(`${plural(event.copied.beta, 'file')} to beta`);
      if (event.copied.alpha > 0) parts.push(`${plural(event.copied.alpha, 'file')} to alpha`);
      const dirs = event.dirsCreated.alpha + event.dirsCreated.beta;
      if (dirs > 0) parts.push(`${plural(dirs, 'directory', 'directories')} created`);
      const removed = event.removed.alpha + event.removed.beta;
      if (removed > 0) parts.push(`${removed} removed`);
      if (event.conflicts > 0) parts.push(plural(event.conflicts, 'conflict'));
      if (event.failures > 0) parts.push(plural(event.failures, 'error'));
      const what = parts.length === 0 ? 'in sync' : `${parts.join(', ')}${event.bytes > 0 ? ` (${formatBytes(event.bytes)})` : ''}`;
      line = event.scope === 'full' ? `${what}; ${plural(event.scanned, 'path')} scanned in ${event.ms} ms` : `${what} in ${event.ms} ms`;
      break;
    }
    case 'conflict':
      line = `conflict ${event.id}: ${event.path}: ${event.reason}; it stays as it is on both sides until \`ferry resolve ${event.id} --keep alpha|beta|both\``;
      break;
    case 'resolved':
      line = `resolved conflict ${event.id}: ${event.path} (kept ${event.keep})`;
      break;
    case 'unsupported':
      line = `skipped ${event.path}: ${describeUnsupported(event.reason)} on ${event.side}, not synced`;
      break;
    case 'held':
      line = `${event.path} keeps changing on ${event.side}: ferry syncs it once it has been unchanged for ${event.quietMs / 1000} s, and tries every ${event.maxMs / 1000} s while it changes`;
      break;
    case 'error':
      line = `error: ${event.message}`;
      break;
    case 'reconnecting':
      line = `connection lost (${event.message}); reconnecting in ${(event.inMs / 1000).toFixed(1)} s (attempt ${event.attempt})`;
      break;
    case 'stopped':
      line =
        event.unsynced === undefined
          ? 'stopped'
          : `stopped; ${plural(event.unsynced, 'file')} could not be synced at the stop (said above): the next sync tries again`;
      break;
  }
  if (line !== undefined) process.stdout.write(`${time} ${terminalSafe(line)}\n`);
}

function printSummary(alpha: string, beta: string, s: Summary, remaining: { id: number; path: string; reason: string; state: string }[]): void {
  const out: string[] = [];
  const parts: string[] = [];
  if (s.copied.beta > 0) parts.push(`${plural(s.copied.beta, 'file')} to beta`);
  if (s.copied.alpha > 0) parts.push(`${plural(s.copied.alpha, 'file')} to alpha`);
  const dirs = s.dirsCreated.alpha + s.dirsCreated.beta;
  if (dirs > 0) parts.push(`${plural(dirs, 'directory', 'directories')} created`);
  const removed = s.removed.alpha + s.removed.beta;
  if (removed > 0) parts.push(`${removed} removed`);
  if (remaining.length > 0) parts.push(plural(remaining.length, 'conflict'));
  if (s.failures.length > 0) parts.push(plural(s.failures.length, 'error'));
  const what = parts.length === 0 ? 'nothing to do' : `${parts.join(', ')}${s.bytes > 0 ? ` (${formatBytes(s.bytes)})` : ''}`;
  out.push(`ferry: ${alpha} ⇄ ${beta}: ${what}; ${plural(s.scanned, 'path')} scanned`);
  for (const r of s.resolved) out.push(`resolved conflict ${r.id}: ${r.path} (kept ${r.keep})`);
  for (const u of s.unsupported) out.push(`skipped ${u.path}: ${describeUnsupported(u.reason)} on ${u.side}, not synced`);
  if (s.execStripped > 0) out.push(`cleared exec bits on ${plural(s.execStripped, 'file')} that came from beta`);
  for (const f of s.failures) out.push(`error: ${f.message}`);
  for (const c of remaining) {
    const pending = c.state === 'pending' ? ' (resolution pending)' : '';
    out.push(`conflict ${c.id}: ${c.path}: ${c.reason}${pending}`);
  }
  if (remaining.length > 0) out.push(`${plural(remaining.length, 'conflict')} ${remaining.length === 1 ? 'remains' : 'remain'}: see \`ferry conflicts show <id>\`, then \`ferry resolve <id> --keep alpha|beta|both\``);
  else if (s.failures.length === 0) out.push('in sync');
  printLines(out);
}

/** Progress draws one status line on a terminal. */
class Progress {
  private shown = false;

  update(event: SyncEvent): void {
    if (event.kind !== 'progress') return;
    process.stderr.write(`\r\x1b[Kscanned ${event.scanned} paths, copied ${event.copied} files (${formatBytes(event.bytes)})`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
