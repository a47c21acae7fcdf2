#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS MALLOC_ARENA_MAX=2 node
// The ferry command: runs the built CLI in dist/ (built by `npm install`).
// ferry makes no TLS connection (SSH has its own keys), and a set
// NODE_EXTRA_CA_CERTS makes Node parse every root certificate before the
// first line of JavaScript runs: some 50 ms of every start, measured.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

// ferry streams: its live data is small and its garbage short-lived, so a
// young generation that keeps its initial size (it is never grown) and a
// heap tuned for size keep its memory flat however large the tree. They are
// set here rather than on the #! line, where V8 flags were measured to add
// about 10 ms to every start; set at run time they still take effect (peak
// RSS of a 100,000-file sync: 72 MB either way, 102 MB without them).
v8.setFlagsFromString('--semi-space-growth-factor=1');
v8.setFlagsFromString('--optimize-for-size');

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('ferry: not built yet; run `npm install` (or `npm run build`) in the ferry checkout\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
