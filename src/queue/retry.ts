/**
 * The wait before retry number `attempt` (1 = the first retry) of a job that failed transiently:
 * exponential, `base × 2^(attempt-1)`, capped at `max`, with "equal jitter": a uniformly random
 * point in the upper half, [d/2, d]. Equal rather than full jitter ([0, d]): with the few retries
 * Backer allows (queue.retries, default 3) a near-zero wait would spend an attempt on a server that
 * has not had time to recover, while the random half still keeps jobs that failed together (one
 * S3 outage, 200 mandates) from retrying in lockstep. The result never exceeds `max` and is a
 * whole number of milliseconds. Pure: `random` is a source in [0, 1) (Math.random by default).
 */
export function retryDelay(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  if (!Number.isFinite(base) || base < 0) throw new RangeError(`retry base delay must be a non-negative number of ms, received ${base}`);
  if (!Number.isFinite(max) || max < 0) throw new RangeError(`retry maximum delay must be a non-negative number of ms, received ${max}`);
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  // 2^exponent overflows to Infinity for absurd attempts: min() still caps it.
  const capped = Math.min(max, base * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(capped / 2 + (capped / 2) * r);
}
