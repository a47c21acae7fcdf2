/**
 * The `ferry` command line. Exit status: 0 success, 1 error, 2 usage error,
 * 3 finished but conflicts remain.
 */

import { parseArgs } from 'node:util';
import { FerryError, SessionHalt, UsageError } from '../core/errors.js';
import { Store, StoreError, ferryHome } from '../state/store.js';
import { EXIT, quietOnClosedStdout, terminalSafe, toldAsEvent } from './output.js';

// Each command's module is loaded when that command runs: a sync does not
// pay for loading the powerbox's, the conflict viewer's or the demo's.
const conflicts = () => import('./conflicts.js');
const powerbox = () => import('./powerbox.js');

const VERSION = '0.1.0';

const HELP = `ferry ${VERSION} — grant files into a VM and keep both copies in step

Usage:
  ferry sync <alpha> <beta> [--once | --watch] [--json] [--key FILE] [--accept-new-host-key]
      Sync two directories both ways, once (the default). alpha is the host
      side (a local directory), beta the guest side: a local directory, or a
      directory on another machine as ssh://[user@]host[:port]/path or
      user@host:path. A path changed on both sides becomes a conflict and
      stops syncing until resolved; everything else keeps syncing.
      --watch keeps syncing: both sides are watched and each change is
      propagated as it happens, until Ctrl-C or SIGTERM or until what reads
      its output goes away (exit 0, or 3 if conflicts remain; open ones are
      listed at the first pass; 1 if a file still changing when it stops
      could not be copied; a second Ctrl-C stops at once, exit 1). A file
      that keeps changing (a download, a log) is copied once it has been
      unchanged for 1 s (tried every 10 s while it changes, and when the
      watch stops), not at every write. A lost
      connection is retried with backoff. Everything is rescanned at start, after a
      reconnection, when a watcher loses events, and every
      --verify-every DURATION (default 1h; e.g. 90s, 15m). With --json, one
      event per line: connected, scanning, synced, held, conflict, resolved,
      unsupported, error, reconnecting, stopped.
      Over SSH: the host key must be in ~/.ssh/known_hosts or
      $FERRY_HOME/known_hosts (--accept-new-host-key trusts and records a new
      one); keys come from --key (then ssh-agent), else from ssh-agent
      (SSH_AUTH_SOCK) and ~/.ssh/id_ed25519, id_ecdsa, id_rsa. ferry never
      asks for a passphrase: ssh-add such a key. A Host alias of
      ~/.ssh/config is read as ssh would (HostName, User, Port, IdentityFile,
      UserKnownHostsFile, HostKeyAlias).
      The guest needs Node.js 18 or newer; ferry installs its agent in
      ~/.cache/ferry there.
  ferry conflicts [--json]           List unresolved conflicts.
  ferry conflicts show <id> [--json] [--key FILE]
      Both versions' metadata, and a diff for text (unless they differ in
      thousands of lines). For a pair over SSH it connects to the guest as
      sync does (--key as for sync).
  ferry resolve <id> --keep alpha|beta|host|guest|both
      Choose a conflict's outcome; it is applied by the next sync of that
      pair (at once by a running --watch). "both" keeps alpha's version at the path and beta's beside it as
      "<stem> (conflict beta <date time>)<ext>" on both sides.
  ferry daemon                       The powerbox daemon, in the foreground: keeps
                                     every grant in step; the commands below
                                     talk to it over its control socket.
  ferry vm add NAME --ssh [user@]host[:port] [--key FILE]
      Register a VM reached over SSH; its host key is pinned now. Without
      --key, ferry makes an ed25519 key and prints the line to put in the
      guest's ~/.ssh/authorized_keys.
  ferry vm list [--json]             The VMs.
  ferry vm rm NAME                   Revoke the VM's grants, then forget it.
  ferry grant VM HOSTPATH [--as GUESTPATH] [--read-only] [--json]
      Grant a file or directory into a VM (default ~/Granted/<name> there;
      it must not exist yet, or be an empty directory). Returns once the
      first sync is done; prints the grant id. --read-only: changes made in
      the guest are put back and logged, never applied on the host.
      Limits on what the guest may bring in (a change past one is refused
      and logged): --max-file-size SIZE (default 16G), --max-total-size
      SIZE (256G), --max-entries N (2000000); and on its agent:
      --max-frame-size SIZE (16M), --max-message-rate N per second (50000).
  ferry revoke ID [--keep-guest-copy] [--json]
      From the moment it returns nothing from the guest is applied for that
      grant; the guest copy is removed (when the VM is next reachable if it
      is not now).
  ferry grants [--vm NAME] [--all] [--json]   The grants (--all: revoked too).
  ferry status [--json]              What the daemon is doing: VMs, grants.
  ferry log [--limit N] [--json]     The audit log: grants, revocations,
                                     conflicts, resolutions, read-only writes
                                     put back, exec bits cleared, protocol
                                     violations.
  ferry demo                         Sync a built-in example in a temp folder:
                                     changes both ways, a conflict, its resolution.
  ferry help | --help | -h           This text; also after a command, as in
                                     ferry sync --help.
  ferry --version                    The version.

Not yet available: run (launching applications in a VM), and VMs that
ferry spawns itself (QEMU).

State (archive, conflicts, VMs, grants, log) lives in $FERRY_HOME
(default \${XDG_STATE_HOME:-~/.local/state}/ferry). The daemon's control
socket is $FERRY_HOME/control.sock when FERRY_HOME is set, else
$XDG_RUNTIME_DIR/ferry/control.sock.

Exit status: 0 in sync; 1 error; 2 usage error; 3 finished but conflicts remain.`;

const NOT_YET = new Set(['run']);

/** main runs the command line and returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  quietOnClosedStdout();
  // --help (or -h) asks for the usage wherever it stands among ferry's own
  // arguments; after `--` it belongs to the command `ferry run` launches.
  const end = argv.indexOf('--');
  const own = end === -1 ? argv : argv.slice(0, end);
  try {
    if (command === undefined || command === 'help' || own.includes('--help') || own.includes('-h')) {
      process.stdout.write(`${HELP}\n`);
      return command === undefined ? EXIT.usage : EXIT.ok;
    }
    if (command === '--version' || command === '-V') {
      process.stdout.write(`ferry ${VERSION}\n`);
      return EXIT.ok;
    }
    if (NOT_YET.has(command)) throw new UsageError(`\`ferry ${command}\` is not available in this version of ferry yet`);
    switch (command) {
      case 'sync': {
        const { syncCommand } = await import('./sync.js');
        return await withStore((store) => syncCommand(store, rest));
      }
      case 'conflicts': {
        const { conflictsCommand, showConflictCommand } = await conflicts();
        if (rest[0] === 'show') return await withStore((store) => showConflictCommand(store, rest.slice(1)));
        const { values, positionals } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
        if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; did you mean \`ferry conflicts show ${positionals[0]}\`?`);
        return await withStore((store) => conflictsCommand(store, values.json));
      }
      case 'demo': {
        if (rest.length > 0) throw new UsageError('ferry demo takes no arguments');
        const { demoCommand } = await import('./demo.js');
        return await demoCommand();
      }
      case 'resolve': {
        const { resolveCommand } = await conflicts();
        return await withStore((store) => resolveCommand(store, rest));
      }
      case 'daemon': {
        if (rest.length > 0) throw new UsageError('ferry daemon takes no arguments');
        const { runDaemon } = await import('../powerbox/daemon.js');
        return await runDaemon(ferryHome());
      }
      case 'vm': {
        const { vmCommand } = await powerbox();
        return await withStore((store) => vmCommand(store, rest));
      }
      case 'grant': {
        const { grantCommand } = await powerbox();
        return await withStore((store) => grantCommand(store, rest));
      }
      case 'revoke': {
        const { revokeCommand } = await powerbox();
        return await withStore((store) => revokeCommand(store, rest));
      }
      case 'grants': {
        const { grantsCommand } = await powerbox();
        return await withStore((store) => grantsCommand(store, rest));
      }
      case 'status': {
        const { statusCommand } = await powerbox();
        return await withStore((store) => statusCommand(store, rest));
      }
      case 'log': {
        const { logCommand } = await powerbox();
        return await withStore((store) => logCommand(store, rest));
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; run \`ferry --help\``);
    }
  } catch (caught) {
    const error = isParseArgsError(caught) ? new UsageError(parseArgsMessage((caught as Error).message, command ?? '', rest)) : caught;
    const status = report(error);
    // A script that asked for JSON gets the failure as JSON too, unless a
    // running --watch has said it as an event already.
    if (rest.includes('--json') && !toldAsEvent(error)) process.stdout.write(`${JSON.stringify({ status: 'error', exit: status, message: (error as Error).message })}\n`);
    return status;
  }
}

async function withStore(fn: (store: Store) => Promise<number>): Promise<number> {
  const store = Store.open(ferryHome());
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

function report(error: unknown): number {
  if (error instanceof UsageError) {
    process.stderr.write(`ferry: ${terminalSafe((error as Error).message)}\n`);
    return EXIT.usage;
  }
  if (error instanceof SessionHalt) {
    process.stderr.write(`ferry: sync halted: ${terminalSafe(error.message)}\n`);
    return EXIT.error;
  }
  if (error instanceof FerryError) {
    process.stderr.write(`ferry: ${terminalSafe(error.message)}\n`);
    return EXIT.error;
  }
  if (error instanceof StoreError) {
    const hint = error.code === 'ESTATE' ? '; ferry keeps its state in FERRY_HOME (by default ~/.local/state/ferry), which must be a directory it can write' : '';
    process.stderr.write(`ferry: ${terminalSafe(error.message)}${hint}\n`);
    return EXIT.error;
  }
  const err = error as Error;
  process.stderr.write(`ferry: unexpected error: ${(err.stack ?? String(err)).split('\n').map(terminalSafe).join('\n')}\n`);
  return EXIT.error;
}

// parseArgs says what went wrong in several lines and its own words; ferry
// says it in one line: the option, and what to write instead.
function parseArgsMessage(message: string, command: string, args: readonly string[]): string {
  const option = /^Option '(?:-\w, )?(--[^' ]+)/.exec(message)?.[1];
  if (option !== undefined && message.includes('argument is ambiguous')) {
    const value = args[args.indexOf(option) + 1] ?? '';
    return `${option} ${value}: a value that starts with '-' reads as another option; write ${option}=${value} if it is the value of ${option}`;
  }
  if (option !== undefined && message.includes('argument missing')) return `${option} needs a value; see \`ferry --help\``;
  if (option !== undefined && message.includes('does not take an argument')) return `${option} takes no value; write ${option} alone`;
  const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (unknown !== undefined) return `unknown option ${unknown} for \`ferry ${command}\`; \`ferry --help\` lists the options`;
  const unexpected = /^Unexpected argument '([^']*)'/.exec(message)?.[1];
  if (unexpected !== undefined) return `unexpected argument ${JSON.stringify(unexpected)}: \`ferry ${command}\` takes options only; see \`ferry --help\``;
  return message.replace(/\s*\n\s*/g, ' ');
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
