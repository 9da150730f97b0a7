import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The one tar reader of Backer (ustar, GNU long names, pax headers), used by the files and the
 * volume sources alike: it sees every member while the bytes flow, hashes regular files for the
 * tree statistics, and can refuse a member before its header is passed on (so an extracting tar
 * never sees it). Paths are kept as latin1 strings (one character per byte), so names that are
 * not UTF-8 hash and compare exactly, and both sources compute the same `tree_sha256`.
 */

export interface TarEntry {
  /** Relative path without `./` and trailing `/`; '' for the archive's root (`./`). */
  path: string;
  /** The raw name as stored, for messages and safety checks. */
  raw: string;
  /** Typeflag: '0' file, '1' hard link, '2' symlink, '3'/'4' devices, '5' directory, '6' fifo … */
  type: string;
  size: number;
  linkpath: string;
}

/** What a drill compares for files and volumes (`stats` of the manifest): counts, bytes, and one hash over every regular file. */
export interface TreeStats {
  files: number;
  bytes: number;
  /** sha256 over the byte-sorted `path NUL size NUL sha256 LF` lines of every regular file, paths as raw bytes. */
  tree_sha256: string;
}

/** Collects `path NUL size NUL sha256 LF` per regular file; the tree hash is over the sorted lines. */
export class TreeHasher {
  private readonly files = new Map<string, { size: number; sha256: string }>();

  /** `path` is a latin1 byte string (one character per byte of the name). */
  add(path: string, size: number, sha256: string): void {
    this.files.set(path, { size, sha256 });
  }

  /** A hard link is a regular file with its target's content (as `find -type f` sees it). */
  link(path: string, target: string): void {
    const known = this.files.get(target);
    if (known !== undefined) this.files.set(path, known);
  }

  stats(): TreeStats {
    const hash = createHash('sha256');
    let bytes = 0;
    // Latin1 strings sort by code unit, that is by byte: the order of the raw names.
    for (const path of [...this.files.keys()].sort()) {
      const { size, sha256 } = this.files.get(path) as { size: number; sha256: string };
      bytes += size;
      hash.update(Buffer.from(`${path}\0${size}\0${sha256}\n`, 'latin1'));
    }
    return { files: this.files.size, bytes, tree_sha256: hash.digest('hex') };
  }
}

const BLOCK = 512;
/** Long names and pax records are read into memory: bounded. */
const MAX_META = 1 << 20;
const REGULAR = new Set(['0', '\0', '7']);

export function normalizeMember(raw: string): string {
  return raw.replace(/^(\.\/+)+/, '').replace(/^\.$/, '').replace(/\/+$/, '');
}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('latin1');
}

function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    // GNU base-256 for sizes of 8 GiB and more.
    let value = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0);
  return numeric(block, 148, 8) === sum;
}

/** `len key=value\n` records; values are UTF-8, returned as latin1 byte strings like the rest. */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (space === -1 || !Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.subarray(0, eq).toString('latin1'), record.subarray(eq + 1).toString('latin1'));
    at += length;
  }
  return out;
}

export class TarError extends Error {}

/**
 * The parser, fed synchronously chunk by chunk (`push`): for a stream, wrap it in a TarScanner.
 * `onEntry` may throw to refuse a member; `tree` receives every regular file and hard link.
 */
export class TarReader {
  /** True once the end-of-archive marker (two zero blocks) went through; what follows is record padding. */
  ended = false;
  private pending = Buffer.alloc(0);
  private zeros = 0;
  private remaining = 0;
  private padding = 0;
  private entry: TarEntry | undefined;
  private hash: Hash | undefined;
  private meta: { type: string; chunks: Buffer[]; size: number } | undefined;
  private next: { path?: string; linkpath?: string; size?: number } = {};

  constructor(
    private readonly onEntry: (entry: TarEntry) => void = () => undefined,
    private readonly tree: TreeHasher | undefined = undefined,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        this.body(chunk.subarray(at, at + take));
        this.remaining -= take;
        at += take;
        if (this.remaining === 0) this.finishBody();
        continue;
      }
      if (this.padding > 0) {
        const skip = Math.min(this.padding, chunk.length - at);
        this.padding -= skip;
        at += skip;
        continue;
      }
      const take = Math.min(BLOCK - this.pending.length, chunk.length - at);
      this.pending = Buffer.concat([this.pending, chunk.subarray(at, at + take)]);
      at += take;
      if (this.pending.length === BLOCK) {
        const block = this.pending;
        this.pending = Buffer.alloc(0);
        this.header(block);
      }
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      if (++this.zeros === 2) this.ended = true;
      return;
    }
    this.zeros = 0;
    if (!checksumOk(block)) throw new TarError('the archive is not a tar stream (a header checksum is wrong)');
    const type = String.fromCharCode(block[156] ?? 0);
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      const size = numeric(block, 124, 12);
      if (size > MAX_META) throw new TarError(`a tar ${type} header of ${size} bytes is too large`);
      this.meta = { type, chunks: [], size };
      this.expect(size);
      return;
    }
    const size = this.next.size ?? numeric(block, 124, 12);
    const prefix = block.subarray(257, 263).toString('latin1') === 'ustar\0' ? cString(block, 345, 155) : '';
    const name = cString(block, 0, 100);
    const raw = this.next.path ?? (prefix ? `${prefix}/${name}` : name);
    const entry: TarEntry = { path: normalizeMember(raw), raw, type, size: REGULAR.has(type) ? size : 0, linkpath: this.next.linkpath ?? cString(block, 157, 100) };
    this.next = {};
    this.onEntry(entry);
    if (REGULAR.has(type)) {
      this.entry = entry;
      this.hash = createHash('sha256');
    } else if (type === '1' && entry.path !== '') {
      this.tree?.link(entry.path, normalizeMember(entry.linkpath));
    }
    this.expect(REGULAR.has(type) ? size : type === '5' || type === '2' || type === '1' ? 0 : size);
    if (this.remaining === 0) this.finishBody();
  }

  private expect(size: number): void {
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
  }

  private body(data: Buffer): void {
    if (this.meta !== undefined) this.meta.chunks.push(data);
    else this.hash?.update(data);
  }

  private finishBody(): void {
    if (this.meta !== undefined) {
      const { type, chunks } = this.meta;
      this.meta = undefined;
      const data = Buffer.concat(chunks);
      if (type === 'L') this.next.path = cString(data, 0, data.length);
      else if (type === 'K') this.next.linkpath = cString(data, 0, data.length);
      else if (type === 'x') this.applyPax(paxRecords(data));
      return;
    }
    if (this.entry !== undefined && this.hash !== undefined && this.entry.path !== '') this.tree?.add(this.entry.path, this.entry.size, this.hash.digest('hex'));
    this.entry = undefined;
    this.hash = undefined;
  }

  private applyPax(records: Map<string, string>): void {
    const path = records.get('path');
    const linkpath = records.get('linkpath');
    const size = records.get('size');
    if (path !== undefined) this.next.path = path;
    if (linkpath !== undefined) this.next.linkpath = linkpath;
    if (size !== undefined) this.next.size = Number(size);
  }
}

/** A pass-through stream that reads the tar going through it; a refused member or a broken header errors it. */
export class TarScanner extends Transform {
  private readonly reader: TarReader;

  constructor(onEntry?: (entry: TarEntry) => void, tree?: TreeHasher) {
    super();
    this.reader = new TarReader(onEntry, tree);
  }

  /** True once the end-of-archive marker (two zero blocks) went through. */
  get ended(): boolean {
    return this.reader.ended;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.reader.push(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback(null, chunk);
  }
}
