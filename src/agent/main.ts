/**
 * The guest agent's entry point, bundled into dist/agent.mjs and started by
 * the host over SSH as `node agent.mjs`: speaks ferry's protocol on
 * stdin/stdout, logs to stderr.
 */

import { isMainThread } from 'node:worker_threads';
import { serve } from './serve.js';

// A worker thread loads this bundle too (src/fs/portable-disk.ts), for its own task only.
if (isMainThread) {
  serve(process.stdin, process.stdout).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`ferry agent: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
