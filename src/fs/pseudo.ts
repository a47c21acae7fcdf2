/**
 * File systems whose files are not files: the kernel's views of processes,
 * devices and settings. Their "files" have no stable content and writing
 * one changes the running system, so ferry neither syncs nor grants them.
 */

import * as fs from 'node:fs';

// Node 18.15 and later; the guest agent may run on an older 18, where this
// is undefined (and nothing is taken for a pseudo file system).
const statfsSync = (fs as { statfsSync?: typeof fs.statfsSync }).statfsSync;

/** The statfs magic numbers of the kernel's pseudo file systems (linux/magic.h). */
const PSEUDO: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x1cd1, 'devpts'],
  [0xcafe4a11, 'bpf'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x6165676c, 'pstore'],
  [0x65735543, 'fusectl'],
]);

/** pseudoFileSystem names the pseudo file system `path` lies on (proc, sysfs…), or undefined for a real one (or when it cannot tell). */
export function pseudoFileSystem(path: string): string | undefined {
  let type: number;
  try {
    if (statfsSync === undefined) return undefined;
    type = Number(statfsSync(path).type);
  } catch {
    return undefined;
  }
  return PSEUDO.get(type);
}

/** onPseudoFileSystem says why `path` is refused ("lies on proc, the kernel's view…"), or undefined for a real file system. */
export function onPseudoFileSystem(path: string): string | undefined {
  const pseudo = pseudoFileSystem(path);
  return pseudo === undefined ? undefined : `lies on ${pseudo}, the kernel's view of the running system`;
}
