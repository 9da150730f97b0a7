import { Transform, type TransformCallback } from 'node:stream';
import type { Digest } from '../manifests/schema.js';
import { StreamDigest } from './hash-digest.js';

/**
 * A pass-through that measures size, md5 and sha256 of what flows through it, on the fly.
 * The digests are computed on a hash thread (hash-digest.ts), not on the event loop; each chunk
 * goes downstream at once, and the stream waits only when the thread is 3 MiB behind. Progress
 * (`onBytes`) is reported on the main thread, per chunk.
 */
export class HashingStream extends Transform {
  private size = 0;
  private result: Digest | undefined;
  private readonly hash = new StreamDigest((err) => this.destroy(err));

  /** `onBytes`: called with the running size after each chunk (job progress). */
  constructor(private readonly onBytes?: (size: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    this.onBytes?.(this.size);
    const ready = this.hash.update(chunk);
    this.push(chunk);
    if (ready) callback();
    else this.hash.whenReady(callback);
  }

  override _flush(callback: TransformCallback): void {
    this.hash.finish().then(
      (digest) => {
        this.result = digest;
        callback();
      },
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.hash.drop();
    callback(err);
  }

  /** Available once the stream has flushed. */
  digest(): Digest {
    if (!this.result) throw new Error('digest() called before the stream ended');
    return this.result;
  }
}
