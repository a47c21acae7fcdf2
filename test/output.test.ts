/**
 * Lines for people: what a terminal would act on is shown escaped.
 */

import { describe, expect, test } from 'vitest';
import { terminalSafe } from '../src/cli/output.js';

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
