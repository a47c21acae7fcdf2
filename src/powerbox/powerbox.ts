/**
 * The powerbox: VMs reached over SSH (one connection each, one agent
 * channel per grant), and the grants it keeps in step, each a watched
 * session between a host path and a guest path.
 *
 * Revocation follows DESIGN rule 8: the grant's host side is fenced first
 * (no write from the guest lands after that), its channel is closed (what is
 * in flight is aborted), and only then does `revoke` return; the guest copy
 * is removed then, or when the VM is next reachable.
 */

import { lstatSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { type Side, type UnsupportedReason, describeUnsupported } from '../core/entry.js';
import { ConnectionLost, FerryError, SessionHalt, UsageError } from '../core/errors.js';
import { DEFAULT_LIMITS, type Limits } from '../core/limits.js';
import { isWithin } from '../core/path.js';
import { shellQuote } from '../core/shell.js';
import { LocalEndpoint } from '../fs/local.js';
import { nativeDisk } from '../fs/native.js';
import { onPseudoFileSystem } from '../fs/pseudo.js';
import { hostWatcher } from '../fs/watcher-binding.js';
import type { GrantRecord, PowerboxStore, VmRecord } from '../state/powerbox-store.js';
import type { Store } from '../state/store.js';
import { type Link, type WatchEvent, watchSession } from '../sync/watch.js';
import { hostConfig } from '../transport/ssh-config.js';
import { type Guest, SshLink, describeHostKey, fetchHostKey, generateKeyPair } from '../transport/ssh.js';
import type { Handler } from './control.js';
import { FencedEndpoint } from './fence.js';

const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
/** How long `grant` waits for the first sync before giving up on it. */
const FIRST_SYNC_TIMEOUT_MS = 10 * 60_000;
/** How long `revoke` waits for a grant's session to wind down. */
const REVOKE_WAIT_MS = 15_000;
/** How often guest copies of revoked grants are retried on unreachable VMs. */
const CLEANUP_RETRY_MS = 10_000;
// Waits `ms`, or less if `signal` aborts first.
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How often the same sync error of a path is logged again. */
const ERROR_RELOG_MS = 3_600_000;
/** How many repeated audit log entries (unsupported entries, sync errors) a grant remembers having logged. */
const LOGGED_MAX = 10_000;

/** text reads a string parameter from the control socket ('' when it is anything else). */
function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** within waits for `promise` at most `ms`, rejecting with `timeout` after that; its timer never outlives it. */
async function within<T>(promise: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * parseSshTarget reads `[user@]host[:port]`, host perhaps a Host alias of
 * ~/.ssh/config, resolved now (HostName, User, Port): a VM's record, with
 * its pinned host key, does not follow later edits of that file.
 */
export function parseSshTarget(text: string): { user: string; host: string; port: number } {
  const match = /^(?:([^@\s:/]+)@)?([^@\s:/]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?$/.exec(text);
  if (match === null) throw new UsageError(`--ssh ${JSON.stringify(text)}: expected [user@]host[:port]`);
  const given = match[3] === undefined ? undefined : Number(match[3]);
  if (given !== undefined && (given < 1 || given > 65535)) throw new UsageError(`--ssh ${text}: port ${given} is out of range`);
  const host = (match[2] ?? '').replace(/^\[|\]$/g, '');
  const config = hostConfig(host, match[1], `--ssh ${text}`);
  return { user: match[1] ?? config.user ?? userInfo().username, host: config.hostName ?? host, port: given ?? config.port ?? 22 };
}

/** VmLink is the one SSH connection to a VM, opened on demand and shared by its grants. */
class VmLink {
  private link: SshLink | undefined;
  private connecting: Promise<SshLink> | undefined;

  constructor(
    readonly vm: VmRecord,
    private readonly home: string,
  ) {}

  get connected(): boolean {
    return this.link !== undefined;
  }

  get(): Promise<SshLink> {
    if (this.link !== undefined) return Promise.resolve(this.link);
    this.connecting ??= SshLink.connect(
      { user: this.vm.user, host: this.vm.host, port: this.vm.port, path: '' },
      { home: this.home, key: this.vm.keyFile, acceptNewHostKey: false, pinnedHostKey: Buffer.from(this.vm.hostKey, 'base64') },
    )
      .then((link) => {
        this.link = link;
        void link.closed.then(() => {
          if (this.link === link) this.link = undefined;
        });
        return link;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  /** drop closes the connection (every grant's channel with it). */
  drop(): void {
    this.link?.close();
    this.link = undefined;
  }
}

/** GrantRunner keeps one grant in step: a watched session that restarts after failures until revoked or stopped. */
class GrantRunner {
  private readonly controller = new AbortController();
  private writable = true;
  private readonly guests = new Set<Guest>();
  private firstSynced = false;
  private firstWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private progressListeners = new Set<(event: WatchEvent) => void>();
  // When each entry that every pass meets again (an unsupported entry, a
  // path's sync error) was last written to the audit log.
  private readonly logged = new Map<string, number>();
  // The error that stopped the grant, as last logged (until a pass completes).
  private haltLogged: string | undefined;
  // The limits hit already in the audit log (see SessionOptions.logOnce).
  private readonly limitsLogged = new Set<string>();
  done: Promise<void> = Promise.resolve();
  status = 'starting';
  lastSyncAt: number | null = null;

  constructor(
    readonly grant: GrantRecord,
    private readonly vm: VmLink,
    private readonly store: Store,
    private readonly sessionId: number,
    private readonly say: (line: string) => void,
  ) {}

  start(): void {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    const session = this.store.sessionById(this.sessionId);
    if (session === undefined) throw new Error(`grant ${this.grant.id} has no session`);
    const { hostRoot, guestRoot, only } = grantRoots(this.grant);
    let failures = 0;
    let failedAt = 0;
    while (!this.controller.signal.aborted) {
      try {
        await watchSession({
          store: this.store,
          session,
          signal: this.controller.signal,
          verifyEveryMs: 3_600_000,
          ...(only !== undefined ? { only } : {}),
          ...(this.grant.readOnly ? { readOnly: true } : {}),
          limits: this.grant.limits,
          logOnce: this.limitsLogged,
          onEvent: (event) => this.onEvent(event),
          connect: () => this.connect(hostRoot, guestRoot),
        });
      } catch (error) {
        if (this.controller.signal.aborted) break;
        const message = error instanceof Error ? error.message : String(error);
        this.status = `error: ${message}`;
        this.say(`grant ${this.grant.id}: ${message}`);
        // A grant that stops syncing says so in the audit log, once until it syncs again.
        if (message !== this.haltLogged) {
          this.haltLogged = message;
          this.store.log('grant-halted', this.sessionId, null, `grant ${this.grant.id}: ${message}; retrying`);
        }
        this.failFirst(error instanceof Error ? error : new Error(message));
        // A guest that broke the protocol loses its VM's connection.
        if (error instanceof SessionHalt && !(error instanceof ConnectionLost) && /broke the protocol/.test(message)) this.vm.drop();
        failures = this.lastSyncAt !== null && this.lastSyncAt > failedAt ? 1 : failures + 1;
        failedAt = Date.now();
        await pause(Math.min(60_000, 2_000 * 2 ** Math.min(failures - 1, 5)), this.controller.signal);
      }
    }
    this.status = 'stopped';
  }

  private async connect(hostRoot: string, guestRoot: string): Promise<Link> {
    this.status = 'connecting';
    const link = await this.vm.get();
    const guest = await link.openAgent(
      'beta',
      guestRoot,
      (reason) => this.store.log(reason.startsWith('limit hit') ? 'limit' : 'protocol-violation', this.sessionId, null, `VM ${this.grant.vm}, grant ${this.grant.id}: ${reason}`),
      this.grant.limits,
    );
    if (!this.writable) {
      guest.close();
      throw new SessionHalt(`grant ${this.grant.id} is revoked`);
    }
    this.guests.add(guest);
    const host = new LocalEndpoint('alpha', hostRoot, nativeDisk(), hostWatcher);
    return {
      alpha: new FencedEndpoint(host, () => this.writable, `grant ${this.grant.id} was revoked; nothing more from the guest is applied`),
      beta: guest.endpoint,
      lost: Promise.race([guest.endpoint.ended, link.closed]),
      close: () => {
        guest.close();
        this.guests.delete(guest);
        return Promise.resolve();
      },
    };
  }

  private onEvent(event: WatchEvent): void {
    for (const listener of this.progressListeners) listener(event);
    switch (event.event) {
      case 'connected':
        this.status = 'scanning';
        break;
      case 'synced':
        this.lastSyncAt = Date.now();
        this.haltLogged = undefined;
        this.status = 'watching';
        if (event.scope === 'full' && !this.firstSynced) {
          this.firstSynced = true;
          for (const waiter of this.firstWaiters.splice(0)) waiter.resolve();
        }
        break;
      case 'conflict':
        this.say(`grant ${this.grant.id}: conflict ${event.id} on ${event.path}: ${event.reason}`);
        break;
      case 'unsupported':
        this.logUnsupported(event.path, event.side, event.reason);
        break;
      case 'error':
        // A path that could not be synced (the rest goes on): in the audit
        // log, where the user looks; once an hour, not at every pass. A limit
        // hit has its own entry.
        if (event.path !== undefined && !event.message.startsWith('limit hit:')) this.logRepeated('sync-error', event.path, event.message, ERROR_RELOG_MS);
        break;
      case 'reconnecting':
        this.status = `reconnecting: ${event.message}`;
        // `grant` is waiting: a first sync cut off (a lost VM, a guest that
        // stalls) fails it now rather than after retries nobody sees.
        this.failFirst(new FerryError('EVM', `the first sync of grant ${this.grant.id} was cut off: ${event.message}`));
        break;
      default:
        break;
    }
  }

  // Writes an audit log entry of this grant unless the same was written
  // less than `relogMs` ago.
  private logRepeated(kind: string, path: string, detail: string, relogMs: number): void {
    const key = `${kind}\0${path}\0${detail}`;
    const now = Date.now();
    if (now - (this.logged.get(key) ?? -Infinity) < relogMs) return;
    if (this.logged.size >= LOGGED_MAX) this.logged.clear();
    this.logged.set(key, now);
    this.store.log(kind, this.sessionId, path, `grant ${this.grant.id}: ${detail}`);
  }

  // Logs once per runner an entry ferry leaves alone: a link or a special
  // file the guest made stays in the guest and never reaches the host.
  private logUnsupported(path: string, side: Side, reason: UnsupportedReason): void {
    this.logRepeated('unsupported', path, `${path} is ${describeUnsupported(reason)} on the ${side === 'alpha' ? 'host' : 'guest'}; ferry does not sync it`, Infinity);
  }

  private failFirst(error: Error): void {
    for (const waiter of this.firstWaiters.splice(0)) waiter.reject(error);
  }

  /** firstSync resolves once the first full pass is done; progress events go to `onProgress` meanwhile. */
  async firstSync(onProgress: (event: WatchEvent) => void): Promise<void> {
    if (this.firstSynced) return;
    this.progressListeners.add(onProgress);
    try {
      await new Promise<void>((resolve, reject) => {
        this.firstWaiters.push({ resolve, reject });
        setTimeout(() => reject(new FerryError('ETIMEOUT', `the first sync of grant ${this.grant.id} did not finish within ${FIRST_SYNC_TIMEOUT_MS / 60_000} minutes`)), FIRST_SYNC_TIMEOUT_MS).unref();
      });
    } finally {
      this.progressListeners.delete(onProgress);
    }
  }

  /** stop ends the session after its current batch (daemon shutdown). */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.wound();
  }

  // Waits for the session to end, a bounded time: its writes are crash-safe either way.
  private async wound(): Promise<void> {
    await within(this.done, REVOKE_WAIT_MS, () => new Error('slow')).catch(() => this.say(`grant ${this.grant.id}: its session did not end within ${REVOKE_WAIT_MS / 1000} s`));
  }

  /**
   * revoke fences the host side first (from now on nothing from the guest is
   * applied), then aborts what is in flight by closing the channels, and
   * waits for the session to end.
   */
  async revoke(): Promise<void> {
    this.writable = false;
    this.controller.abort();
    for (const guest of this.guests) guest.close();
    this.failFirst(new FerryError('EREVOKED', `grant ${this.grant.id} was revoked`));
    await this.wound();
  }
}

/** grantRoots: the directories a grant's session syncs, and the one name it is limited to for a file. */
export function grantRoots(grant: GrantRecord): { hostRoot: string; guestRoot: string; only?: string } {
  if (grant.kind === 'dir') return { hostRoot: grant.hostPath, guestRoot: grant.guestPath };
  return { hostRoot: dirname(grant.hostPath), guestRoot: posix.dirname(grant.guestPath), only: basename(grant.hostPath) };
}

/** Powerbox holds the VMs and grants and serves the control socket's methods. */
export class Powerbox {
  private readonly links = new Map<string, VmLink>();
  private readonly runners = new Map<number, GrantRunner>();
  private cleanupTimer: ReturnType<typeof setInterval> | undefined;
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: Store,
    private readonly pb: PowerboxStore,
    private readonly say: (line: string) => void,
  ) {}

  /** start resumes every active grant and the removal of revoked grants' guest copies. */
  start(): void {
    for (const grant of this.pb.grants()) {
      if (grant.state === 'active') this.startRunner(grant);
    }
    this.cleanupTimer = setInterval(() => void this.cleanupAll(), CLEANUP_RETRY_MS);
    void this.cleanupAll();
  }

  async stop(): Promise<void> {
    clearInterval(this.cleanupTimer);
    await Promise.all([...this.runners.values()].map((runner) => runner.stop()));
    for (const link of this.links.values()) link.drop();
  }

  private link(vm: VmRecord): VmLink {
    let link = this.links.get(vm.name);
    if (link === undefined) {
      link = new VmLink(vm, this.store.home);
      this.links.set(vm.name, link);
    }
    return link;
  }

  private startRunner(grant: GrantRecord): GrantRunner {
    const vm = this.pb.vm(grant.vm);
    if (vm === undefined) throw new FerryError('ENOVM', `grant ${grant.id} names VM ${grant.vm}, which is gone`);
    let sessionId = grant.session;
    if (sessionId === null) {
      const { hostRoot, guestRoot } = grantRoots(grant);
      const session = this.store.session(hostRoot, `vm:${grant.vm}#${grant.id}:${guestRoot}`, true);
      if (session === undefined) throw new Error('session was not created');
      sessionId = session.id;
      this.pb.setGrantSession(grant.id, sessionId);
    }
    const runner = new GrantRunner(grant, this.link(vm), this.store, sessionId, this.say);
    this.runners.set(grant.id, runner);
    runner.start();
    return runner;
  }

  handlers(): Record<string, Handler> {
    return {
      'vm.add': (params) => this.addVm(params),
      'vm.rm': (params) => this.removeVm(params),
      grant: (params, progress) => this.addGrant(params, progress),
      revoke: (params) => this.revoke(params),
      status: () => Promise.resolve(this.status()),
    };
  }

  private async addVm(params: Record<string, unknown>): Promise<unknown> {
    const name = text(params.name);
    if (!VM_NAME.test(name)) throw new UsageError(`VM name ${JSON.stringify(name)}: use up to 32 letters, digits, - and _`);
    if (this.pb.vm(name) !== undefined) throw new UsageError(`a VM named ${name} exists already; \`ferry vm rm ${name}\` first, or pick another name`);
    const target = parseSshTarget(text(params.ssh));
    const hostKey = await fetchHostKey(target.host, target.port);
    let keyFile = typeof params.key === 'string' ? params.key : undefined;
    let publicKey: string | undefined;
    if (keyFile === undefined) {
      const pair = generateKeyPair(`ferry-vm-${name}`);
      const dir = join(this.store.home, 'keys');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      keyFile = join(dir, name);
      writeFileSync(keyFile, pair.private, { mode: 0o600 });
      writeFileSync(`${keyFile}.pub`, `${pair.public}\n`, { mode: 0o644 });
      publicKey = pair.public.trim();
    } else {
      try {
        lstatSync(keyFile);
      } catch (error) {
        throw new UsageError(`--key ${keyFile}: ${(error as Error).message}`);
      }
    }
    // With a key of the user's, check now that it logs in, and learn the guest's home.
    let guestHome = '';
    if (publicKey === undefined) {
      const link = await SshLink.connect({ ...target, path: '' }, { home: this.store.home, key: keyFile, acceptNewHostKey: false, pinnedHostKey: hostKey });
      try {
        guestHome = (await link.exec('printf %s "$HOME"')).stdout;
      } finally {
        link.close();
      }
    }
    const vm = this.pb.addVm({ name, backend: 'ssh', ...target, keyFile, hostKey: hostKey.toString('base64'), guestHome });
    this.store.log('vm-added', null, null, `VM ${name}: ${target.user}@${target.host}:${target.port}, host key ${describeHostKey(hostKey)} pinned`);
    this.say(`VM ${name} added (${describeHostKey(hostKey)})`);
    return { name: vm.name, user: vm.user, host: vm.host, port: vm.port, hostKey: describeHostKey(hostKey), keyFile, ...(publicKey !== undefined ? { publicKey } : {}) };
  }

  private async removeVm(params: Record<string, unknown>): Promise<unknown> {
    const name = text(params.name);
    const vm = this.pb.vm(name);
    if (vm === undefined) throw new UsageError(`no VM named ${JSON.stringify(name)}; see \`ferry vm list\``);
    const revoked = [];
    for (const grant of this.pb.grants({ vm: name })) {
      if (grant.state === 'active') revoked.push(await this.revoke({ id: grant.id }));
    }
    this.links.get(name)?.drop();
    this.links.delete(name);
    // A guest copy not removed by now stays in the VM: ferry can no longer reach it.
    for (const grant of this.pb.grants({ vm: name })) {
      if (grant.state !== 'cleanup') continue;
      this.pb.setGrantState(grant.id, 'revoked');
      this.store.log('guest-copy-left', grant.session, grant.hostPath, `grant ${grant.id}: ${grant.guestPath} stays in VM ${name}, which was removed before it could be deleted`);
    }
    this.pb.removeVm(name);
    if (vm.keyFile === join(this.store.home, 'keys', name)) {
      rmSync(vm.keyFile, { force: true });
      rmSync(`${vm.keyFile}.pub`, { force: true });
    }
    this.store.log('vm-removed', null, null, `VM ${name} removed; ${revoked.length} grant(s) revoked first`);
    return { name, revoked };
  }

  private async addGrant(params: Record<string, unknown>, progress: (update: unknown) => void): Promise<unknown> {
    const vmName = text(params.vm);
    const vm = this.pb.vm(vmName);
    if (vm === undefined) throw new UsageError(`no VM named ${JSON.stringify(vmName)}; add it with \`ferry vm add ${vmName} --ssh user@host\``);
    const hostPath = text(params.hostPath);
    let st;
    try {
      st = lstatSync(hostPath);
    } catch (error) {
      throw new UsageError(`${hostPath}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message}`);
    }
    if (!st.isFile() && !st.isDirectory()) throw new UsageError(`${hostPath}: only a regular file or a directory can be granted (this is ${st.isSymbolicLink() ? 'a symlink' : 'a special file'})`);
    const pseudo = onPseudoFileSystem(hostPath);
    if (pseudo !== undefined) throw new UsageError(`${hostPath}: ${pseudo}, not files to grant (a guest writing there would change the host)`);
    // ferry's own state (the database, the VMs' keys, known_hosts) is never
    // within a guest's reach: a guest could rewrite the daemon's grants or
    // plant host keys. Compared by real path, so a link in either makes no difference.
    const real = realpathSync(hostPath);
    const state = realpathSync(this.store.home);
    if (isWithinAbs(state, real)) throw new UsageError(`${hostPath} holds ferry's own state (${this.store.home}: its database, the VMs' keys, known_hosts), which no guest may reach; grant a directory that does not contain it`);
    if (isWithinAbs(real, state)) throw new UsageError(`${hostPath} is part of ferry's own state (${this.store.home}), which no guest may reach`);
    const kind = st.isDirectory() ? 'dir' : 'file';
    let guestPath = typeof params.as === 'string' && params.as !== '' ? params.as : `Granted/${basename(hostPath)}`;
    if (guestPath.startsWith('~/')) guestPath = guestPath.slice(2);
    guestPath = posix.normalize(guestPath).replace(/\/+$/, '');
    if (guestPath === '' || guestPath === '.' || guestPath === '/' || guestPath.startsWith('~') || guestPath.split('/').includes('..')) throw new UsageError(`--as ${JSON.stringify(params.as)}: give a path for the guest copy, such as ~/Granted/name`);
    if (kind === 'file' && posix.basename(guestPath) !== basename(hostPath)) {
      throw new UsageError(`a file grant keeps its name: --as must end in /${basename(hostPath)} (it says where the file goes)`);
    }
    const link = this.link(vm);
    const ssh = await link.get().catch((error: unknown) => {
      throw new FerryError('EVM', `VM ${vmName} is unreachable: ${(error as Error).message}`);
    });
    let home = vm.guestHome;
    if (home === '') home = (await ssh.exec('printf %s "$HOME"')).stdout;
    const absGuest = (p: string) => (p.startsWith('/') ? p : posix.join(home, p));
    const guestOverlaps = (other: GrantRecord) => overlap(absGuest(guestPath), absGuest(other.guestPath));
    for (const other of this.pb.grants({ vm: vmName })) {
      // A revoked grant whose guest copy is still to go holds only its guest path, which its removal would take.
      if (other.state === 'cleanup') {
        if (guestOverlaps(other)) {
          throw new UsageError(
            `guest path ${guestPath} overlaps ${other.guestPath} in VM ${vmName}, the copy of revoked grant ${other.id} that ferry has not removed yet; choose another with --as, or keep that copy (\`ferry revoke ${other.id} --keep-guest-copy\`) or let ferry remove it first`,
          );
        }
        continue;
      }
      if (overlap(hostPath, other.hostPath)) {
        throw new UsageError(`${hostPath} overlaps grant ${other.id} (${other.hostPath}) of VM ${vmName}; revoke that one first`);
      }
      if (guestOverlaps(other)) {
        throw new UsageError(`guest path ${guestPath} overlaps grant ${other.id} (${other.guestPath}) in VM ${vmName}; choose another with --as`);
      }
    }
    // The guest copy starts from nothing: an existing directory there would be merged into the host's.
    const q = shellQuote(guestPath);
    const check =
      kind === 'dir'
        ? `mkdir -p -- ${q} || exit 4; [ -z "$(ls -A -- ${q})" ] || { echo not-empty; exit 3; }`
        : `mkdir -p -- ${shellQuote(posix.dirname(guestPath))} || exit 4; if [ -e ${q} ] || [ -L ${q} ]; then echo exists; exit 3; fi`;
    const prepared = await ssh.exec(`sh -c ${shellQuote(check)}`);
    if (prepared.code === 3) throw new UsageError(`${guestPath} already exists in VM ${vmName} and is not empty; choose another with --as`);
    if (prepared.code !== 0) throw new FerryError('EVM', `unable to create ${guestPath} in VM ${vmName}: ${prepared.stderr.trim() || `exit ${String(prepared.code)}`}`);

    const grant = this.pb.addGrant({ vm: vmName, hostPath, guestPath, kind, readOnly: params.readOnly === true, limits: grantLimits(params.limits) });
    this.store.log('grant', null, hostPath, `grant ${grant.id}: ${kind} ${hostPath} into VM ${vmName} as ${guestPath}${grant.readOnly ? ', read-only' : ''}`);
    const runner = this.startRunner(grant);
    try {
      await runner.firstSync((event) => {
        if (event.event === 'progress') progress(event);
      });
    } catch (error) {
      await runner.revoke();
      this.runners.delete(grant.id);
      this.pb.setGrantState(grant.id, 'cleanup');
      this.store.log('grant-failed', grant.session, hostPath, `grant ${grant.id} failed its first sync: ${(error as Error).message}`);
      void this.cleanupAll();
      throw error;
    }
    this.say(`grant ${grant.id}: ${hostPath} → ${vmName}:${guestPath}${grant.readOnly ? ' (read-only)' : ''}`);
    return { ...this.describeGrant(this.pb.grant(grant.id) ?? grant) };
  }

  private async revoke(params: Record<string, unknown>): Promise<unknown> {
    const id = Number(params.id);
    const grant = Number.isSafeInteger(id) ? this.pb.grant(id) : undefined;
    if (grant === undefined || grant.state === 'revoked') {
      throw new UsageError(`no active grant ${String(params.id)}; see \`ferry grants\``);
    }
    const keep = params.keepGuestCopy === true;
    if (grant.state === 'cleanup') {
      // Revoked already, its guest copy still to go: keep it after all, or try again now.
      // A removal under way finishes first, and is what is reported if it removed the copy.
      const underWay = this.removing.get(id);
      if (keep && underWay !== undefined) {
        const outcome = await underWay;
        if (this.pb.grant(id)?.state !== 'cleanup') return { id, guestCopy: outcome };
      }
      if (keep) {
        this.pb.setGrantState(id, 'revoked');
        this.store.log('guest-copy-left', grant.session, grant.hostPath, `grant ${id}: ${grant.guestPath} stays in VM ${grant.vm}, as asked`);
        return { id, guestCopy: 'kept' };
      }
      return { id, guestCopy: await this.removeGuestCopy(grant) };
    }
    const runner = this.runners.get(id);
    this.runners.delete(id);
    if (runner !== undefined) await runner.revoke();
    this.pb.setGrantState(id, keep ? 'revoked' : 'cleanup');
    this.store.log('revoke', grant.session, grant.hostPath, `grant ${id} revoked${keep ? '; the guest copy is kept' : ''}`);
    this.say(`grant ${id} revoked`);
    if (keep) return { id, guestCopy: 'kept' };
    return { id, guestCopy: await this.removeGuestCopy(grant) };
  }

  // Removes the guest copy of a revoked grant, and says what became of it:
  // removed, left, or why the removal is pending (it is retried). A file
  // grant whose file the guest turned into a directory leaves that
  // directory: it is the guest's, not the grant's.
  private removeGuestCopy(grant: GrantRecord): Promise<string> {
    // One removal per grant at a time: the retry timer and revoke may both ask.
    let removal = this.removing.get(grant.id);
    if (removal === undefined) {
      removal = this.removeGuestCopyNow(grant).finally(() => this.removing.delete(grant.id));
      this.removing.set(grant.id, removal);
    }
    return removal;
  }

  private async removeGuestCopyNow(grant: GrantRecord): Promise<string> {
    const vm = this.pb.vm(grant.vm);
    const retried = `ferry retries every ${CLEANUP_RETRY_MS / 1000} s (\`ferry revoke ${grant.id} --keep-guest-copy\` gives up on it)`;
    if (vm === undefined) return `removal pending: VM ${grant.vm} is gone`;
    const pending = (why: string) => {
      this.say(`grant ${grant.id}: the guest copy is not removed yet: ${why}`);
      return `removal pending: ${why}`;
    };
    let ssh: SshLink;
    try {
      ssh = await within(this.link(vm).get(), 10_000, () => new Error('timed out'));
    } catch (error) {
      return pending(`VM ${grant.vm} is unreachable (${(error as Error).message}); the copy is removed when the VM is next reachable`);
    }
    // Kept after all (revoke --keep-guest-copy) while this waited for the VM.
    if (this.pb.grant(grant.id)?.state !== 'cleanup') return 'kept';
    let left = false;
    try {
      const q = shellQuote(grant.guestPath);
      // A guest still writing into the directory can beat one rm -rf: a second one follows.
      const command = grant.kind === 'dir' ? `rm -rf -- ${q} || rm -rf -- ${q}` : `if [ -d ${q} ] && [ ! -L ${q} ]; then echo directory; else rm -f -- ${q}; fi`;
      const result = await ssh.exec(`sh -c ${shellQuote(command)}`);
      if (result.code !== 0) throw new Error(result.stderr.trim().split('\n').at(-1) || `exit ${String(result.code)}`);
      left = result.stdout.trim() === 'directory';
    } catch (error) {
      return pending(`${grant.guestPath} could not be removed in VM ${grant.vm} (${(error as Error).message}); ${retried}`);
    }
    this.pb.setGrantState(grant.id, 'revoked');
    if (left) {
      const said = `left in place: ${grant.guestPath} is a directory the guest made in place of the granted file`;
      this.store.log('guest-copy-left', grant.session, grant.hostPath, `grant ${grant.id}: in VM ${grant.vm}, ${said}`);
      return said;
    }
    this.store.log('guest-copy-removed', grant.session, grant.hostPath, `grant ${grant.id}: removed ${grant.guestPath} from VM ${grant.vm}`);
    return 'removed';
  }

  private cleaning = false;
  /** Guest copies being removed, by grant. */
  private readonly removing = new Map<number, Promise<string>>();

  private async cleanupAll(): Promise<void> {
    if (this.cleaning) return;
    this.cleaning = true;
    try {
      for (const grant of this.pb.grants()) if (grant.state === 'cleanup') await this.removeGuestCopy(grant);
    } finally {
      this.cleaning = false;
    }
  }

  private describeGrant(grant: GrantRecord): Record<string, unknown> {
    const runner = this.runners.get(grant.id);
    return {
      id: grant.id,
      vm: grant.vm,
      hostPath: grant.hostPath,
      guestPath: grant.guestPath,
      kind: grant.kind,
      readOnly: grant.readOnly,
      limits: grant.limits,
      state: grant.state,
      status: runner?.status ?? (grant.state === 'cleanup' ? 'revoked, guest copy still to remove' : grant.state),
      lastSyncAt: runner?.lastSyncAt ?? null,
      conflicts: grant.session === null ? 0 : this.store.openConflicts(grant.session).length,
    };
  }

  private status(): unknown {
    return {
      daemon: { pid: process.pid, since: this.startedAt },
      vms: this.pb.vms().map((vm) => ({
        name: vm.name,
        target: `${vm.user}@${vm.host}:${vm.port}`,
        connected: this.links.get(vm.name)?.connected ?? false,
        grants: this.pb.grants({ vm: vm.name }).filter((g) => g.state === 'active').length,
      })),
      grants: this.pb.grants().map((g) => this.describeGrant(g)),
      conflicts: this.store.openConflicts().length,
    };
  }
}

// The limits asked for (each a positive integer, the frame at most the protocol's), over the defaults' absence.
function grantLimits(value: unknown): Partial<Limits> {
  const out: Record<string, number> = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [key, n] of Object.entries(value as Record<string, unknown>)) {
    if (!(key in DEFAULT_LIMITS)) throw new UsageError(`unknown limit ${key}`);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`limit ${key} must be a positive integer`);
    if (key === 'maxFrameBytes' && n > DEFAULT_LIMITS.maxFrameBytes) throw new UsageError(`the frame limit is at most ${DEFAULT_LIMITS.maxFrameBytes} bytes`);
    out[key] = n;
  }
  return out;
}

function isWithinAbs(path: string, scope: string): boolean {
  const rel = (p: string) => p.replace(/^\/+/, '').replace(/\/+$/, '');
  return isWithin(rel(path), rel(scope));
}

// Whether either of two absolute paths lies within the other.
function overlap(a: string, b: string): boolean {
  return isWithinAbs(a, b) || isWithinAbs(b, a);
}
