/**
 * ChunkQueue: data frames of one request, handed from the frame decoder to
 * whoever consumes them as an async iterable (the agent's staging, the
 * host's reads).
 */

/** ChunkQueue buffers chunks until they are consumed; `finish` ends it, with an error or not. */
export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private done = false;
  private failure: Error | undefined;
  private waiter: (() => void) | undefined;
  /** Bytes pushed so far. */
  received = 0;

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.received += chunk.length;
    this.wake();
  }

  finish(error?: Error): void {
    this.done = true;
    this.failure = error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        yield chunk;
        continue;
      }
      if (this.done) {
        if (this.failure !== undefined) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
