/** A part this large is written by itself rather than copied into a joined write. */
const WHOLE_PART = 64 * 1024;

/**
 * Coalescer gathers the frames sent in one turn of the event loop into one
 * write. Over SSH every write becomes at least one packet, each encrypted,
 * padded and written to the socket by itself: thousands of small frames
 * (three per small file) cost far more one by one than together. A large
 * part (a chunk of file data after its header) is written as it is, not
 * copied into the gathering.
 */
export class Coalescer {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private scheduled = false;

  /**
   * @param write writes bytes to the channel, waiting for it to drain when it is full.
   * @param limit a gathering this large is written at once, and its sender waits for that write.
   */
  constructor(
    private readonly write: (bytes: Uint8Array) => Promise<void>,
    private readonly limit = 256 * 1024,
  ) {}

  /** send queues a frame, given in one part or more; everything goes out in the order it was sent. */
  send(...frame: Uint8Array[]): Promise<void> {
    for (const part of frame) {
      this.parts.push(part);
      this.bytes += part.length;
    }
    if (this.bytes >= this.limit) return this.flush();
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        // A failed write ends the channel, and its owner fails what is in flight.
        this.flush().catch(() => undefined);
      });
    }
    return Promise.resolve();
  }

  /** flush writes what is gathered now: small parts joined, each large one by itself. */
  flush(): Promise<void> {
    const parts = this.parts;
    this.parts = [];
    this.bytes = 0;
    const writes: Promise<void>[] = [];
    let run: Uint8Array[] = [];
    const writeRun = () => {
      if (run.length > 0) writes.push(this.write(run.length === 1 ? (run[0] as Uint8Array) : Buffer.concat(run)));
      run = [];
    };
    for (const part of parts) {
      if (part.length < WHOLE_PART) run.push(part);
      else {
        writeRun();
        writes.push(this.write(part));
      }
    }
    writeRun();
    return Promise.all(writes).then(() => undefined);
  }

  /** drop forgets what is gathered (the channel is gone). */
  drop(): void {
    this.parts = [];
    this.bytes = 0;
  }
}
