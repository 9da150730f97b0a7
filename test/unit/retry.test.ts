/** retryDelay (src/queue/retry.ts): exponential backoff from the base, capped, with equal jitter. Pure. */
import { describe, expect, it } from 'vitest';
import { retryDelay } from '../../src/queue/retry.js';

const BASE = 30_000;
const MAX = 900_000;

describe('retryDelay', () => {
  it('doubles per attempt from the base: the top of the jitter range is base × 2^(attempt-1)', () => {
    const top = (attempt: number): number => retryDelay(attempt, BASE, MAX, () => 1);
    expect([1, 2, 3, 4, 5].map(top)).toEqual([30_000, 60_000, 120_000, 240_000, 480_000]);
  });

  it('keeps at least half of the backoff (equal jitter): never an immediate retry', () => {
    const bottom = (attempt: number): number => retryDelay(attempt, BASE, MAX, () => 0);
    expect([1, 2, 3].map(bottom)).toEqual([15_000, 30_000, 60_000]);
    expect(retryDelay(2, BASE, MAX, () => 0.5)).toBe(45_000);
  });

  it('is capped at the maximum, for any attempt', () => {
    expect(retryDelay(6, BASE, MAX, () => 1)).toBe(MAX);
    expect(retryDelay(60, BASE, MAX, () => 1)).toBe(MAX);
    expect(retryDelay(10_000, BASE, MAX, () => 0.999)).toBeLessThanOrEqual(MAX);
    expect(retryDelay(10_000, BASE, MAX, () => 0)).toBe(MAX / 2);
    expect(retryDelay(3, BASE, 10_000, () => 1)).toBe(10_000);
  });

  it('spreads jobs that failed together over the upper half (Math.random by default)', () => {
    const delays = Array.from({ length: 2000 }, () => retryDelay(3, BASE, MAX));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(60_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(120_000);
    expect(new Set(delays).size).toBeGreaterThan(1000);
    const low = delays.filter((d) => d < 90_000).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1200);
    expect(delays.every(Number.isInteger)).toBe(true);
  });

  it('treats attempt 0 or less like the first, and a zero base as no wait', () => {
    expect(retryDelay(0, BASE, MAX, () => 1)).toBe(BASE);
    expect(retryDelay(-3, BASE, MAX, () => 1)).toBe(BASE);
    expect(retryDelay(4, 0, MAX, () => 1)).toBe(0);
  });

  it('refuses a negative or non-finite base or maximum', () => {
    expect(() => retryDelay(1, -1, MAX)).toThrow(RangeError);
    expect(() => retryDelay(1, BASE, Number.NaN)).toThrow(RangeError);
    expect(() => retryDelay(1, Number.POSITIVE_INFINITY, MAX)).toThrow(RangeError);
  });
});
