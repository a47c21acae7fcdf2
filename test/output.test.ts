/**
 * What the CLI prints: lines for people, where what a terminal would act on
 * is shown escaped; the usage; and output to a reader that goes away.
 */


import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { terminalSafe } from '../src/cli/output.js';
import { type CliResult, FERRY_BIN, makePair, runFerry, tempDir } from './support/cli.js';

describe('terminalSafe', () => {
  test.for([
    ['plain name.txt', 'plain name.txt'],
    ['tab\tstays', 'tab\tstays'],
    ['ümlaut ✓ 文字', 'ümlaut ✓ 文字'],
    ['\u001b[2Jclear', '\\x1b[2Jclear'],
    ['bell\u0007', 'bell\\x07'],
    ['line\nbreak\r', 'line\\x0abreak\\x0d'],
    ['del\u007f', 'del\\x7f'],
    ['csi\u009b31m', 'csi\\x9b31m'],
    ['evil\u202etxt.exe', 'evil\\u{202e}txt.exe'],
    ['iso\u2066late\u2069', 'iso\\u{2066}late\\u{2069}'],
  ] as const)('%j reads %j', ([text, shown]) => {
    expect(terminalSafe(text)).toBe(shown);
  });
});

describe('--help', () => {
  test.for(
    [
      ['sync', '--help'],
      ['sync', '-h'],
      ['sync', 'a', 'b', '--watch', '--help'],
      ['grant', '--help'],
      ['conflicts', '--help'],
      ['conflicts', 'show', '--help'],
      ['resolve', '-h'],
      ['vm', 'add', '--help'],
      ['daemon', '--help'],
      ['log', '--help'],
      ['demo', '--help'],
    ].map((args) => ({ line: args.join(' '), args })),
  )('ferry $line prints the usage, exit 0', async ({ args }) => {
    const r = await runFerry(tempDir(), args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ferry \S+ — /);
    expect(r.stdout).toContain(`\n  ferry ${args[0] ?? ''} `);
  });

  test('after --, --help belongs to the command ferry run launches', async () => {
    const r = await runFerry(tempDir(), ['run', 'vm', '--', 'ls', '--help']);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ferry: `ferry run` is not available/);
    expect(r.status).toBe(2);
  });
});

/** runClosingStdout runs ferry with a stdout its reader closes after `lines` lines (at once for 0), as `ferry … | head -n lines` does. */
function runClosingStdout(home: string, args: string[], lines = 0, whileRunning?: () => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], { env: { ...process.env, FERRY_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const poke = whileRunning === undefined ? undefined : setInterval(whileRunning, 200);
    const close = () => {
      child.stdout.destroy();
      whileRunning?.();
    };
    if (lines === 0) close();
    else {
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
        if (stdout.split('\n').length > lines) close();
      });
    }
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry ${args.join(' ')} went on after its stdout closed; stderr: ${stderr}`));
    }, 20_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      clearInterval(poke);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('a stdout closed by its reader', () => {
  test.for([['--help'], ['log'], ['conflicts', '--json'], ['conflicts']].map((args) => ({ line: args.join(' '), args })))('ferry $line | true ends quietly, exit 0', async ({ args }) => {
    const r = await runClosingStdout(tempDir(), args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('ferry sync --watch --json | head -1 stops the watch quietly', async () => {
    const pair = makePair({ 'a.txt': 'a' });
    let n = 0;
    const r = await runClosingStdout(pair.home, [...pair.syncArgs, '--watch', '--json'], 1, () => writeFileSync(join(pair.alpha, `poke-${n++}.txt`), 'poke'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.split('\n')[0] ?? '')).toMatchObject({ event: 'connected' });
  });
});

describe('usage errors', () => {
  test('ferry log --limit -1: one line that says what to write instead, exit 2', async () => {
    const home = tempDir();
    const r = await runFerry(home, ['log', '--limit', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("ferry: --limit -1: a value that starts with '-' reads as another option; write --limit=-1 if it is the value of --limit\n");
    const given = await runFerry(home, ['log', '--limit=-1']);
    expect(given.status).toBe(2);
    expect(given.stderr).toBe('ferry: --limit -1: give a positive number of entries\n');
  });

  test('an unknown option is named with its command, in one line', async () => {
    const pair = makePair();
    const r = await runFerry(pair.home, [...pair.syncArgs, '--frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('ferry: unknown option --frobnicate for `ferry sync`; `ferry --help` lists the options\n');
  });

  test.for(['ftp://h/x', 'http://h/x', 'https://user@h:8080/x'])('ferry sync alpha %s: only SSH is understood, exit 2', async (beta) => {
    const pair = makePair();
    const r = await runFerry(pair.home, ['sync', pair.alpha, beta]);
    expect(r.stderr).toMatch(/^ferry: \S+: ferry reaches another machine over SSH only, not \w+:\/\/; write ssh:\/\/\[user@\]host\[:port\]\/path or \[user@\]host:path\n$/);
    expect(r.status).toBe(2);
  });

  test('under --watch --json, a usage error is a JSON error object too', async () => {
    const pair = makePair();
    const r = await runFerry(pair.home, [...pair.syncArgs, '--watch', '--json', '--verify-every', 'bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^ferry: --verify-every "bogus": give a duration/);
    expect(JSON.parse(r.stdout)).toEqual({ status: 'error', exit: 2, message: expect.stringMatching(/^--verify-every "bogus": give a duration/) as unknown });
  });
});
