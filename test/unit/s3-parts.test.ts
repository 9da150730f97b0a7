import { describe, expect, it } from 'vitest';
import { MAX_PARTS, partLimitError, partSizeAt, partSizeFor, uploadCapacity } from '../../src/targets/s3-multipart.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

describe('S3 part sizes (s3-multipart.ts)', () => {
  it('keeps the configured part size for ordinary hints, and grows it so twice the hint fits in 5,000 parts', () => {
    expect(partSizeFor(8 * MIB)).toBe(8 * MIB);
    expect(partSizeFor(8 * MIB, 0)).toBe(8 * MIB);
    expect(partSizeFor(8 * MIB, 10 * GIB)).toBe(8 * MIB);
    expect(partSizeFor(8 * MIB, 50 * GIB)).toBe(21 * MIB);
    expect(partSizeFor(5 * MIB, 20 * GIB)).toBe(9 * MIB);
    // Whole MiB, never below the configured size, never above S3's 5 GiB.
    expect(partSizeFor(8 * MIB, 100 * 1024 * GIB)).toBe(5 * GIB);
    // The default part size holds 146 GiB without a hint.
    expect(Math.floor(uploadCapacity(5 * MIB) / GIB)).toBe(146);
    // A lowered limit (tests): twice the hint in half of 4 parts.
    expect(partSizeFor(5 * MIB, 12 * MIB + 1, 4)).toBe(13 * MIB);
  });

  it('keeps the starting size for 5,000 parts, then doubles as each half of the rest is used, to 16 × at most', () => {
    const at = (n: number): number => partSizeAt(8 * MIB, n) / MIB;
    expect([1, 5000, 5001, 7500, 7501, 8750, 8751, 9375, 9376, 9999, 10000].map(at)).toEqual([8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 128]);
    expect(partSizeAt(1 * GIB, 10000)).toBe(5 * GIB);
  });

  it('stores 234 GiB in 10,000 parts from 8 MiB parts (78 GiB without growing), 146 GiB from 5 MiB', () => {
    expect(uploadCapacity(8 * MIB) / GIB).toBeCloseTo(234.375, 3);
    expect(uploadCapacity(5 * MIB) / GIB).toBeCloseTo(146.484, 2);
    // The artifact of a hint always fits (twice over) without growing.
    for (const hint of [1 * GIB, 100 * GIB, 1024 * GIB]) {
      const base = partSizeFor(8 * MIB, hint);
      expect(base * (MAX_PARTS / 2)).toBeGreaterThanOrEqual(2 * hint);
    }
  });

  it('a smaller part limit (tests) keeps the same schedule', () => {
    expect([1, 2, 3, 4].map((n) => partSizeAt(5 * MIB, n, 4) / MIB)).toEqual([5, 5, 10, 10]);
    expect(uploadCapacity(5 * MIB, 4)).toBe(30 * MIB);
  });

  it('the part-limit error names the setting to raise and what the parts hold', () => {
    const err = partLimitError('offsite', 'db/x.sql.gz', 8 * MIB);
    expect(err.code).toBe('TARGET_WRITE_FAILED');
    expect(err.permanent).toBe(true);
    expect(err.component).toBe('target offsite');
    expect(err.details).toEqual({ target: 'offsite', key: 'db/x.sql.gz', setting: 'targets.offsite.part_size_mb' });
    expect(err.message).toBe('"db/x.sql.gz" is larger than 10000 parts can hold (240000 MiB, starting from 8 MiB parts): raise targets.offsite.part_size_mb');
  });
});
