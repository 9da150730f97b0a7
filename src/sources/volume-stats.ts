import type { Transform } from 'node:stream';
import { TarReader, TarScanner, TreeHasher, type TreeStats } from './tar-scan.js';

/**
 * What a drill compares for a volume backup (`source.stats` of its manifest). The volume source
 * reads its tar with the same reader and tree hash as the files source (src/sources/tar-scan.ts):
 * raw-byte names, so both compute the same `tree_sha256` for the same files.
 */
export type VolumeStats = TreeStats;

/** Computes VolumeStats from a tar fed chunk by chunk (hard links count as the file they link to). */
export class TarStatsParser {
  readonly tree = new TreeHasher();
  private readonly reader = new TarReader(undefined, this.tree);

  push(chunk: Buffer): void {
    this.reader.push(chunk);
  }

  /** The stats of every regular file seen; call once the stream ended. */
  result(): VolumeStats {
    return this.tree.stats();
  }
}

/** A pass-through stream that computes the parser's VolumeStats from the tar going through it. */
export function tarStatsTap(parser: TarStatsParser): Transform {
  return new TarScanner(undefined, parser.tree);
}

/** A complete tar archive ends with two zero blocks and is a whole number of 512-byte blocks. */
export function endsLikeTar(size: number, tail: Buffer): boolean {
  return size >= 1024 && size % 512 === 0 && tail.length >= 1024 && tail.subarray(tail.length - 1024).every((b) => b === 0);
}
