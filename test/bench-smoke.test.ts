/**
 * Smoke test of the benchmark suite: `bench/run.mjs --smoke` (tiny trees, one
 * run) must run end to end and write its table, chart and JSON, with a row for
 * every tool and every figure, and a peer that is not installed reported as
 * missing. It never looks at a timing: on a shared CI machine they mean nothing.
 */

import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The rows the table must always have, whatever is installed (labels as bench/tools.mjs names them). */
const SYNC_TOOLS = ['ferry', 'rsync -a', 'unison', 'cp -a', 'ferry (ssh)', 'rsync -a (ssh)', 'unison (ssh)'];
const WATCH_TOOLS = ['ferry sync --watch', 'lsyncd', 'unison -repeat 1'];
const SYNC_FIGURES = ['small', 'large', 'huge-tree'].flatMap((tree) => ['initial sync', 'no-op resync', 'one file changed'].map((s) => `${s}, ${tree}`));
const WATCH_FIGURES = ['propagation latency, watch mode', 'idle CPU while watching'];
const RATIO_FIGURES = [
  ...SYNC_FIGURES,
  ...SYNC_FIGURES.map((f) => `peak RSS, ${f}`),
  'propagation latency p50, watch mode',
  'propagation latency p99, watch mode',
  'idle CPU while watching',
  'peak RSS while watching',
];

interface BenchRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface BenchJson {
  readonly mode: string;
  readonly tools: Record<string, { label: string; status?: string }>;
  readonly ratios: { figure: string }[];
  readonly samples: unknown[];
}

function runBench(env: Record<string, string>): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bench', 'run.mjs'), '--smoke'], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** rowsOf returns the table rows (cells trimmed) whose first two cells are figure and tool. */
function rowsOf(md: string, figure: string, tool: string): string[][] {
  return md
    .split('\n')
    .filter((l) => l.startsWith('| '))
    .map((l) => l.slice(2, -2).split(' | ').map((c) => c.trim()))
    .filter((cells) => cells[0] === figure && cells[1] === tool);
}

describe('bench/run.mjs --smoke', () => {
  let dir = '';
  let run: BenchRun;
  let md = '';
  let json: BenchJson;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
    // as root the bench logs in as ferry-guest, who must reach the guest directories under here
    chmodSync(dir, 0o755);
    // cp stands in for a peer that is not installed
    run = await runBench({ BENCH_DIR: join(dir, 'work'), BENCH_RESULTS_DIR: join(dir, 'results'), BENCH_PRETEND_MISSING: 'cp' });
    const results = existsSync(join(dir, 'results')) ? readdirSync(join(dir, 'results')) : [];
    const mdName = results.find((f) => f.endsWith('-smoke.md'));
    if (mdName !== undefined) md = readFileSync(join(dir, 'results', mdName), 'utf8');
    const jsonName = results.find((f) => f.endsWith('-smoke.json'));
    if (jsonName !== undefined) json = JSON.parse(readFileSync(join(dir, 'results', jsonName), 'utf8')) as BenchJson;
  }, 180_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('runs to the end and writes the table, the chart and the JSON', () => {
    expect(run.stderr).not.toContain('FAILED');
    expect(run.status).toBe(0);
    const files = readdirSync(join(dir, 'results')).sort();
    expect(files.map((f) => f.replace(/^\d{4}-\d\d-\d\d-.*-smoke\./, ''))).toEqual(['json', 'md', 'svg']);
    const svg = readFileSync(join(dir, 'results', files.find((f) => f.endsWith('.svg')) ?? ''), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.trimEnd()).toMatch(/<\/svg>$/);
    expect(json.mode).toBe('smoke');
    expect(json.samples.length).toBeGreaterThan(0);
    // the table on stdout is the one in the file
    expect(run.stdout.trim()).toBe(md.trim());
  });

  test('the table has a row for every tool and every figure', () => {
    for (const figure of SYNC_FIGURES) for (const tool of SYNC_TOOLS) expect(rowsOf(md, figure, tool), `${figure} / ${tool}`).toHaveLength(1);
    for (const figure of WATCH_FIGURES) for (const tool of WATCH_TOOLS) expect(rowsOf(md, figure, tool), `${figure} / ${tool}`).toHaveLength(1);
    const ratioRows = md.split('\n').filter((l) => l.startsWith('| ') && l.split(' | ').length === 7);
    for (const figure of RATIO_FIGURES) expect(ratioRows.filter((l) => l.startsWith(`| ${figure} |`)), figure).toHaveLength(1);
    expect(json.ratios.map((r) => r.figure).sort()).toEqual([...RATIO_FIGURES].sort());
  });

  test('a peer that is not installed is reported as missing, never dropped', () => {
    const missing = Object.values(json.tools).filter((t) => t.status?.startsWith('missing'));
    expect(missing.map((t) => t.label)).toContain('cp -a');
    for (const tool of missing) {
      const rows = md.split('\n').filter((l) => l.split(' | ')[1] === tool.label);
      expect(rows.length, tool.label).toBeGreaterThan(0);
      for (const row of rows) expect(row, tool.label).toContain('missing');
    }
  });

  // Over ssh the bench starts sshd and logs in as ferry-guest, which needs root;
  // without it those cells say "not run: needs root", which the tests above accept.
  test.skipIf(process.getuid?.() !== 0)('as root, ferry over ssh is measured', () => {
    for (const figure of SYNC_FIGURES) {
      const [row] = rowsOf(md, figure, 'ferry (ssh)');
      expect(row?.[2], figure).toMatch(/^[\d.]+ s /);
    }
  });
});
