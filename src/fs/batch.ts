/**
 * Batcher gathers the calls made in one turn of the event loop and hands
 * them to a native call in a few chunks, each a single trip to a worker
 * thread: for thousands of small files the hand-off per call, not the work,
 * is what costs.
 */

import { asError } from '../core/errors.js';

interface Waiting<J, R> {
  readonly job: J;
  resolve(result: R): void;
  reject(error: Error): void;
}

export class Batcher<J, R> {
  private waiting: Waiting<J, R>[] = [];
  private running = 0;

  /**
   * @param run does one chunk of jobs; its results are in the jobs' order, an Error for a job that failed.
   * @param parallel at most this many chunks at once (the worker threads they can use).
   * @param minChunk fewer jobs than this per chunk are not worth another chunk.
   * @param maxChunk no chunk has more jobs than this.
   */
  constructor(
    private readonly run: (jobs: J[]) => Promise<(R | Error)[]>,
    private readonly parallel: number,
    private readonly minChunk: number,
    private readonly maxChunk = Number.POSITIVE_INFINITY,
  ) {}

  add(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(() => this.drain());
      this.waiting.push({ job, resolve, reject });
    });
  }

  // Starts chunks while fewer than `parallel` run; what is left waits for
  // one to end and goes with the jobs added meanwhile, in a fuller chunk.
  private drain(): void {
    while (this.running < this.parallel && this.waiting.length > 0) {
      const size = Math.min(this.maxChunk, Math.max(this.minChunk, Math.ceil(this.waiting.length / (this.parallel - this.running))));
      this.runChunk(this.waiting.splice(0, size));
    }
  }

  private runChunk(chunk: Waiting<J, R>[]): void {
    let results: Promise<(R | Error)[]>;
    try {
      results = this.run(chunk.map((w) => w.job));
    } catch (error) {
      results = Promise.reject(asError(error));
    }
    this.running++;
    results
      .then(
        (settled) =>
          chunk.forEach((w, i) => {
            const result = settled[i];
            if (result instanceof Error) w.reject(result);
            else if (result === undefined) w.reject(new Error('a batched call gave no result for this job'));
            else w.resolve(result);
          }),
        (error: unknown) => chunk.forEach((w) => w.reject(asError(error))),
      )
      .finally(() => {
        this.running--;
        // After the callers have had their results and queued what follows.
        setImmediate(() => this.drain());
      });
  }
}
