/**
 * What the CLI prints: lines for people, where what a terminal would act on
 * is shown escaped; the usage; and output to a reader that goes away.
 */


import { describe, expect, test } from 'vitest';
import { terminalSafe } from '../src/cli/output.js';
import { runFerry, tempDir } from './support/cli.js';

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
