import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { BackerError, type ErrorCode } from '../errors.js';

/**
 * Streaming line work on mysqldump output, with flat memory: only the lines whose start matches
 * one of `prefixes` (short statements such as `USE `shop`;`) are held whole and handed to
 * `line`; every other line (multi-megabyte INSERTs included) streams through untouched. In a
 * mysqldump file every line starts a statement, a column definition, a routine body line or one
 * row tuple `(…),` (newlines inside values are escaped as `\n`), so a data row can never look
 * like `USE …` or `CREATE DATABASE …`.
 */
export interface LineHooks {
  prefixes: readonly string[];
  /** A matching line without its newline → what to write instead ('' keeps only the newline). */
  line(text: string): string;
  /** Whether the other lines are dropped for now (a skipped section); their newlines are kept. */
  dropping(): boolean;
  /** Runs once after the last byte, before the stream ends; a rejection errors the stream. */
  end?(): Promise<void>;
}

const DECIDE_BYTES = 32;
const MAX_HELD = 1 << 20;
const MAX_PIECES = 4;

export class SqlLineFilter extends Transform {
  private held: Buffer[] = [];
  private heldSize = 0;
  /**
   * What one input chunk gives, pushed together: a dump is mostly short lines, and a push per
   * line costs far more than the bytes. Adjacent pieces of the same memory (the lines and
   * newlines of one chunk that pass untouched) are joined into one view (`run*`), so a chunk
   * that passes whole goes on as itself, without a copy.
   */
  private out: Buffer[] = [];
  private runMemory: ArrayBufferLike | null = null;
  private runOffset = 0;
  private runLength = 0;
  private mode: 'start' | 'pass' | 'hold' = 'start';
  private source: Readable | null = null;

  constructor(
    private readonly hooks: LineHooks,
    private readonly code: ErrorCode,
    private readonly component: string,
  ) {
    super();
  }

  /**
   * Pipes `input` in, but only once a consumer first reads: until then nothing of the input is
   * consumed, so an input that fails early fails when someone listens (not before the consumer
   * attached its error handlers). An error of `input` errors this stream.
   */
  pullFrom(input: Readable): this {
    this.source = input;
    return this;
  }

  override _read(size: number): void {
    const source = this.source;
    if (source !== null) {
      this.source = null;
      // The input may have failed before the first read (a hash check that failed at once):
      // then it never emits again, so its error is taken now.
      if (source.errored) {
        this.destroy(source.errored);
        return;
      }
      if (source.destroyed && !source.readableEnded) {
        this.destroy(new BackerError('RESTORE_FAILED', 'the restore input was closed before it was read', { component: 'source mysql' }));
        return;
      }
      source.once('error', (err) => this.destroy(err));
      source.pipe(this);
    }
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.process(chunk);
      this.pushOut();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.heldSize > 0 || this.mode === 'hold') this.finishLine(null);
      this.pushOut();
    } catch (err) {
      callback(err as Error);
      return;
    }
    const end = this.hooks.end?.() ?? Promise.resolve();
    end.then(() => callback(), (err: unknown) => callback(err as Error));
  }

  private output(bytes: Buffer): void {
    this.emitRange(bytes, 0, bytes.length);
  }

  /** Adds `buf[start, end)` to the output, extending the current run when it follows it in memory. */
  private emitRange(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const offset = buf.byteOffset + start;
    if (this.runMemory === buf.buffer && this.runOffset + this.runLength === offset) {
      this.runLength += end - start;
      return;
    }
    this.closeRun();
    this.runMemory = buf.buffer;
    this.runOffset = offset;
    this.runLength = end - start;
  }

  private closeRun(): void {
    if (this.runMemory === null) return;
    this.out.push(Buffer.from(this.runMemory, this.runOffset, this.runLength));
    this.runMemory = null;
  }

  /** A few pieces go on as they are; many small ones (rewritten lines) are joined with one copy. */
  private pushOut(): void {
    this.closeRun();
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    if (out.length <= MAX_PIECES) for (const piece of out) this.push(piece);
    else this.push(Buffer.concat(out));
  }

  private process(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(0x0a, pos);
      const end = nl === -1 ? chunk.length : nl;
      if (this.mode === 'pass') {
        if (!this.hooks.dropping()) this.emitRange(chunk, pos, end);
      } else {
        this.hold(chunk.subarray(pos, end));
      }
      if (nl === -1) {
        if (this.mode === 'start' && this.heldSize >= DECIDE_BYTES) this.decide();
        return;
      }
      // The newline is the chunk's own byte, so that it extends the run of the line before it.
      if (this.mode === 'pass') this.emitRange(chunk, nl, nl + 1);
      else this.finishLine(chunk.subarray(nl, nl + 1));
      this.mode = 'start';
      pos = nl + 1;
    }
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.held.push(bytes);
    this.heldSize += bytes.length;
    if (this.heldSize > MAX_HELD) {
      throw new BackerError(this.code, `a mysqldump line starting "${this.text().slice(0, 40)}" is longer than ${MAX_HELD} bytes`, { component: this.component });
    }
  }

  private text(): string {
    return Buffer.concat(this.held, this.heldSize).toString('utf8');
  }

  private matches(): boolean {
    const start = Buffer.concat(this.held, this.heldSize).subarray(0, DECIDE_BYTES).toString('utf8');
    return this.hooks.prefixes.some((p) => start.startsWith(p));
  }

  /** Enough of a line is known: hold it whole if it matches, else let it stream. */
  private decide(): void {
    if (this.matches()) {
      this.mode = 'hold';
      return;
    }
    if (!this.hooks.dropping()) for (const b of this.held) this.output(b);
    this.held = [];
    this.heldSize = 0;
    this.mode = 'pass';
  }

  private finishLine(newline: Buffer | null): void {
    if (this.mode === 'hold' || this.matches()) {
      const out = this.hooks.line(this.text());
      if (out.length > 0) this.output(Buffer.from(out, 'utf8'));
    } else if (!this.hooks.dropping()) {
      for (const b of this.held) this.output(b);
    }
    if (newline !== null) this.output(newline);
    this.held = [];
    this.heldSize = 0;
  }
}

/** `` `a``b` `` → ``a`b``. */
export function unquote(name: string): string {
  return name.replace(/``/g, '`');
}

/** A name as a quoted identifier. */
export function quote(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

const IDENT = '`((?:[^`]|``)+)`';
export const CURRENT_DATABASE = new RegExp(`^-- Current Database: ${IDENT}`);
export const CREATE_DATABASE = new RegExp(`^(CREATE DATABASE (?:/\\*!32312 IF NOT EXISTS\\*/ )?)${IDENT}(.*)$`);
export const USE_DATABASE = new RegExp(`^USE ${IDENT};`);
export const CREATE_TABLE = new RegExp(`^CREATE TABLE (?:IF NOT EXISTS )?${IDENT}`);

/** Databases a restore never drops or loads: the server's own. */
export const SYSTEM_DATABASES: ReadonlySet<string> = new Set(['mysql', 'sys', 'information_schema', 'performance_schema']);
