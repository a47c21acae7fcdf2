/**
 * Limits on what a guest may put on the host through one grant (DESIGN rule
 * 7): the largest file, the total bytes and the number of entries it may
 * bring in, the largest protocol frame, and how many messages a second it
 * may send. A limit hit is an error for that grant and an audit entry, never
 * a partial file.
 */

export interface Limits {
  /** The largest file the guest may bring to the host, in bytes. */
  readonly maxFileBytes: number;
  /** The most bytes the grant may hold on the host (files in the archive plus what comes in). */
  readonly maxTotalBytes: number;
  /** The most entries (files and directories) the grant may hold. */
  readonly maxEntries: number;
  /** The largest frame the agent may send, in bytes (at most the protocol's 16 MiB). */
  readonly maxFrameBytes: number;
  /** The most messages a second the agent may send. */
  readonly maxMessagesPerSecond: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxFileBytes: 16 * 2 ** 30,
  maxTotalBytes: 256 * 2 ** 30,
  maxEntries: 2_000_000,
  maxFrameBytes: 16 * 2 ** 20,
  maxMessagesPerSecond: 50_000,
});

const UNITS: Readonly<Record<string, number>> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** parseSize reads "1500", "64K", "10M", "2G" (binary units); undefined when it is not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (match === null) return undefined;
  const value = Math.floor(Number(match[1]) * (UNITS[(match[2] ?? '').toUpperCase()] ?? Number.NaN));
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
