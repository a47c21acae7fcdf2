/**
 * The powerbox commands: `ferry daemon`, `vm add|list|rm`, `grant`,
 * `revoke`, `grants`, `status`, `log`. Changes go through the running
 * daemon (over its control socket); listings read ferry.db directly, so
 * they work with the daemon stopped too.
 */

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../core/errors.js';
import { parseSize } from '../core/limits.js';
import { callDaemon, controlSocketPath } from '../powerbox/control.js';
import { PowerboxStore } from '../state/powerbox-store.js';
import type { Store } from '../state/store.js';
import { EXIT, formatBytes, printJson, printLines } from './output.js';

function call(store: Store, method: string, params: Record<string, unknown>, onProgress?: (update: unknown) => void): Promise<unknown> {
  return callDaemon(controlSocketPath(store.home), method, params, onProgress);
}

/** vmCommand: `ferry vm add NAME --ssh [user@]host[:port] [--key FILE]`, `ferry vm list [--json]`, `ferry vm rm NAME`. */
export async function vmCommand(store: Store, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { ssh: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  switch (sub) {
    case 'add': {
      const [name, extra] = positionals;
      if (name === undefined || extra !== undefined || values.ssh === undefined) throw new UsageError('usage: ferry vm add NAME --ssh [user@]host[:port] [--key FILE]');
      const result = (await call(store, 'vm.add', { name, ssh: values.ssh, ...(values.key !== undefined ? { key: resolve(values.key) } : {}) })) as Record<string, string>;
      if (values.json) printJson(result);
      else {
        process.stdout.write(`added VM ${result.name} (${result.user}@${result.host}:${result.port}); its host key ${result.hostKey} is pinned\n`);
        if (result.publicKey !== undefined) {
          process.stdout.write(`ferry made a key for it; add this line to ~${result.user}/.ssh/authorized_keys in the guest:\n${result.publicKey}\n`);
        }
      }
      return EXIT.ok;
    }
    case 'list': {
      if (positionals.length > 0) throw new UsageError('usage: ferry vm list [--json]');
      const pb = new PowerboxStore(store);
      const vms = pb.vms().map((vm) => ({
        name: vm.name,
        backend: vm.backend,
        target: `${vm.user}@${vm.host}:${vm.port}`,
        keyFile: vm.keyFile,
        grants: pb.grants({ vm: vm.name }).filter((g) => g.state === 'active').length,
      }));
      if (values.json) printJson(vms);
      else if (vms.length === 0) process.stdout.write('no VMs; add one with `ferry vm add NAME --ssh user@host`\n');
      else for (const vm of vms) process.stdout.write(`${vm.name}\t${vm.backend} ${vm.target}\t${vm.grants} grant(s)\n`);
      return EXIT.ok;
    }
    case 'rm': {
      const [name, extra] = positionals;
      if (name === undefined || extra !== undefined) throw new UsageError('usage: ferry vm rm NAME');
      const result = (await call(store, 'vm.rm', { name })) as { revoked: unknown[] };
      if (values.json) printJson(result);
      else process.stdout.write(`removed VM ${name}; ${result.revoked.length} grant(s) revoked first\n`);
      return EXIT.ok;
    }
    default:
      throw new UsageError('usage: ferry vm add|list|rm …');
  }
}

/** grantCommand: `ferry grant VM HOSTPATH [--as GUESTPATH] [--read-only] [--json]`. */
export async function grantCommand(store: Store, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      as: { type: 'string' },
      'read-only': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'max-file-size': { type: 'string' },
      'max-total-size': { type: 'string' },
      'max-entries': { type: 'string' },
      'max-frame-size': { type: 'string' },
      'max-message-rate': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [vm, hostArg, extra] = positionals;
  if (vm === undefined || hostArg === undefined || extra !== undefined) throw new UsageError('usage: ferry grant VM HOSTPATH [--as GUESTPATH] [--read-only] [--max-file-size SIZE] …');
  let hostPath: string;
  try {
    hostPath = realpathSync(resolve(hostArg));
  } catch (error) {
    throw new UsageError(`${hostArg}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message}`);
  }
  const limits: Record<string, number> = {};
  const size = (flag: 'max-file-size' | 'max-total-size' | 'max-frame-size', key: string) => {
    const text = values[flag];
    if (text === undefined) return;
    const n = parseSize(text);
    if (n === undefined) throw new UsageError(`--${flag} ${JSON.stringify(text)}: give a size such as 500M or 2G`);
    limits[key] = n;
  };
  const count = (flag: 'max-entries' | 'max-message-rate', key: string) => {
    const text = values[flag];
    if (text === undefined) return;
    if (!/^[1-9][0-9]*$/.test(text)) throw new UsageError(`--${flag} ${JSON.stringify(text)}: give a positive whole number`);
    limits[key] = Number(text);
  };
  size('max-file-size', 'maxFileBytes');
  size('max-total-size', 'maxTotalBytes');
  size('max-frame-size', 'maxFrameBytes');
  count('max-entries', 'maxEntries');
  count('max-message-rate', 'maxMessagesPerSecond');
  const bar = !values.json && process.stderr.isTTY ? new Bar() : undefined;
  let result: Record<string, unknown>;
  try {
    result = (await call(store, 'grant', { vm, hostPath, readOnly: values['read-only'], limits, ...(values.as !== undefined ? { as: values.as } : {}) }, (update) => bar?.draw(update))) as Record<string, unknown>;
  } finally {
    bar?.clear();
  }
  if (values.json) printJson(result);
  else printLines([`grant ${String(result.id)}: ${String(result.hostPath)} → ${vm}:${String(result.guestPath)}${result.readOnly === true ? ' (read-only)' : ''}, in sync`]);
  return EXIT.ok;
}

/** revokeCommand: `ferry revoke ID [--keep-guest-copy] [--json]`. */
export async function revokeCommand(store: Store, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { 'keep-guest-copy': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const [id, extra] = positionals;
  if (id === undefined || extra !== undefined || !/^[1-9][0-9]*$/.test(id)) throw new UsageError('usage: ferry revoke GRANT-ID [--keep-guest-copy] (ids: `ferry grants`)');
  const result = (await call(store, 'revoke', { id: Number(id), keepGuestCopy: values['keep-guest-copy'] })) as { id: number; guestCopy: string };
  if (values.json) printJson(result);
  else printLines([`grant ${result.id} revoked: nothing more from the guest is applied; guest copy ${result.guestCopy}`]);
  return EXIT.ok;
}

/** grantsCommand: `ferry grants [--vm NAME] [--all] [--json]`. */
export function grantsCommand(store: Store, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { vm: { type: 'string' }, all: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } }, strict: true });
  if (values.vm !== undefined && new PowerboxStore(store).vm(values.vm) === undefined) throw new UsageError(`--vm ${values.vm}: no VM of that name; see \`ferry vm list\``);
  const grants = new PowerboxStore(store).grants({ ...(values.vm !== undefined ? { vm: values.vm } : {}), includeRevoked: values.all }).map((g) => ({
    id: g.id,
    vm: g.vm,
    hostPath: g.hostPath,
    guestPath: g.guestPath,
    kind: g.kind,
    readOnly: g.readOnly,
    limits: g.limits,
    state: g.state,
    conflicts: g.session === null ? 0 : store.openConflicts(g.session).length,
    createdAt: new Date(g.createdAt).toISOString(),
  }));
  if (values.json) printJson(grants);
  else if (grants.length === 0) process.stdout.write('no grants\n');
  else {
    printLines(
      grants.map((g) => {
        const flags = [g.kind, ...(g.readOnly ? ['read-only'] : []), ...(g.state !== 'active' ? [g.state] : []), ...(g.conflicts > 0 ? [`${g.conflicts} conflict(s)`] : [])];
        return `${g.id}\t${g.vm}\t${g.hostPath} → ${g.guestPath}\t${flags.join(', ')}`;
      }),
    );
  }
  return Promise.resolve(EXIT.ok);
}

/** statusCommand: `ferry status [--json]`, from the running daemon. */
export async function statusCommand(store: Store, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, strict: true });
  const status = (await call(store, 'status', {})) as {
    daemon: { pid: number; since: number };
    vms: { name: string; target: string; connected: boolean; grants: number }[];
    grants: { id: number; vm: string; hostPath: string; guestPath: string; readOnly: boolean; status: string; conflicts: number; lastSyncAt: number | null }[];
    conflicts: number;
  };
  if (values.json) {
    // Times as ISO 8601, as `grants --json` and `log --json` give them.
    printJson({
      ...status,
      daemon: { ...status.daemon, since: new Date(status.daemon.since).toISOString() },
      grants: status.grants.map((g) => ({ ...g, lastSyncAt: g.lastSyncAt === null ? null : new Date(g.lastSyncAt).toISOString() })),
    });
    return EXIT.ok;
  }
  const out = [`daemon ${status.daemon.pid}, up since ${new Date(status.daemon.since).toISOString()}`];
  for (const vm of status.vms) out.push(`VM ${vm.name} (${vm.target}): ${vm.connected ? 'connected' : 'not connected'}, ${vm.grants} grant(s)`);
  for (const g of status.grants) {
    const last = g.lastSyncAt === null ? '' : `, last synced ${new Date(g.lastSyncAt).toISOString()}`;
    out.push(`grant ${g.id} ${g.vm}: ${g.hostPath} → ${g.guestPath}${g.readOnly ? ' (read-only)' : ''}: ${g.status}${last}${g.conflicts > 0 ? `, ${g.conflicts} conflict(s)` : ''}`);
  }
  out.push(status.conflicts === 0 ? 'no conflicts' : `${status.conflicts} conflict(s): see \`ferry conflicts\``);
  printLines(out);
  return EXIT.ok;
}

/** logCommand: `ferry log [--limit N] [--json]`, the audit log, oldest first. */
export function logCommand(store: Store, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { limit: { type: 'string', default: '100' }, json: { type: 'boolean', default: false } }, strict: true });
  const limit = Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError(`--limit ${values.limit}: give a positive number of entries`);
  // Sync events are logged by session: the grant whose session it is, if any, is said too.
  const grantOf = new Map<number, number>();
  for (const grant of new PowerboxStore(store).grants({ includeRevoked: true })) if (grant.session !== null) grantOf.set(grant.session, grant.id);
  const entries = store.recentLog(limit).map((e) => ({ ...e, grant: e.session === null ? null : (grantOf.get(e.session) ?? null), at: new Date(e.at).toISOString() }));
  // Most entries of a grant name it already.
  const named = (e: { grant: number | null; detail: string }) => e.grant === null || e.detail.startsWith(`grant ${e.grant}:`) || e.detail.startsWith(`grant ${e.grant} `);
  if (values.json) printJson(entries);
  else printLines(entries.map((e) => `${e.at}\t${e.kind}\t${e.path ?? ''}\t${named(e) ? '' : `grant ${e.grant ?? ''}: `}${e.detail}`));
  return Promise.resolve(EXIT.ok);
}

/** Bar draws the progress of a grant's first sync on a terminal. */
class Bar {
  private shown = false;

  draw(update: unknown): void {
    const u = update as { scanned?: number; copied?: number; bytes?: number };
    if (typeof u.scanned !== 'number') return;
    process.stderr.write(`\r\x1b[Kfirst sync: ${u.scanned} paths scanned, ${u.copied ?? 0} files copied (${formatBytes(u.bytes ?? 0)})`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
