import { Transform, type TransformCallback } from 'node:stream';

/** What a backup's stages hand each other at least (but the last chunk). */
export const COALESCE_BYTES = 256 * 1024;

/**
 * Joins small chunks into chunks of `size` bytes, with one copy; a chunk of that size or more
 * passes whole when nothing is pending. Sources hand out what each read gives (a Docker exec's
 * frames, a program's pipe reads: 4–30 KiB), and every stage after them pays per chunk: a zlib
 * job on the thread pool and its wake-ups, a message to the hash thread, a write to a program's
 * stdin or a file. Fewer, larger chunks make that cost per byte small. Memory stays flat: at most
 * one partly filled chunk is held.
 */
export class Coalescer extends Transform {
  private pending: Buffer | null = null;
  private fill = 0;

  constructor(private readonly size = COALESCE_BYTES) {
    super({ readableHighWaterMark: size, writableHighWaterMark: size });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.fill === 0 && chunk.length >= this.size) {
      this.push(chunk);
      callback();
      return;
    }
    let pos = 0;
    while (pos < chunk.length) {
      this.pending ??= Buffer.allocUnsafeSlow(this.size);
      const copied = chunk.copy(this.pending, this.fill, pos);
      this.fill += copied;
      pos += copied;
      if (this.fill === this.size) this.pushPending();
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.pushPending();
    callback();
  }

  private pushPending(): void {
    if (this.pending === null || this.fill === 0) return;
    const out = this.fill === this.size ? this.pending : this.pending.subarray(0, this.fill);
    this.pending = null;
    this.fill = 0;
    this.push(out);
  }
}
