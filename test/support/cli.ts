/**
 * Test support: runs the built ferry CLI as a real process, and builds and
 * reads real trees in temp directories.
 */

import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** FERRY_BIN is the built CLI. */
export const FERRY_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'ferry.js');

/** CliResult is what a ferry process printed and its exit status. */
export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * runFerry runs `ferry args...` with FERRY_HOME=home and returns its output.
 * `env` adds (or overrides) variables on top of this process's environment;
 * a ferry that runs longer than `timeoutMs` is killed and the promise rejects.
 */
export function runFerry(home: string, args: string[], timeoutMs = 120_000, env: Readonly<Record<string, string>> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], {
      env: { ...process.env, ...env, FERRY_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Tree is a description of files ("content") and directories (null) by relative path. */
export type Tree = Record<string, string | null>;

/** tempDir makes a fresh temp directory. */
export function tempDir(prefix = 'ferry-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Pair is a fresh alpha, beta and FERRY_HOME. */
export interface Pair {
  readonly alpha: string;
  /** beta's directory, as the test reads and writes it on this machine. */
  readonly beta: string;
  /** beta as ferry is told it: the directory, or its ssh:// URL. */
  readonly betaArg: string;
  readonly home: string;
  /** Whether beta is reached over SSH. */
  readonly remote: boolean;
  /** The arguments of `ferry sync` for this pair, without --once. */
  readonly syncArgs: readonly string[];
  sync(...extra: string[]): Promise<CliResult>;
  /** giveToGuest hands what the test wrote into beta to the guest user (nothing for a local beta). */
  giveToGuest(): void;
}

/** RemoteGuest is what makePair needs to put beta behind SSH (see support/sshd.ts). */
export interface RemoteGuest {
  readonly clientKey: string;
  readonly knownHostsLine: string;
  guestDir(prefix?: string): string;
  chownToGuest(path: string): void;
  url(path: string): string;
}

/**
 * makePair creates alpha and beta with the given trees; beta lives in the
 * guest when `guest` is given, and its syncs run with `env` added.
 */
export function makePair(alphaTree: Tree = {}, betaTree: Tree = {}, guest?: RemoteGuest, env: Readonly<Record<string, string>> = {}): Pair {
  const top = tempDir();
  const alpha = join(top, 'alpha');
  const home = join(top, 'home');
  mkdirSync(alpha);
  writeTree(alpha, alphaTree);
  if (guest === undefined) {
    const beta = join(top, 'beta');
    mkdirSync(beta);
    writeTree(beta, betaTree);
    return {
      alpha,
      beta,
      betaArg: beta,
      home,
      remote: false,
      syncArgs: ['sync', alpha, beta],
      sync: (...extra) => runFerry(home, ['sync', alpha, beta, '--once', ...extra]),
      giveToGuest: () => undefined,
    };
  }
  const beta = guest.guestDir('pair');
  writeTree(beta, betaTree);
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'known_hosts'), `${guest.knownHostsLine}\n`);
  const betaArg = guest.url(beta);
  return {
    alpha,
    beta,
    betaArg,
    home,
    remote: true,
    syncArgs: ['sync', alpha, betaArg, '--key', guest.clientKey],
    giveToGuest: () => guest.chownToGuest(beta),
    sync: (...extra) => {
      // The test writes into beta as root; the guest user must own it all.
      guest.chownToGuest(beta);
      return runFerry(home, ['sync', alpha, betaArg, '--once', '--key', guest.clientKey, ...extra], undefined, env);
    },
  };
}

/** writeTree creates the files and directories of tree below root. */
export function writeTree(root: string, tree: Tree): void {
  for (const [path, content] of Object.entries(tree)) {
    const abs = join(root, path);
    if (content === null) mkdirSync(abs, { recursive: true });
    else {
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, content);
    }
  }
}

/** readTree returns every file (content) and directory (null) below root, ignoring nothing. */
export function readTree(root: string): Tree {
  const out: Tree = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) {
        out[path] = null;
        walk(path);
      } else if (st.isFile()) out[path] = readFileSync(join(root, path), 'utf8');
      else out[path] = `<${st.isSymbolicLink() ? 'symlink' : 'special'}>`;
    }
  };
  walk('');
  return out;
}
