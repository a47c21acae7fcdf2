/**
 * A fenced endpoint: the host side of a grant, which stops accepting writes
 * the moment its grant is revoked (DESIGN rule 8). Reads still pass, so a
 * pass in flight can wind down; every write after the fence closes fails
 * with a SessionHalt.
 */

import type { CommitOptions, CommitResult, Endpoint, FileToRead, Listing, ReadBatch, ScanItem, Staged, WatchHint } from '../core/endpoint.js';
import type { Entry, FileEntry, Hash, Side } from '../core/entry.js';
import { SessionHalt, asError } from '../core/errors.js';

export class FencedEndpoint implements Endpoint {
  readonly side: Side;
  readonly label: string;
  readonly trusted: boolean;

  constructor(
    private readonly inner: Endpoint,
    /** Whether writes are still allowed. */
    private readonly open: () => boolean,
    private readonly why: string,
  ) {
    this.side = inner.side;
    this.label = inner.label;
    this.trusted = inner.trusted;
  }

  private check(): void {
    if (!this.open()) throw new SessionHalt(this.why);
  }

  prepare(): Promise<void> {
    return this.inner.prepare();
  }
  list(path: string, expect?: number): Promise<Listing> {
    return this.inner.list(path, expect);
  }
  unchanged(dirs: readonly string[], digests: readonly number[]): Promise<boolean[]> | undefined {
    return this.inner.unchanged?.(dirs, digests);
  }
  sweep(): Promise<void> {
    return this.inner.sweep();
  }
  hash(item: ScanItem): Promise<Hash> {
    return this.inner.hash(item);
  }
  read(path: string, entry: FileEntry): AsyncIterable<Uint8Array> {
    return this.inner.read(path, entry);
  }
  async stage(path: string, content: AsyncIterable<Uint8Array>, expectedSize: number): Promise<Staged> {
    this.check();
    return this.inner.stage(path, content, expectedSize);
  }
  readMany(files: readonly FileToRead[]): Promise<ReadBatch> | undefined {
    return this.inner.readMany?.(files);
  }
  async discard(staged: Staged): Promise<void> {
    return this.inner.discard(staged);
  }
  async commit(staged: Staged, expect: Entry | undefined, options: CommitOptions): Promise<CommitResult> {
    if (!this.open()) {
      await this.inner.discard(staged);
      throw new SessionHalt(this.why);
    }
    return this.inner.commit(staged, expect, options);
  }
  async commitNew(staged: readonly Staged[]): Promise<(CommitResult | Error)[]> {
    if (!this.open()) {
      await Promise.all(staged.map((s) => this.inner.discard(s)));
      const halt = new SessionHalt(this.why);
      return staged.map(() => halt);
    }
    if (this.inner.commitNew !== undefined) return this.inner.commitNew(staged);
    return Promise.all(staged.map((s) => this.inner.commit(s, undefined, { stripExec: true }).catch(asError)));
  }
  async mkdir(path: string, expect: Entry | undefined): Promise<void> {
    this.check();
    return this.inner.mkdir(path, expect);
  }
  async removeFile(path: string, expect: FileEntry): Promise<void> {
    this.check();
    return this.inner.removeFile(path, expect);
  }
  async removeDir(path: string): Promise<void> {
    this.check();
    return this.inner.removeDir(path);
  }
  async move(path: string, to: string, expect: Entry): Promise<void> {
    this.check();
    return this.inner.move(path, to, expect);
  }
  inspect(path: string): Promise<Entry | undefined> {
    return this.inner.inspect(path);
  }
  exists(path: string): Promise<boolean> {
    return this.inner.exists(path);
  }
  barrier(): Promise<void> {
    return this.inner.barrier();
  }
  watch(onHint: (hint: WatchHint) => void, only?: string): Promise<() => Promise<void>> {
    if (this.inner.watch === undefined) throw new SessionHalt(`${this.label} cannot be watched`);
    return this.inner.watch(onHint, only);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
