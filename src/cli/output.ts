/**
 * Output helpers shared by the commands: exit statuses, sizes, JSON, and
 * lines for people that no file name can turn into terminal commands.
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

const closedHandlers = new Set<() => void>();
let watchingStdout = false;

/**
 * quietOnClosedStdout makes a stdout closed by its reader (`ferry log |
 * head`) end the output quietly, not in a crash: what is still written is
 * dropped, the command ends as it would have, and whatever whenStdoutCloses
 * registered is called once.
 */
export function quietOnClosedStdout(): void {
  if (watchingStdout) return;
  watchingStdout = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    for (const handler of closedHandlers) handler();
    closedHandlers.clear();
  });
}

/** whenStdoutCloses calls handler once stdout's reader has gone; the function it returns unregisters it. */
export function whenStdoutCloses(handler: () => void): () => void {
  closedHandlers.add(handler);
  return () => closedHandlers.delete(handler);
}

const toldAsEvents = new WeakSet<object>();

/** markToldAsEvent records that a --json watch has written error as its error event. */
export function markToldAsEvent(error: object): void {
  toldAsEvents.add(error);
}

/** toldAsEvent reports whether a --json watch has written error as its error event already. */
export function toldAsEvent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && toldAsEvents.has(error);
}

/** printJson writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// C0 controls but tab, DEL, C1 controls, and the bidirectional overrides
// and isolates that can make a name read as another.
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * terminalSafe escapes what a terminal would act on rather than show (as
 * \xNN or \u{NNNN}): names and messages come from the guest too, and one
 * holding an escape sequence must not drive the user's terminal.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** printLines writes lines for people to stdout, each made terminal-safe (a line break inside one is escaped too). */
export function printLines(lines: readonly string[]): void {
  process.stdout.write(`${lines.map(terminalSafe).join('\n')}\n`);
}
