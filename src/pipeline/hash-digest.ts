import { createHash, type Hash } from 'node:crypto';
import { BackerError } from '../errors.js';
import type { Digest } from '../manifests/schema.js';
import { openHashSession, type HashSession } from './hash-pool.js';

/** Bytes copied per message to the hash thread (fewer, larger messages: each wakes the thread). */
export const HASH_BATCH = 1024 * 1024;
/** Bytes handed to the hash thread and not hashed yet, at most (then the stream waits): memory stays flat. */
const IN_FLIGHT_LIMIT = 3 * HASH_BATCH;
const COMPONENT = 'hash';

/**
 * `BACKER_INTERNAL_HASH_THREAD=off` hashes on the main thread as before (bench baseline); not a
 * user setting. Read per digest, so a benchmark can alternate in one process.
 */
function threadEnabled(): boolean {
  return process.env.BACKER_INTERNAL_HASH_THREAD !== 'off';
}

/**
 * Size, md5 and sha256 of a byte stream, computed on a hash thread (hash-pool.ts) instead of the
 * event loop. Bytes are copied into 1 MiB slots of shared memory (SharedArrayBuffer), allocated
 * once per stream and reused: a message per batch names the slot, nothing is transferred or
 * allocated per batch (a buffer transferred back and forth counts as new external memory each
 * time, and that drives V8 into full collections of the whole heap). At most 3 MiB may wait there: `update` then answers false and the caller
 * waits (`whenReady`), so a slow hash slows the stream rather than grow memory. A stream that ends
 * before its first batch is full (tiny dumps) is hashed on the main thread and never starts one.
 */
export class StreamDigest {
  private size = 0;
  private readonly local: { md5: Hash; sha256: Hash } | undefined;
  private session: HashSession | undefined;
  /** The slots of shared memory; `shared[i]`: the thread has slot i's memory already. */
  private readonly slots: Uint8Array[] = [];
  private readonly shared: boolean[] = [];
  private readonly free: number[] = [];
  /** The slot being filled, -1 for none. */
  private current = -1;
  private batchLength = 0;
  private inFlight = 0;
  private wake: ((err?: Error) => void) | undefined;
  private failure: Error | undefined;

  /** `onError`: the hash thread failed while nobody waited on `whenReady` or `finish`. */
  constructor(private readonly onError: (err: Error) => void) {
    this.local = threadEnabled() ? undefined : { md5: createHash('md5'), sha256: createHash('sha256') };
  }

  /** Takes a copy of `chunk` (the caller may pass it on at once); false: wait for `whenReady` before the next. */
  update(chunk: Uint8Array): boolean {
    this.size += chunk.length;
    if (this.local) {
      this.local.md5.update(chunk);
      this.local.sha256.update(chunk);
      return true;
    }
    if (this.failure) return false;
    this.copyIn(chunk);
    return this.inFlight <= IN_FLIGHT_LIMIT;
  }

  /** Calls back once the thread caught up (or failed: with the error). */
  whenReady(callback: (err?: Error) => void): void {
    if (this.failure || this.inFlight <= IN_FLIGHT_LIMIT) return callback(this.failure);
    this.wake = callback;
  }

  /** The digest of every byte given to `update`, in order. */
  async finish(): Promise<Digest> {
    if (this.failure) throw this.failure;
    if (this.local) return { size: this.size, md5: this.local.md5.digest('hex'), sha256: this.local.sha256.digest('hex') };
    if (!this.session) {
      // Everything fits in the first batch: hashing it here is cheaper than starting a thread.
      const bytes = this.current === -1 ? new Uint8Array(0) : (this.slots[this.current] as Uint8Array).subarray(0, this.batchLength);
      return { size: this.size, md5: createHash('md5').update(bytes).digest('hex'), sha256: createHash('sha256').update(bytes).digest('hex') };
    }
    if (this.batchLength > 0) this.sendBatch();
    const digest = await this.session.end();
    this.session = undefined;
    if (digest.size !== this.size) {
      throw new BackerError('INTERNAL', `the hash thread hashed ${digest.size} bytes of ${this.size}`, { component: COMPONENT });
    }
    return digest;
  }

  /** Abandons the digest (the stream was destroyed); ends the thread's session. Idempotent. */
  drop(): void {
    this.session?.drop();
    this.session = undefined;
    this.wake = undefined;
  }

  private copyIn(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current === -1) this.current = this.free.pop() ?? this.newSlot();
      const n = Math.min(HASH_BATCH - this.batchLength, chunk.length - offset);
      (this.slots[this.current] as Uint8Array).set(chunk.subarray(offset, offset + n), this.batchLength);
      this.batchLength += n;
      offset += n;
      if (this.batchLength === HASH_BATCH) this.sendBatch();
    }
  }

  /** A new slot: four serve a stream (three in flight, one filling); more only for a chunk larger than what is free. */
  private newSlot(): number {
    this.slots.push(new Uint8Array(new SharedArrayBuffer(HASH_BATCH)));
    this.shared.push(false);
    return this.slots.length - 1;
  }

  private sendBatch(): void {
    const slot = this.current;
    if (slot === -1) return;
    this.session ??= openHashSession({ onAck: (s, length) => this.acked(s, length), onError: (err) => this.failed(err) });
    this.inFlight += this.batchLength;
    const memory = this.shared[slot] === true ? undefined : ((this.slots[slot] as Uint8Array).buffer as SharedArrayBuffer);
    this.shared[slot] = true;
    this.session.send(slot, this.batchLength, memory);
    this.current = -1;
    this.batchLength = 0;
  }

  private acked(slot: number, length: number): void {
    this.inFlight -= length;
    this.free.push(slot);
    if (this.inFlight <= IN_FLIGHT_LIMIT) this.release();
  }

  private failed(err: Error): void {
    this.failure = err;
    this.session = undefined;
    if (this.wake) this.release();
    else this.onError(err);
  }

  private release(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.(this.failure);
  }
}
