/**
 * Counts the keys per database of an RDB stream as it passes, without keeping it: each value
 * is skipped by its encoding. The counts are those of the snapshot itself (the server's fork),
 * so a drill can compare them exactly with DBSIZE after loading. A format this reader does not
 * know (streams newer than v3, hashes with field expiry, pre-GA module values) ends the count
 * (`counts()` then gives null) and never the dump.
 */

/** What the reader asks for next: bytes to read, or bytes to pass over. */
type Need = { read: number } | { skip: number };
type Reader<T> = Generator<Need, T, Buffer>;

export interface KeyCounts {
  /** `db0` → keys in the RDB. */
  keys: Record<string, number>;
  /** `db0` → of those, keys with an expiry. */
  keys_with_ttl: Record<string, number>;
}

class Unsupported extends Error {}

function* read(n: number): Reader<Buffer> {
  return yield { read: n };
}

function* skip(n: number): Reader<void> {
  if (n > 0) yield { skip: n };
}

/** A length, or the special-encoding number of a string (`11xxxxxx`). */
function* lengthOrSpecial(): Reader<{ length: number; special: number | null }> {
  const first = (yield* read(1))[0] ?? 0;
  const kind = first >> 6;
  if (kind === 0) return { length: first & 0x3f, special: null };
  if (kind === 1) return { length: ((first & 0x3f) << 8) | ((yield* read(1))[0] ?? 0), special: null };
  if (kind === 3) return { length: 0, special: first & 0x3f };
  if (first === 0x80) return { length: (yield* read(4)).readUInt32BE(0), special: null };
  if (first === 0x81) return { length: Number((yield* read(8)).readBigUInt64BE(0)), special: null };
  throw new Unsupported(`length encoding 0x${first.toString(16)}`);
}

function* length(): Reader<number> {
  const l = yield* lengthOrSpecial();
  if (l.special !== null) throw new Unsupported('an encoded value where a length belongs');
  return l.length;
}

function* skipString(): Reader<void> {
  const l = yield* lengthOrSpecial();
  if (l.special === null) return yield* skip(l.length);
  if (l.special <= 2) return yield* skip(1 << l.special); // int8, int16, int32
  if (l.special !== 3) throw new Unsupported(`string encoding ${l.special}`);
  const compressed = yield* length(); // LZF: compressed length, original length, data
  yield* length();
  yield* skip(compressed);
}

function* repeat(times: number, item: () => Reader<unknown>): Reader<void> {
  for (let i = 0; i < times; i++) yield* item();
}

/** Module values carry type annotations (opcode, value) until the EOF opcode 0. */
function* skipModuleData(): Reader<void> {
  for (;;) {
    const opcode = yield* length();
    if (opcode === 0) return;
    if (opcode === 1 || opcode === 2) yield* length();
    else if (opcode === 3) yield* skip(4);
    else if (opcode === 4) yield* skip(8);
    else if (opcode === 5) yield* skipString();
    else throw new Unsupported(`module opcode ${opcode}`);
  }
}

/** Streams v1..v3 (RDB_TYPE_STREAM_LISTPACKS, _2, _3). */
function* skipStream(version: number): Reader<void> {
  yield* repeat(yield* length(), function* () {
    yield* skipString();
    yield* skipString();
  });
  yield* repeat(version >= 2 ? 8 : 3, length); // length, last id; first id, max deleted id, entries added
  yield* repeat(yield* length(), function* () {
    yield* skipString(); // group name
    yield* repeat(version >= 2 ? 3 : 2, length); // last id, entries read
    yield* repeat(yield* length(), function* () {
      yield* skip(16 + 8); // entry id, delivery time
      yield* length(); // delivery count
    });
    yield* repeat(yield* length(), function* () {
      yield* skipString(); // consumer name
      yield* skip(version >= 3 ? 16 : 8); // seen time, active time
      yield* repeat(yield* length(), () => skip(16));
    });
  });
}

function* skipDouble(): Reader<void> {
  const n = (yield* read(1))[0] ?? 0;
  if (n < 253) yield* skip(n); // 253..255: NaN, +inf, -inf
}

function* skipValue(type: number): Reader<void> {
  if (type === 0 || (type >= 9 && type <= 13) || type === 16 || type === 17 || type === 20) return yield* skipString();
  if (type === 1 || type === 2 || type === 14) return yield* repeat(yield* length(), skipString);
  if (type === 3) {
    return yield* repeat(yield* length(), function* () {
      yield* skipString();
      yield* skipDouble();
    });
  }
  if (type === 4) return yield* repeat(2 * (yield* length()), skipString);
  if (type === 5) {
    return yield* repeat(yield* length(), function* () {
      yield* skipString();
      yield* skip(8);
    });
  }
  if (type === 7) {
    yield* length(); // module id
    return yield* skipModuleData();
  }
  if (type === 18) {
    return yield* repeat(yield* length(), function* () {
      yield* length(); // container
      yield* skipString();
    });
  }
  if (type === 15 || type === 19 || type === 21) return yield* skipStream(type === 15 ? 1 : type === 19 ? 2 : 3);
  throw new Unsupported(`value type ${type}`);
}

/** Reads opcodes and key/value pairs up to the EOF opcode. */
function* rdbKeys(): Reader<KeyCounts> {
  const header = (yield* read(9)).toString('latin1');
  if (!/^REDIS\d{4}$/.test(header)) throw new Unsupported('no RDB header');
  const counts: KeyCounts = { keys: {}, keys_with_ttl: {} };
  let db = 'db0';
  let expiring = false;
  for (;;) {
    const op = (yield* read(1))[0] ?? 0;
    if (op === 0xff) return counts;
    if (op === 0xfa) yield* repeat(2, skipString); // AUX
    else if (op === 0xfe) db = `db${yield* length()}`; // SELECTDB
    else if (op === 0xfb) yield* repeat(2, length); // RESIZEDB
    else if (op === 0xfc || op === 0xfd) {
      yield* skip(op === 0xfc ? 8 : 4); // EXPIRETIME_MS, EXPIRETIME
      expiring = true;
    } else if (op === 0xf9) yield* skip(1); // FREQ
    else if (op === 0xf8) yield* length(); // IDLE
    else if (op === 0xf5) yield* skipString(); // FUNCTION2
    else if (op === 0xf4) yield* repeat(3, length); // SLOT_INFO
    else if (op === 0xf7) {
      yield* repeat(3, length); // MODULE_AUX: module id, when opcode, when
      yield* skipModuleData();
    } else {
      yield* skipString(); // the key
      yield* skipValue(op);
      counts.keys[db] = (counts.keys[db] ?? 0) + 1;
      counts.keys_with_ttl[db] = (counts.keys_with_ttl[db] ?? 0) + (expiring ? 1 : 0);
      expiring = false;
    }
  }
}

/** Feed it the RDB's bytes in order; `counts()` once the stream ended. */
export class RdbKeyCounter {
  private readonly reader = rdbKeys();
  private need: Need | undefined;
  private partial: Buffer[] = [];
  private partialLength = 0;
  private result: KeyCounts | null = null;
  private failure: string | null = null;
  private done = false;

  constructor() {
    this.step(Buffer.alloc(0));
  }

  /** The counts when the reader came to the EOF opcode; null when it did not (or gave up). */
  counts(): KeyCounts | null {
    return this.result;
  }

  /** Why there are no counts, when the reader gave up (for the log). */
  why(): string | null {
    return this.failure ?? (this.done ? null : 'the RDB ended before its EOF opcode');
  }

  private step(value: Buffer): void {
    try {
      const next = this.reader.next(value);
      if (next.done) {
        this.result = next.value;
        this.done = true;
      } else this.need = next.value;
    } catch (err) {
      // A format this reader does not know: no counts (the dump falls back to INFO), the dump goes on.
      this.done = true;
      this.failure = err instanceof Unsupported ? `unsupported RDB content: ${err.message}` : `cannot count the keys: ${String(err)}`;
    }
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (!this.done && offset < chunk.length && this.need !== undefined) {
      const need = this.need;
      if ('skip' in need) {
        const take = Math.min(need.skip, chunk.length - offset);
        offset += take;
        if (take === need.skip) this.step(Buffer.alloc(0));
        else this.need = { skip: need.skip - take };
        continue;
      }
      const take = Math.min(need.read - this.partialLength, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      offset += take;
      if (this.partialLength === 0 && take === need.read) {
        this.step(piece);
        continue;
      }
      this.partial.push(Buffer.from(piece));
      this.partialLength += take;
      if (this.partialLength === need.read) {
        const whole = Buffer.concat(this.partial);
        this.partial = [];
        this.partialLength = 0;
        this.step(whole);
      }
    }
  }
}
