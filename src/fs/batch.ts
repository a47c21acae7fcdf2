/**
 * Batcher gathers the calls made in one turn of the event loop and hands
 * them to a native call in a few chunks, each a single trip to a worker
 * thread: for thousands of small files the hand-off per call, not the work,
 * is what costs.
 */

interface Waiting<J, R> {
  readonly job: J;
  resolve(result: R): void;
  reject(error: Error): void;
}

export class Batcher<J, R> {
  private waiting: Waiting<J, R>[] = [];

  /**
   * @param run does one chunk of jobs; its results are in the jobs' order, an Error for a job that failed.
   * @param parallel at most this many chunks at once (the worker threads they can use).
   * @param minChunk fewer jobs than this per chunk are not worth another chunk.
   */
  constructor(
    private readonly run: (jobs: J[]) => Promise<(R | Error)[]>,
    private readonly parallel: number,
    private readonly minChunk: number,
  ) {}

  add(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(() => this.drain());
      this.waiting.push({ job, resolve, reject });
    });
  }

  private drain(): void {
    const all = this.waiting;
    this.waiting = [];
    const chunks = Math.max(1, Math.min(this.parallel, Math.floor(all.length / this.minChunk)));
    const size = Math.ceil(all.length / chunks);
    for (let start = 0; start < all.length; start += size) this.runChunk(all.slice(start, start + size));
  }

  private runChunk(chunk: Waiting<J, R>[]): void {
    let results: Promise<(R | Error)[]>;
    try {
      results = this.run(chunk.map((w) => w.job));
    } catch (error) {
      results = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    results.then(
      (settled) =>
        chunk.forEach((w, i) => {
          const result = settled[i];
          if (result instanceof Error) w.reject(result);
          else if (result === undefined) w.reject(new Error('a batched call gave no result for this job'));
          else w.resolve(result);
        }),
      (error: unknown) => chunk.forEach((w) => w.reject(error instanceof Error ? error : new Error(String(error)))),
    );
  }
}
