#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --optimize-for-size
// The ferry command: runs the built CLI in dist/ (built by `npm install`).
import { existsSync } from 'node:fs';

// The #! line passes V8 flags: ferry streams, its live data is small and its
// garbage short-lived, so a small young generation and a heap tuned for size
// keep its memory flat however large the tree.
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('ferry: not built yet; run `npm install` (or `npm run build`) in the ferry checkout\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
