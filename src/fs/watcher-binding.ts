/**
 * Finding and loading @parcel/watcher's prebuilt native binding on the host.
 * The host also uploads the same file to a guest of the same platform, so the
 * guest agent can watch with it (the agent itself is one bundled .mjs file).
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { FerryError } from '../core/errors.js';
import type { WatcherBinding } from './watch.js';

const require = createRequire(import.meta.url);

/** Platform is what picks a prebuilt binding: os, cpu, and on Linux the C library. */
export interface Platform {
  readonly os: string;
  readonly arch: string;
  /** 'glibc' or 'musl' on Linux; '' elsewhere. */
  readonly libc: string;
}

let host: Platform | undefined;

/** hostPlatform describes this machine (asked once). */
export function hostPlatform(): Platform {
  host ??= process.platform === 'linux' ? { os: 'linux', arch: process.arch, libc: linuxLibc() } : { os: process.platform, arch: process.arch, libc: '' };
  return host;
}

// The C library is the one mapped into this process: glibc's libc.so.6
// (libc-2.NN.so before glibc 2.34), or musl's loader, which is its libc too.
// Reading the maps takes a fraction of a millisecond; the diagnostic report,
// asked when they tell neither, some 5.
function linuxLibc(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    if (/\/ld-musl-[^/\n]*$/m.test(maps)) return 'musl';
    if (/\/libc(\.so\.6|-2\.[0-9]+\.so)$/m.test(maps)) return 'glibc';
  } catch {
    // No /proc: ask the report.
  }
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return header?.glibcVersionRuntime !== undefined ? 'glibc' : 'musl';
}

/** bindingPath returns the prebuilt watcher.node for a platform, if this installation has it. */
export function bindingPath(platform: Platform): string | undefined {
  const name = `@parcel/watcher-${platform.os}-${platform.arch}${platform.libc === '' ? '' : `-${platform.libc}`}`;
  try {
    return require.resolve(name);
  } catch {
    return undefined;
  }
}

let loaded: WatcherBinding | undefined;

/** hostWatcher loads the binding for this machine (once). */
export function hostWatcher(): WatcherBinding {
  if (loaded !== undefined) return loaded;
  const path = bindingPath(hostPlatform());
  if (path === undefined) {
    throw new FerryError('EWATCH', `@parcel/watcher has no prebuilt binding for ${process.platform}-${process.arch} in this installation; reinstall ferry with \`npm install\` (optional dependencies included)`);
  }
  loaded = require(path) as WatcherBinding;
  return loaded;
}

/** loadWatcherFile loads a binding from a file (in the guest agent, the one the host uploaded). */
export function loadWatcherFile(path: string): WatcherBinding {
  return require(path) as WatcherBinding;
}
