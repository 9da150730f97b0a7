import { Transform, type TransformCallback } from 'node:stream';
import { BackerError } from '../errors.js';
import { lastLines } from './docker-exec.js';
import { COMPONENT } from './redis-conn.js';
import { RdbKeyCounter, type KeyCounts } from './redis-rdb-keys.js';

const MAGIC = /^REDIS(\d{4})$/;
/** An RDB ends with the EOF opcode 0xFF and an 8-byte CRC64 (zeros when checksums are off). */
const EOF_OPCODE = 0xff;
const CHECKSUM_SIZE = 8;
const HEADER_SIZE = 9;
/**
 * With diskless replication (the default since Redis 7.0) the server ends the transfer with a
 * 40-character hex mark. redis-cli removes it with ftruncate() from a file, which it cannot do
 * on stdout, so `--rdb -` leaves it after the RDB; the verifier strips it.
 */
const EOF_MARK_SIZE = 40;
const HOLD = 1 + CHECKSUM_SIZE + EOF_MARK_SIZE;

/** The RDB format version of a header (`REDIS0011` → 11), or null when it is not an RDB header. */
export function rdbVersion(head: Buffer): number | null {
  const m = MAGIC.exec(head.subarray(0, HEADER_SIZE).toString('latin1'));
  return m ? Number(m[1]) : null;
}

/**
 * The newest RDB format a Redis server loads, from its version; null when this table does not
 * know the version (newer than it, or Valkey, whose redis_version is fixed): the caller then
 * compares major versions only.
 */
export function newestRdbFor(version: string): number | null {
  const [major = NaN, minor = NaN] = version.split('.').map(Number);
  const table: [number, number, number][] = [
    // [major, minor, rdb]: the first entry at or below the version applies.
    [7, 4, 12],
    [7, 2, 11],
    [7, 0, 10],
    [5, 0, 9],
    [4, 0, 8],
    [3, 2, 7],
    [2, 6, 6],
  ];
  if (Number.isNaN(major) || Number.isNaN(minor) || major >= 8) return null;
  return table.find(([a, b]) => major > a || (major === a && minor >= b))?.[2] ?? null;
}

/** How many of the held-back last bytes belong to the RDB, or null when it does not end like one. */
export function rdbLength(tail: Buffer): number | null {
  const n = tail.length;
  if (n >= 1 + CHECKSUM_SIZE && tail[n - 1 - CHECKSUM_SIZE] === EOF_OPCODE) return n;
  // The mark is hex, so it never holds the 0xFF above: the two cases cannot be confused.
  if (n >= HOLD && tail[n - HOLD] === EOF_OPCODE && /^[0-9a-f]{40}$/.test(tail.subarray(n - EOF_MARK_SIZE).toString('latin1'))) {
    return n - EOF_MARK_SIZE;
  }
  return null;
}

/**
 * Passes bytes through while holding back the last `hold`, and keeps the first 9 (the header).
 * `finish` decides at the end, with the held-back tail, what is pushed or why the stream fails.
 */
abstract class RdbCheck extends Transform {
  protected head = Buffer.alloc(0);
  protected tail = Buffer.alloc(0);
  protected total = 0;

  constructor(private readonly hold: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.total += chunk.length;
    if (this.head.length < HEADER_SIZE) this.head = Buffer.concat([this.head, chunk.subarray(0, HEADER_SIZE - this.head.length)]);
    if (chunk.length >= this.hold) {
      // A large chunk: no copy of it, only of its last bytes.
      if (this.tail.length > 0) this.push(this.tail);
      if (chunk.length > this.hold) this.push(chunk.subarray(0, chunk.length - this.hold));
      this.tail = Buffer.from(chunk.subarray(chunk.length - this.hold));
    } else {
      const all = Buffer.concat([this.tail, chunk]);
      if (all.length > this.hold) this.push(all.subarray(0, all.length - this.hold));
      this.tail = all.length > this.hold ? all.subarray(all.length - this.hold) : all;
    }
    callback();
  }
}

/**
 * The dump side: ends only if redis-cli exited 0, the stream starts with the `REDIS` magic and
 * ends with the EOF opcode and checksum (the diskless EOF mark stripped).
 */
export class RdbVerifier extends RdbCheck {
  private readonly counter = new RdbKeyCounter();

  constructor(
    private readonly result: () => Promise<{ exitCode: number; stderr: string }>,
    private readonly container: string,
  ) {
    super(HOLD);
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, callback: TransformCallback): void {
    // Bytes after the EOF opcode (checksum, diskless EOF mark) are ignored by the counter.
    this.counter.push(chunk);
    super._transform(chunk, enc, callback);
  }

  /** Keys per database counted in the stream, once it has ended; null with the reason when they could not be. */
  keyCounts(): { counts: KeyCounts | null; why: string | null } {
    return { counts: this.counter.counts(), why: this.counter.why() };
  }

  /** The RDB format version of the header, once the stream has ended. */
  version(): number | null {
    return rdbVersion(this.head);
  }

  override _flush(callback: TransformCallback): void {
    const fail = (code: 'DUMP_FAILED' | 'DUMP_TRUNCATED', message: string, details: Record<string, unknown> = {}): void =>
      callback(new BackerError(code, message, { component: COMPONENT, details: { container: this.container, ...details } }));
    this.result().then(
      ({ exitCode, stderr }) => {
        const length = rdbLength(this.tail);
        if (exitCode !== 0) {
          const reason = lastLines(stderr);
          fail('DUMP_FAILED', `redis-cli --rdb in container ${this.container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, { exit_code: exitCode });
        } else if (this.total === 0) {
          fail('DUMP_TRUNCATED', `redis-cli --rdb in container ${this.container} produced no data`);
        } else if (rdbVersion(this.head) === null) {
          fail('DUMP_FAILED', `the dump from container ${this.container} does not start with the REDIS magic: it is not an RDB file`);
        } else if (length === null || this.total - this.tail.length + length < HEADER_SIZE + 1 + CHECKSUM_SIZE) {
          fail('DUMP_TRUNCATED', `the RDB from container ${this.container} does not end with the EOF opcode and checksum: the dump is incomplete`, { size: this.total });
        } else {
          this.push(this.tail.subarray(0, length));
          callback();
        }
      },
      (err: unknown) => callback(err as Error),
    );
  }
}

/**
 * The restore side: the input must be a whole RDB (magic, EOF opcode and checksum at the end)
 * in a format the destination loads (`newest`, null: not checked); otherwise the stream errors
 * with RESTORE_FAILED before its end, so the file it feeds is never put in place.
 */
export class RdbInputCheck extends RdbCheck {
  constructor(
    private readonly container: string,
    private readonly newest: number | null,
  ) {
    super(1 + CHECKSUM_SIZE);
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, callback: TransformCallback): void {
    const before = this.head.length;
    super._transform(chunk, enc, (err) => {
      if (err || before >= HEADER_SIZE || this.head.length < HEADER_SIZE) return callback(err);
      const problem = this.headProblem();
      callback(problem === null ? null : this.failure(problem));
    });
  }

  private headProblem(): string | null {
    const version = rdbVersion(this.head);
    if (version === null) return 'the backup does not start with the REDIS magic: it is not an RDB file';
    if (this.newest !== null && version > this.newest) {
      return `the backup is an RDB of format ${version}, newer than the redis server in container ${this.container} loads (${this.newest}): restore into a server at least as new as the one backed up`;
    }
    return null;
  }

  private failure(message: string): BackerError {
    return new BackerError('RESTORE_FAILED', message, { component: COMPONENT, details: { container: this.container } });
  }

  override _flush(callback: TransformCallback): void {
    if (this.head.length < HEADER_SIZE) return callback(this.failure(`the backup holds ${this.total} bytes: too short for an RDB file`));
    if (this.tail[0] !== EOF_OPCODE) return callback(this.failure('the backup does not end with the RDB EOF opcode and checksum: it is incomplete'));
    this.push(this.tail);
    callback();
  }
}
