/**
 * The SSH transport: one ssh2 connection to a guest, its host key checked
 * against known_hosts (or the key pinned for a powerbox VM), the bundled
 * agent installed there when the guest lacks that exact build (by content
 * hash), and started over an exec channel that becomes a RemoteEndpoint;
 * one connection may carry several agents, one channel each.
 */

import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnyAuthMethod, Client as Ssh2Client, ClientChannel, ConnectConfig, ParsedKey, utils } from 'ssh2';
import type { Side } from '../core/entry.js';
import { FerryError, UsageError } from '../core/errors.js';
import { shimsPath } from '../fs/native.js';
import { bindingPath, hostPlatform, type Platform } from '../fs/watcher-binding.js';
import { type Dialled, connectTo } from './dial.js';
import { type SshTarget, targetLabel } from './target.js';
import { type ChannelLimits, HANDSHAKE_MS, RemoteEndpoint } from './remote.js';

// ssh2's client and key parser, loaded without the rest of its index: the
// index also loads its HTTP agents (node:http, node:https, node:tls), its
// server and its key generator, none of which ferry uses, and loading them
// was some 6 ms of every connection's start.
const require = createRequire(import.meta.url);
const Client = require('ssh2/lib/client.js') as typeof Ssh2Client;
type Client = Ssh2Client;
const { parseKey } = require('ssh2/lib/protocol/keyParser.js') as { parseKey: typeof utils.parseKey };

/** SshOptions are the user's choices for one connection. */
export interface SshOptions {
  /** A private key file (--key). */
  readonly key?: string;
  /** Trust and remember a host key seen for the first time. */
  readonly acceptNewHostKey: boolean;
  /** FERRY_HOME: its known_hosts is read and extended. */
  readonly home: string;
  /** A TCP connection opened ahead for this target (`ferry sync`), used by the first handshake to it. */
  readonly dialled?: Dialled;
  /** The one host key to accept (a powerbox VM's, pinned when it was added); known_hosts is then not used. */
  readonly pinnedHostKey?: Buffer;
}

/** fingerprint formats an SSH public key blob as OpenSSH does (SHA256:…). */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function matchesHost(field: string, pattern: string): boolean {
  for (const name of field.split(',')) {
    if (name.startsWith('|1|')) {
      const [, , salt, hash] = name.split('|');
      if (salt === undefined || hash === undefined) continue;
      const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(pattern).digest('base64');
      if (mac === hash) return true;
    } else if (name === pattern) return true;
  }
  return false;
}

/** HostKeyVerdict says whether a host key is known, unknown, or different from the one known. */
export type HostKeyVerdict = 'known' | 'unknown' | 'changed' | 'revoked';

/** checkHostKey looks a host key up in known_hosts files, under `pattern` (host, or [host]:port off port 22). */
export function checkHostKey(files: readonly string[], pattern: string, key: Buffer): HostKeyVerdict {
  const type = keyType(key);
  const blob = key.toString('base64');
  let sawOther = false;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const fields = line.split(/\s+/);
      let marker: string | undefined;
      if (fields[0]?.startsWith('@') === true) marker = fields.shift();
      const [hosts, ktype, kblob] = fields;
      if (hosts === undefined || ktype === undefined || kblob === undefined || !matchesHost(hosts, pattern)) continue;
      if (marker === '@revoked') {
        if (kblob === blob) return 'revoked';
        continue;
      }
      if (marker !== undefined) continue; // @cert-authority: not used by ferry
      if (ktype === type && kblob === blob) return 'known';
      if (ktype === type) sawOther = true;
    }
  }
  return sawOther ? 'changed' : 'unknown';
}

const AGENT_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'agent.mjs');

/** agentBundle returns the bundled agent and its content hash. */
export function agentBundle(): { code: Buffer; hash: string } {
  let code: Buffer;
  try {
    code = readFileSync(AGENT_PATH);
  } catch (error) {
    throw new FerryError('EAGENT', `the guest agent is not built (${AGENT_PATH}); run \`npm run build\` in the ferry checkout`, { cause: error });
  }
  return { code, hash: createHash('sha256').update(code).digest('hex').slice(0, 16) };
}

/** The ways one connection authenticates, in the order tried, and what to tell the user when none works. */
interface AuthPlan {
  readonly methods: AnyAuthMethod[];
  /** failed notes a way that failed before its server said no (an ssh-agent not reached, a key that could not sign); ssh2 goes on to the next. */
  failed(reason: string): void;
  /** '. Tried: ... Not tried: ... (why).', for the end of the failure's message. */
  describe(): string;
}

// authPlan lists how to authenticate, much as OpenSSH does: the --key
// given, then ssh-agent and the key files ~/.ssh/config gives for the host;
// without --key those key files and then ssh-agent, or with no such files
// ssh-agent and then the default ones (~/.ssh/id_ed25519, id_ecdsa,
// id_rsa). A key file protected by a
// passphrase is not tried (ferry never prompts): ssh-agent may hold it, and
// the message says so if nothing else works. A powerbox VM uses only its key.
function authPlan(target: SshTarget, options: SshOptions): AuthPlan {
  const username = target.user;
  const methods: AnyAuthMethod[] = [];
  const tried: string[] = [];
  const skipped: string[] = [];
  const failures: string[] = [];
  const sock = process.env.SSH_AUTH_SOCK;
  const agent = options.pinnedHostKey === undefined && sock !== undefined && sock !== '' ? sock : undefined;
  const addAgent = () => {
    if (agent === undefined) return;
    methods.push({ type: 'agent', username, agent });
    tried.push('ssh-agent');
  };
  const addKey = (file: string, given: boolean) => {
    let key: ReturnType<typeof readPrivateKey>;
    try {
      key = readPrivateKey(file);
    } catch (error) {
      if (given) throw new UsageError(`--key ${file}: ${(error as Error).message}`);
      skipped.push(`${file} (${(error as Error).message})`);
      return;
    }
    if (key === 'passphrase') {
      if (given && options.pinnedHostKey !== undefined) {
        throw new UsageError(`--key ${file} is protected by a passphrase; a VM's key must have none, as the powerbox connects unattended and without ssh-agent: leave out --key and ferry makes one`);
      }
      if (given && agent === undefined) {
        throw new UsageError(`--key ${file} is protected by a passphrase, and ferry does not ask for passphrases: load the key into ssh-agent (\`ssh-add ${file}\`) and rerun, or give a key without one`);
      }
      skipped.push(`${file} (protected by a passphrase, which ferry does not ask for: load it into ssh-agent with \`ssh-add ${file}\`)`);
      return;
    }
    methods.push({ type: 'publickey', username, key });
    tried.push(file);
  };
  if (options.key !== undefined) {
    addKey(options.key, true);
    addAgent();
    for (const file of options.pinnedHostKey === undefined ? (target.identityFiles ?? []) : []) addKey(file, false);
  } else if (target.identityFiles !== undefined) {
    // The host's own keys first: ssh-agent may hold many, and sshd counts each try.
    for (const file of target.identityFiles) addKey(file, false);
    addAgent();
  } else {
    addAgent();
    const dir = join(homedir(), '.ssh');
    for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) if (existsSync(join(dir, name))) addKey(join(dir, name), false);
  }
  return {
    methods,
    failed: (reason) => {
      if (!failures.includes(reason)) failures.push(reason);
    },
    describe: () => {
      if (tried.length === 0 && skipped.length === 0) return `. There was nothing to try: no ssh-agent, no key file in ${join(homedir(), '.ssh')}.`;
      const said = [tried.length > 0 ? `Tried: ${tried.join(', ')}` : '', failures.length > 0 ? `Errors: ${failures.join('; ')}` : '', skipped.length > 0 ? `Not tried: ${skipped.join('; ')}` : ''];
      return `. ${said.filter((part) => part !== '').join('. ')}.`;
    },
  };
}

// Reads an SSH private key file; 'passphrase' when it is protected by one.
// Throws, with a reason fit for a message, when the file is not a private key.
function readPrivateKey(file: string): ParsedKey | 'passphrase' {
  const data = readFileSync(file);
  const parsed = parseKey(data) as ParsedKey | ParsedKey[] | Error;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error) {
    if (/passphrase/i.test(key.message)) return 'passphrase';
    throw new Error(`not a private key ferry can use (${key.message})`);
  }
  if (key === undefined || !key.isPrivateKey()) throw new Error('not a private key (a public key, perhaps: give the file without .pub)');
  return key;
}

interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function exec(client: Client, command: string, input?: Buffer): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error !== undefined) {
        reject(error);
        return;
      }
      let stdout = '';
      let stderr = '';
      channel.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      channel.on('close', (code: number | null) => resolve({ code, stdout, stderr }));
      if (input !== undefined) channel.end(input);
      else channel.end();
    });
  });
}

/** Guest is a connected guest with an agent serving one root. */
export interface Guest {
  readonly endpoint: RemoteEndpoint;
  /** Ends the agent (and, from connectGuest, the connection). */
  close(): void;
}

/** connectGuest connects, checks the host key, installs the agent if needed and starts it for target.path. */
export async function connectGuest(target: SshTarget, side: Side, options: SshOptions, onViolation?: (reason: string) => void): Promise<Guest & { readonly peer: string }> {
  const link = await SshLink.connect(target, options);
  try {
    const guest = await link.openAgent(side, target.path, onViolation);
    return {
      endpoint: guest.endpoint,
      peer: link.peer,
      close: () => {
        guest.close();
        link.close();
      },
    };
  } catch (error) {
    link.close();
    throw error;
  }
}

/** fetchHostKey connects only far enough to read a server's host key (to pin it). */
export async function fetchHostKey(host: string, port: number): Promise<Buffer> {
  let seen: Buffer | undefined;
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    const socket = new Socket();
    socket.once('error', (error: NodeJS.ErrnoException) => reject(new FerryError('ECONNECT', `cannot connect to ${host} port ${port}: ${error.code === 'ECONNREFUSED' ? 'connection refused' : error.message}`)));
    socket.connect(port, host);
    client.once('error', () => (seen !== undefined ? resolve() : reject(new FerryError('ECONNECT', `${host} port ${port} did not show an SSH host key`))));
    client.once('ready', () => resolve());
    client.connect({
      sock: socket,
      username: 'ferry-host-key-probe',
      readyTimeout: 20_000,
      hostVerifier: (key: Buffer) => {
        seen = key;
        return false;
      },
    });
  }).finally(() => client.end());
  if (seen === undefined) throw new FerryError('ECONNECT', `${host} port ${port} did not show an SSH host key`);
  return seen;
}

/** An SSH wire string: its length (u32, big-endian), then its bytes. */
function sshString(bytes: Buffer | string): Buffer {
  const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return Buffer.concat([length, data]);
}

/**
 * generateKeyPair makes an ed25519 key pair in OpenSSH formats: the private
 * key unencrypted ("openssh-key-v1", as `ssh-keygen -N ''` writes it) and
 * the public key's authorized_keys line. Encoded here from node:crypto's
 * raw key: ssh2's own generator drops the leading zero bytes of a public
 * key that has some (one key in 256), and nothing reads that key back.
 */
export function generateKeyPair(comment: string): { private: string; public: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  if (seed.length !== 32 || pub.length !== 32) throw new Error('node:crypto gave an ed25519 key of an unexpected size');
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3, ... to the cipher's block size (8 for "none").
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  secret = Buffer.concat([secret, padding]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), sshString('none'), sshString('none'), sshString(''), Buffer.from([0, 0, 0, 1]), sshString(publicBlob), sshString(secret)]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    private: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    public: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
  };
}

/** describeHostKey returns "type SHA256:…" for people. */
export function describeHostKey(key: Buffer): string {
  return `${keyType(key)} ${fingerprint(key)}`;
}

/**
 * SshLink is one SSH connection to a guest, carrying one exec channel per
 * agent it starts (one per grant in the powerbox).
 */
export class SshLink {
  private agentCommand: Promise<string> | undefined;
  private onClosed: (error: Error) => void = () => undefined;
  /** Settles when the connection ends, with the reason. */
  readonly closed = new Promise<Error>((resolve) => (this.onClosed = resolve));

  private constructor(
    private readonly client: Client,
    readonly label: string,
    /** The server the connection reached: its address and port (see peerOf) and its host key's fingerprint. */
    readonly peer: string,
  ) {
    client.on('close', () => this.onClosed(new FerryError('ECONNECT', `the connection to ${label} closed`)));
    client.on('error', (error: Error) => this.onClosed(new FerryError('ECONNECT', `the connection to ${label} failed: ${error.message}`)));
  }

  /** connect opens the connection and checks the host key (the pinned one, or known_hosts). */
  static async connect(target: SshTarget, options: SshOptions): Promise<SshLink> {
    const { client, peer } = await openClient(target, options);
    return new SshLink(client, targetLabel({ ...target, path: '/' }).slice(0, -1), peer);
  }

  /**
   * openAgent starts an agent serving `root` over a new channel, installing
   * it first if needed. The agent is started straight away when the guest
   * has this build installed already (the usual case): the probe of the
   * guest's Node.js and platform, a second program start in the guest, is
   * only needed when it has not.
   */
  async openAgent(side: Side, root: string, onViolation?: (reason: string) => void, limits?: ChannelLimits): Promise<Guest> {
    const label = `${this.label}${root.startsWith('/') ? '' : '/~/'}${root}`;
    // Every channel tries the quick start: the guest's copy of the agent may
    // have gone since the last one, and then it says so instead of failing.
    const quick = quickAgentCommand();
    if (quick !== undefined) {
      const guest = await this.launch(quick, side, root, label, onViolation, limits, true);
      if (guest !== undefined) return guest;
      this.agentCommand = undefined;
    }
    this.agentCommand ??= agentCommand(this.client, this.label);
    let command;
    try {
      command = await this.agentCommand;
    } catch (error) {
      this.agentCommand = undefined;
      throw error;
    }
    return (await this.launch(command, side, root, label, onViolation, limits, false)) as Guest;
  }

  // Runs an agent command on a new channel and shakes hands with the agent.
  // With `quick`, a guest that answers AGENT_MISSING (or nothing) instead of
  // the agent's magic bytes gives undefined: the caller probes and installs.
  private async launch(
    command: string,
    side: Side,
    root: string,
    label: string,
    onViolation: ((reason: string) => void) | undefined,
    limits: ChannelLimits | undefined,
    quick: boolean,
  ): Promise<Guest | undefined> {
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      this.client.exec(command, (error, ch) => (error !== undefined ? reject(new FerryError('EAGENT', `unable to start the ferry agent in ${label}: ${error.message}`)) : resolve(ch))),
    );
    let stderr = '';
    channel.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-2000);
    });
    let first: Buffer | undefined;
    if (quick) {
      const heard = await firstBytes(channel, AGENT_MISSING.length);
      if (heard === 'silent') {
        channel.close();
        throw new FerryError('EAGENT', `the ferry agent in ${label} did not start: it did not answer within ${HANDSHAKE_MS / 1000} s${stderr === '' ? '' : ` (it said: ${stderr.trim()})`}`);
      }
      if (heard.length === 0 || heard.subarray(0, AGENT_MISSING.length).equals(AGENT_MISSING)) {
        channel.close();
        return undefined;
      }
      first = heard;
    }
    const endpoint = new RemoteEndpoint(side, label, channel, root, onViolation, limits, first);
    channel.resume();
    const close = () => endpoint.abort();
    try {
      await endpoint.start();
    } catch (error) {
      close();
      // The next attempt probes the guest again: its copy of the agent may be gone.
      this.agentCommand = undefined;
      throw new FerryError('EAGENT', `the ferry agent in ${label} did not start: ${(error as Error).message}${stderr === '' ? '' : ` (it said: ${stderr.trim()})`}`);
    }
    return { endpoint, close };
  }

  /** exec runs a command in the guest and returns its status and output. */
  exec(command: string): Promise<ExecResult> {
    return exec(this.client, command);
  }

  close(): void {
    this.client.end();
  }
}

async function openClient(target: SshTarget, options: SshOptions): Promise<{ client: Client; peer: string }> {
  // ~/.ssh/config's UserKnownHostsFile stands in for ~/.ssh/known_hosts, as for ssh.
  const knownFiles = [...(target.knownHostsFiles ?? [join(homedir(), '.ssh', 'known_hosts')]), join(options.home, 'known_hosts')];
  // The machine's address (~/.ssh/config's HostName for an alias): known_hosts is read for it, as ssh does.
  const address = target.hostName ?? target.host;
  // The name its key is looked up and recorded under: ~/.ssh/config's HostKeyAlias (as is, no port), else the address.
  const keyName = target.hostKeyAlias ?? hostPattern(address, target.port);
  const named = target.hostName === undefined ? target.host : `${target.host} (${target.hostName})`;
  let refusal: string | undefined;
  let hostKey = '';
  const config: ConnectConfig = {
    host: address,
    port: target.port,
    username: target.user,
    readyTimeout: 20_000,
    keepaliveInterval: 5_000,
    keepaliveCountMax: 3,
    algorithms: { cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes256-ctr', 'chacha20-poly1305@openssh.com'] },
    hostVerifier: (key: Buffer) => {
      const fp = fingerprint(key);
      hostKey = fp;
      if (options.pinnedHostKey !== undefined) {
        if (key.equals(options.pinnedHostKey)) return true;
        refusal = `the host key of ${keyName} (${keyType(key)} ${fp}) is NOT the one pinned when the VM was added (${describeHostKey(options.pinnedHostKey)}); ferry refuses to connect`;
        return false;
      }
      // Under the address, as ssh records it; else under the name given
      // (ferry recorded aliases so before it read ~/.ssh/config).
      let verdict = checkHostKey(knownFiles, keyName, key);
      if (verdict === 'unknown' && target.hostKeyAlias === undefined && address !== target.host) verdict = checkHostKey(knownFiles, hostPattern(target.host, target.port), key);
      if (verdict === 'known') return true;
      if (verdict === 'changed' || verdict === 'revoked') {
        refusal = `the host key of ${keyName} (${keyType(key)} ${fp}) is ${verdict === 'changed' ? 'NOT the one recorded in known_hosts: the machine was reinstalled, or someone is in the middle' : 'revoked'}; ferry refuses to connect`;
        return false;
      }
      if (!options.acceptNewHostKey) {
        refusal = `the host key of ${keyName} is not known (${keyType(key)} ${fp}); ferry looked in ${knownFiles.join(' and ')}; check it, then rerun with --accept-new-host-key to trust it (it is saved in ${join(options.home, 'known_hosts')})`;
        return false;
      }
      mkdirSync(options.home, { recursive: true, mode: 0o700 });
      appendFileSync(join(options.home, 'known_hosts'), `${keyName} ${keyType(key)} ${key.toString('base64')}\n`, { mode: 0o600 });
      return true;
    },
  };
  const auth = authPlan(target, options);
  config.authHandler = auth.methods;

  // The connection `ferry sync` opened early, else a new one.
  const socket = options.dialled?.take(address, target.port) ?? connectTo(address, target.port);
  config.sock = socket;
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    const fail = (error: FerryError) => {
      client.off('error', onError);
      client.off('close', onClose);
      // Whatever ssh2 still has to say of this connection goes nowhere.
      client.on('error', () => undefined);
      socket.destroy();
      reject(error);
    };
    const onError = (error: Error & { level?: string }) => {
      // An ssh-agent that cannot be reached, or a key that cannot sign, is
      // one way to authenticate fewer: ssh2 goes on to the next. It gives
      // up only when none is left.
      if (error.level === 'agent') return auth.failed(`ssh-agent (SSH_AUTH_SOCK=${process.env.SSH_AUTH_SOCK ?? ''}): ${error.message}`);
      if (error.level === 'client-authentication' && error.message !== 'All configured authentication methods failed') return auth.failed(error.message);
      if (refusal !== undefined) fail(new FerryError('EHOSTKEY', refusal));
      else if (error.level === 'client-authentication') {
        fail(new FerryError('EAUTH', `SSH authentication as ${target.user}@${named} failed; give --key FILE, or load the key into ssh-agent (SSH_AUTH_SOCK)${auth.describe()}`));
      } else {
        const code = (error as NodeJS.ErrnoException).code;
        fail(new FerryError('ECONNECT', `cannot connect to ${named} port ${target.port}: ${code === 'ECONNREFUSED' ? 'connection refused' : error.message}`));
      }
    };
    socket.once('error', (error: NodeJS.ErrnoException) => {
      fail(new FerryError('ECONNECT', `cannot connect to ${named} port ${target.port}: ${error.code === 'ECONNREFUSED' ? 'connection refused' : error.message}`));
    });
    const onClose = () =>
      fail(refusal !== undefined ? new FerryError('EHOSTKEY', refusal) : new FerryError('ECONNECT', `cannot connect to ${named} port ${target.port}: the server closed the connection`));
    client.once('ready', () => {
      client.off('error', onError);
      client.off('close', onClose);
      resolve();
    });
    client.once('close', onClose);
    client.on('error', onError);
    try {
      client.connect(config);
    } catch (error) {
      fail(new FerryError('ECONNECT', `cannot connect to ${named}: ${(error as Error).message}`));
    }
    // The agent's start command (the bundle's and native files' hashes) is
    // worked out during the key exchange, once ssh2 has sent its greeting
    // (from a microtask), not after the handshake.
    setImmediate(() => {
      try {
        quickAgentCommand();
      } catch {
        // Said again, where it matters, when the agent is started.
      }
    });
  });
  return { client, peer: `${peerOf(socket.remoteAddress, socket.remotePort ?? target.port)} ${hostKey}` };
}

/**
 * peerOf names the end of a connection: its address and port, with every
 * loopback address (127.0.0.0/8, ::1) one name, so that `localhost` and
 * `127.0.0.1` are seen to reach the same server.
 */
export function peerOf(address: string | undefined, port: number): string {
  const bare = (address ?? '?').replace(/^::ffff:(?=\d+\.)/, '');
  const loopback = bare === '::1' || /^127\./.test(bare);
  return `${loopback ? 'loopback' : bare.includes(':') ? `[${bare}]` : bare}:${port}`;
}

// Returns the command that starts the agent, installing it first when the
// guest does not have this exact build, together with the file watcher's
// native binding when this installation has one for the guest's platform.
/** What the quick start prints when the guest lacks this build of the agent (or its watcher). */
const AGENT_MISSING = Buffer.from('ferry-agent-missing\n');

let quick: string | undefined;

// The command that starts this build's agent if the guest has it, with the
// native files this installation would upload to a guest of its own
// platform when those are there too; else it prints AGENT_MISSING. None
// when FERRY_AGENT_COMMAND replaces the agent command.
function quickAgentCommand(): string | undefined {
  const override = process.env.FERRY_AGENT_COMMAND;
  if (override !== undefined && override !== '') return undefined;
  if (quick !== undefined) return quick;
  const { hash } = agentBundle();
  const agent = `"$d/agent-${hash}.mjs"`;
  const parts = nativeParts(hostPlatform());
  // No single quotes in here: it goes inside sh -c '...'.
  const start =
    parts.length === 0
      ? `exec node ${agent}`
      : `if ${parts.map((part) => `[ -f "$d/${part.name}" ]`).join(' && ')}; then exec env ${parts.map((part) => `${part.variable}="$d/${part.name}"`).join(' ')} node ${agent}; fi`;
  quick = `sh -c 'd="$HOME/.cache/ferry"; if [ -f ${agent} ]; then ${start}; fi; echo ${AGENT_MISSING.toString('utf8').trim()}'`;
  return quick;
}

// The first `n` bytes the channel sends (fewer, maybe none, if it closes
// first), or 'silent' if it sends nothing within HANDSHAKE_MS.
function firstBytes(channel: ClientChannel, n: number): Promise<Buffer | 'silent'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (result: Buffer | 'silent') => {
      // Held until the endpoint takes the channel over (and resumes it).
      channel.pause();
      clearTimeout(timer);
      channel.off('data', onData);
      channel.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      // Enough to tell, or already not the marker.
      if (all.length >= n || !AGENT_MISSING.subarray(0, all.length).equals(all)) done(all);
    };
    const onClose = () => done(Buffer.concat(chunks));
    const timer = setTimeout(() => done(chunks.length > 0 ? Buffer.concat(chunks) : 'silent'), HANDSHAKE_MS);
    channel.on('data', onData);
    channel.on('close', onClose);
  });
}

// FERRY_AGENT_COMMAND replaces it (for debugging, and for the tests'
// hostile agents).
async function agentCommand(client: Client, label: string): Promise<string> {
  const override = process.env.FERRY_AGENT_COMMAND;
  if (override !== undefined && override !== '') return override;
  const { code, hash } = agentBundle();
  const file = `"$HOME/.cache/ferry/agent-${hash}.mjs"`;
  // No single quotes in here: it goes inside sh -c '...'.
  const describe = 'process.stdout.write(JSON.stringify([process.versions.node, process.platform, process.arch, Boolean(process.report.getReport().header.glibcVersionRuntime)]))';
  const probe = await exec(
    client,
    `sh -c 'if ! command -v node >/dev/null 2>&1; then echo no-node; exit 0; fi; node -e "${describe}"; echo; ls "$HOME/.cache/ferry" 2>/dev/null; exit 0'`,
  );
  const lines = probe.stdout.trim().split('\n');
  if (lines[0] === 'no-node' || probe.code !== 0) {
    throw new FerryError('ENODE', `Node.js is not installed in ${label}; ferry's guest agent needs Node.js 18 or newer there (for example \`apt-get install nodejs\`)`);
  }
  const { version, os, arch, libc } = parseDescription(lines[0] ?? '');
  const major = Number.parseInt(version, 10);
  if (!(major >= 18)) throw new FerryError('ENODE', `${label} has Node.js ${version}; ferry's guest agent needs 18 or newer`);
  const present = new Set(lines.slice(1));
  let installed = false;
  const install = async (name: string, content: Buffer, what: string) => {
    if (present.has(name)) return;
    installed = true;
    const target = `"$HOME/.cache/ferry/${name}"`;
    const done = await exec(client, `sh -c 'mkdir -p "$HOME/.cache/ferry" && cat > ${target}.tmp.$$ && mv -f ${target}.tmp.$$ ${target}'`, content);
    if (done.code !== 0) throw new FerryError('EAGENT', `unable to install ${what} in ${label}: ${done.stderr.trim() || `exit ${String(done.code)}`}`);
  };
  await install(`agent-${hash}.mjs`, code, 'the ferry agent');
  const parts = nativeParts({ os, arch, libc: os === 'linux' ? libc : '' });
  for (const part of parts) await install(part.name, part.code, part.what);
  if (installed) await sweepCache(client, [`agent-${hash}.mjs`, ...parts.map((part) => part.name)]);
  if (parts.length === 0) return `exec node ${file}`;
  return `exec env ${parts.map((part) => `${part.variable}="$HOME/.cache/ferry/${part.name}"`).join(' ')} node ${file}`;
}

/** Days a build of the agent not installed by this ferry stays in a guest's cache. */
const CACHE_KEEP_DAYS = 7;

// Removes from the guest's cache the agent builds, native files and
// temporaries of other ferry versions installed more than CACHE_KEEP_DAYS
// ago, keeping `current`: each upgrade would otherwise leave its build
// behind. A build another ferry still uses is installed again by it. Best
// effort: a guest without find keeps its files.
async function sweepCache(client: Client, current: readonly string[]): Promise<void> {
  // No single quotes in here: it goes inside sh -c '...'. The names are hex.
  const keep = current.map((name) => `! -name ${name}`).join(' ');
  const command = `sh -c 'find "$HOME/.cache/ferry" -maxdepth 1 -type f \\( -name "agent-*" -o -name "watcher-*" -o -name "shims-*" \\) ${keep} -mtime +${CACHE_KEEP_DAYS} -exec rm -f {} + 2>/dev/null; exit 0'`;
  await exec(client, command).catch(() => undefined);
}

// What the guest's node said of itself; anything unexpected reads as unknown.
function parseDescription(line: string): { version: string; os: string; arch: string; libc: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) return { version: line.slice(0, 40), os: '', arch: '', libc: '' };
  const [version, os, arch, glibc] = parsed as unknown[];
  const word = (v: unknown) => (typeof v === 'string' && /^[\w.-]{1,40}$/.test(v) ? v : '');
  return { version: word(version) || '?', os: word(os), arch: word(arch), libc: glibc === true ? 'glibc' : 'musl' };
}

/** A native file uploaded beside the agent: its name there (by content hash), the variable that tells the agent where it is, and what it is. */
interface NativePart {
  readonly name: string;
  readonly variable: string;
  readonly what: string;
  readonly code: Buffer;
}

// The native files this installation uploads beside the agent to a guest of
// `platform`: the file watcher's prebuilt binding where it has one, and
// ferry's native shims where the guest's platform is this machine's (they
// were built here, for here) unless FERRY_GUEST_DISK=portable. A guest that
// cannot load the shims works on plain Node instead.
function nativeParts(platform: Platform): NativePart[] {
  const parts: NativePart[] = [];
  const part = (kind: string, variable: string, what: string, path: string) => {
    const code = readFileSync(path);
    parts.push({ name: `${kind}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.node`, variable, what, code });
  };
  const watcher = bindingPath(platform);
  if (watcher !== undefined) part('watcher', 'FERRY_WATCHER', 'the file watcher', watcher);
  const host = hostPlatform();
  const samePlatform = platform.os === host.os && platform.arch === host.arch && platform.libc === host.libc;
  if (samePlatform && process.env.FERRY_GUEST_DISK !== 'portable' && existsSync(shimsPath())) part('shims', 'FERRY_SHIMS', "ferry's native shims", shimsPath());
  return parts;
}
