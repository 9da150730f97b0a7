import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** What a drill compares: the regular files of a volume backup (`source.stats` of its manifest). */
export interface VolumeStats {
  files: number;
  bytes: number;
  /** sha256 over the sorted `path NUL size NUL sha256 LF` lines of every regular file. */
  tree_sha256: string;
}

interface Entry {
  size: number;
  sha256: string;
}

const BLOCK = 512;
/** Long names and pax headers larger than this are not believed (a corrupt stream). */
const META_LIMIT = 1 << 20;

/** A header's path: ustar prefix + name, without `./` in front or `/` behind. */
export function normalizeTarPath(path: string): string {
  let p = path.replace(/\/+$/, '');
  while (p.startsWith('./')) p = p.slice(2);
  return p.replace(/^\/+/, '') || '.';
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** Octal, or GNU base-256 (first byte 0x80) for sizes of 8 GiB and more. */
function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = (field[0] ?? 0) & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const digits = field.toString('latin1').replace(/[\0 ]+$/, '').trim();
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** pax extended header records: `LEN key=value\n`. */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const length = parseInt(data.subarray(pos, space).toString('latin1'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return out;
}

type Phase = { kind: 'header' } | { kind: 'data'; left: number; pad: number; hash?: Hash; meta?: Buffer[]; metaType?: string; path?: string; size?: number } | { kind: 'end' };

/**
 * Computes VolumeStats from a tar stream as it passes (ustar, GNU long names, pax headers), in
 * process and streaming: only the per-file lines are kept, to be sorted at the end. Hard links
 * count as the regular file they link to, as `find -type f` sees them.
 */
export class TarStatsParser {
  private pending: Buffer = Buffer.alloc(0);
  private phase: Phase = { kind: 'header' };
  private readonly entries = new Map<string, Entry>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private pax = new Map<string, string>();

  push(chunk: Buffer): void {
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    while (data.length > 0 && this.phase.kind !== 'end') {
      if (this.phase.kind === 'header') {
        if (data.length < BLOCK) break;
        this.header(data.subarray(0, BLOCK));
        data = data.subarray(BLOCK);
      } else {
        data = this.body(this.phase, data);
      }
    }
    if (this.phase.kind === 'header') this.pending = Buffer.from(data);
  }

  /** The stats of every regular file seen; call once the stream ended. */
  result(): VolumeStats {
    const paths = [...this.entries.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const tree = createHash('sha256');
    let bytes = 0;
    for (const path of paths) {
      const e = this.entries.get(path) as Entry;
      bytes += e.size;
      tree.update(`${path}\0${e.size}\0${e.sha256}\n`);
    }
    return { files: paths.length, bytes, tree_sha256: tree.digest('hex') };
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.phase = { kind: 'end' };
      return;
    }
    const type = String.fromCharCode(block[156] ?? 0);
    const size = numeric(block, 124, 12);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'L' || type === 'K' || type === 'x' || type === 'g') {
      this.phase = { kind: 'data', left: size, pad, meta: [], metaType: type };
      if (size > META_LIMIT) throw new Error(`tar header of ${size} bytes for a name or pax record: not a tar stream Backer wrote`);
      return;
    }
    const prefix = text(block, 257, 6) === 'ustar' ? text(block, 345, 155) : '';
    const name = this.pax.get('path') ?? this.longName ?? (prefix ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100));
    const link = this.pax.get('linkpath') ?? this.longLink ?? text(block, 157, 100);
    const paxSize = this.pax.get('size');
    const realSize = paxSize === undefined ? size : Number(paxSize);
    this.longName = this.longLink = undefined;
    this.pax = new Map();
    const path = normalizeTarPath(name);
    if (type === '0' || type === '\0' || type === '7') {
      this.phase = { kind: 'data', left: realSize, pad: (BLOCK - (realSize % BLOCK)) % BLOCK, hash: createHash('sha256'), path, size: realSize };
      if (realSize === 0) this.finishData(this.phase);
      return;
    }
    if (type === '1') {
      const target = this.entries.get(normalizeTarPath(link));
      if (target !== undefined) this.entries.set(path, target);
    }
    this.phase = { kind: 'data', left: realSize, pad: (BLOCK - (realSize % BLOCK)) % BLOCK };
    if (realSize === 0 && pad === 0) this.phase = { kind: 'header' };
  }

  private body(phase: Extract<Phase, { kind: 'data' }>, data: Buffer): Buffer {
    if (phase.left > 0) {
      const take = data.subarray(0, Math.min(phase.left, data.length));
      phase.hash?.update(take);
      phase.meta?.push(Buffer.from(take));
      phase.left -= take.length;
      if (phase.left === 0) this.finishData(phase);
      return data.subarray(take.length);
    }
    const skip = Math.min(phase.pad, data.length);
    phase.pad -= skip;
    if (phase.pad === 0) this.phase = { kind: 'header' };
    return data.subarray(skip);
  }

  private finishData(phase: Extract<Phase, { kind: 'data' }>): void {
    if (phase.hash !== undefined && phase.path !== undefined) this.entries.set(phase.path, { size: phase.size ?? 0, sha256: phase.hash.digest('hex') });
    if (phase.meta !== undefined) {
      const data = Buffer.concat(phase.meta);
      if (phase.metaType === 'L') this.longName = text(data, 0, data.length);
      else if (phase.metaType === 'K') this.longLink = text(data, 0, data.length);
      else if (phase.metaType === 'x') this.pax = paxRecords(data);
    }
    if (phase.pad === 0) this.phase = { kind: 'header' };
  }
}

/** A pass-through stream that computes VolumeStats of the tar going through it. */
export function tarStatsTap(parser: TarStatsParser): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      try {
        parser.push(chunk);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, chunk);
    },
  });
}

/** A complete tar archive ends with two zero blocks and is a whole number of 512-byte blocks. */
export function endsLikeTar(size: number, tail: Buffer): boolean {
  return size >= 1024 && size % 512 === 0 && tail.length >= 1024 && tail.subarray(tail.length - 1024).every((b) => b === 0);
}
