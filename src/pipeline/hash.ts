import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Digest } from '../manifests/schema.js';

/** A pass-through that measures size, md5 and sha256 of what flows through it, on the fly. */
export class HashingStream extends Transform {
  private readonly md5: Hash = createHash('md5');
  private readonly sha256: Hash = createHash('sha256');
  private size = 0;
  private result: Digest | undefined;

  /** `onBytes`: called with the running size after each chunk (job progress). */
  constructor(private readonly onBytes?: (size: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.md5.update(chunk);
    this.sha256.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(this.size);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = { size: this.size, md5: this.md5.digest('hex'), sha256: this.sha256.digest('hex') };
    callback();
  }

  /** Available once the stream has flushed. */
  digest(): Digest {
    if (!this.result) throw new Error('digest() called before the stream ended');
    return this.result;
  }
}
