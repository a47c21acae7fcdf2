/**
 * Output helpers shared by the commands: exit statuses, sizes, JSON.
 */

/** EXIT holds the exit statuses of the CLI contract. */
export const EXIT = { ok: 0, error: 1, usage: 2, conflicts: 3 } as const;

/** formatBytes prints a byte count for people (1.5 MiB). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** plural returns "1 file" or "2 files". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** printJson writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
