/**
 * Test support: a real `ferry daemon` (the powerbox), spawned from the built
 * CLI with its own FERRY_HOME.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { expect } from 'vitest';
import { FERRY_BIN } from './cli.js';
import { eventually } from './wait.js';

/** Daemon is a running `ferry daemon`; `env` adds variables (FERRY_AGENT_TIMEOUT, say) to its environment. */
export class Daemon {
  stderr = '';
  private readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(home: string, env: Readonly<Record<string, string>> = {}) {
    this.child = spawn(process.execPath, [FERRY_BIN, 'daemon'], { env: { ...process.env, ...env, FERRY_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.on('close', (status) => resolve(status)));
  }

  /** running says whether the daemon process is still alive. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** pid is the daemon's process id. */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** exitsWithin waits up to `ms` for the daemon to exit (after it may have crashed) and says whether it did. */
  async exitsWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([this.exited.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async ready(): Promise<void> {
    await eventually(() => expect(this.stderr).toMatch(/serving/), 15_000);
  }

  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
