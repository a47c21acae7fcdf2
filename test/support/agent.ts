/**
 * Test support: a ferry agent (or a hostile stand-in) run as a local child
 * process, its stdio wrapped as a Channel for RemoteEndpoint.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Channel } from '../../src/transport/remote.js';

/** AGENT_BUNDLE is the built agent. */
export const AGENT_BUNDLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'agent.mjs');

/**
 * installedAgentName is the file name under a guest's ~/.cache/ferry that
 * this build's agent is installed as (by content hash, as ssh.ts does);
 * agents of other builds may lie beside it.
 */
export function installedAgentName(): string {
  return `agent-${createHash('sha256').update(readFileSync(AGENT_BUNDLE)).digest('hex').slice(0, 16)}.mjs`;
}

/** childChannel wraps a child's stdin/stdout as a Channel. */
export function childChannel(child: ChildProcessWithoutNullStreams): Channel {
  return {
    write: (data) => child.stdin.write(data),
    once: (_event, listener) => child.stdin.once('drain', listener),
    on: (event: 'data' | 'close' | 'error', listener: (arg: never) => void) => {
      if (event === 'data') child.stdout.on('data', listener as (chunk: Buffer) => void);
      else if (event === 'close') child.on('close', listener as () => void);
      else child.on('error', listener as (error: Error) => void);
      return undefined;
    },
    end: () => child.stdin.end(),
  };
}

/** spawnAgent starts `node script` (the real agent by default), with `env` added to this process's environment. */
export function spawnAgent(script = AGENT_BUNDLE, args: string[] = [], env: Readonly<Record<string, string>> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}
