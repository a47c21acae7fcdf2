/**
 * Coalescer gathers the frames sent in one turn of the event loop into one
 * write. Over SSH every write becomes at least one packet, each encrypted,
 * padded and written to the socket by itself: thousands of small frames
 * (three per small file) cost far more one by one than together.
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

  /** send queues a frame; frames go out in the order they were sent. */
  send(frame: Uint8Array): Promise<void> {
    this.parts.push(frame);
    this.bytes += frame.length;
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

  /** flush writes what is gathered now. */
  flush(): Promise<void> {
    if (this.parts.length === 0) return Promise.resolve();
    const bytes = this.parts.length === 1 ? (this.parts[0] as Uint8Array) : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return this.write(bytes);
  }

  /** drop forgets what is gathered (the channel is gone). */
  drop(): void {
    this.parts = [];
    this.bytes = 0;
  }
}
