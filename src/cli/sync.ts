/**
 * `ferry sync <alpha> <beta> [--once] [--json]`.
 */

import { parseArgs } from 'node:util';
import { describeUnsupported } from '../core/entry.js';
import type { Endpoint } from '../core/endpoint.js';
import { SessionHalt, UsageError } from '../core/errors.js';
import { looksRemote, parseTarget, targetLabel } from '../transport/target.js';
import { LocalEndpoint } from '../fs/local.js';
import { nativeDisk } from '../fs/native.js';
import type { Store } from '../state/store.js';
import { type Summary, type SyncEvent, syncSession } from '../sync/session.js';
import { checkPair, checkRoot } from './roots.js';
import { EXIT, formatBytes, plural, printJson } from './output.js';

/** syncCommand runs one sync of a pair of directories. */
export async function syncCommand(store: Store, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      once: { type: 'boolean', default: false },
      watch: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      key: { type: 'string' },
      'accept-new-host-key': { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.watch) throw new UsageError('--watch is not available in this version of ferry yet; use --once');
  if (positionals.length !== 2) throw new UsageError('usage: ferry sync <alpha> <beta> [--once] [--json]');
  const [alphaArg, betaArg] = positionals as [string, string];
  if (looksRemote(alphaArg)) throw new UsageError(`${alphaArg}: alpha is the host side and must be a local directory; put the guest (ssh) side second`);
  const known = (path: string) => store.hasSessionWithRoot(path);
  const alphaRoot = checkRoot(alphaArg, 'alpha', known);
  const remote = looksRemote(betaArg) ? parseTarget(betaArg) : undefined;
  if (remote === undefined && (values.key !== undefined || values['accept-new-host-key'])) throw new UsageError('--key and --accept-new-host-key apply to an ssh:// (or user@host:path) beta');
  const betaRoot = remote === undefined ? checkRoot(betaArg, 'beta', known) : targetLabel(remote);
  if (remote === undefined) checkPair(alphaRoot, betaRoot);

  const guest =
    remote === undefined
      ? undefined
      : await (await import('../transport/ssh.js')).connectGuest(
          remote,
          'beta',
          { acceptNewHostKey: values['accept-new-host-key'], home: store.home, ...(values.key !== undefined ? { key: values.key } : {}) },
          (reason) => store.log('protocol-violation', store.session(alphaRoot, betaRoot, false)?.id ?? null, null, `${betaRoot}: ${reason}`),
        );
  try {
    if (guest !== undefined && !(await guest.endpoint.exists(''))) {
      if (known(betaRoot)) throw new SessionHalt(`the beta root ${betaRoot} has vanished since the last sync; nothing was changed on either side`);
      throw new UsageError(`beta ${betaArg}: no such directory in the guest; create it first (ferry syncs into existing directories)`);
    }
    const beta = guest?.endpoint ?? new LocalEndpoint('beta', betaRoot, nativeDisk());
    return await runSync(store, values.json, alphaRoot, betaRoot, beta);
  } finally {
    guest?.close();
  }
}

async function runSync(store: Store, json: boolean, alphaRoot: string, betaRoot: string, beta: Endpoint): Promise<number> {
  const values = { json };
  const session = store.session(alphaRoot, betaRoot, true);
  if (session === undefined) throw new Error('session was not created');
  const progress = !values.json && process.stderr.isTTY ? new Progress() : undefined;
  const onEvent = (event: SyncEvent) => {
    if (progress !== undefined) progress.update(event);
  };
  let summary: Summary;
  try {
    summary = await syncSession({
      store,
      session,
      alpha: new LocalEndpoint('alpha', alphaRoot, nativeDisk()),
      beta,
      onEvent,
    });
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
      ...summary,
      conflicts: remaining.map((c) => ({ id: c.id, path: c.path, reason: c.reason, state: c.state, resolution: c.resolution })),
    });
  } else {
    printSummary(alphaRoot, betaRoot, summary, remaining);
  }
  return status;
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
  const what = parts.length === 0 ? 'nothing to do' : `${parts.join(', ')} (${formatBytes(s.bytes)})`;
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
  process.stdout.write(`${out.join('\n')}\n`);
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
