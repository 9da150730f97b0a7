import { describe, expect, it } from 'vitest';
import type { OpsJob } from './api-ops';
import { eta, jobRate, queueOrdered, RateTracker, recentFailures } from './ops-jobs';

const job = (extra: Partial<OpsJob>): OpsJob => ({
  id: 'j',
  kind: 'backup',
  mandate: 'db',
  state: 'running',
  trigger: 'api',
  priority: 5,
  attempts: 1,
  not_before: null,
  created_at: '2026-11-30T00:00:00.000Z',
  started_at: '2026-11-30T00:00:00.000Z',
  finished_at: null,
  progress: null,
  error: null,
  ...extra,
});

describe('RateTracker and ETA', () => {
  it('rates over the last 10 s of samples, not since the start; a retry (bytes going down) starts over', () => {
    const t = new RateTracker();
    t.add('j', 0, 0);
    t.add('j', 1000, 1000);
    expect(t.rate('j')).toBe(1000);
    // Faster later: the old samples leave the window.
    t.add('j', 5000, 12_000);
    t.add('j', 25_000, 14_000);
    expect(t.rate('j')).toBe(10_000);
    t.add('j', 100, 15_000);
    expect(t.rate('j')).toBeNull();
    t.keepOnly(new Set());
    expect(t.rate('j')).toBeNull();
  });

  it('falls back to bytes since started_at; ETA only with a known total', () => {
    const now = Date.parse('2026-11-30T00:00:10.000Z');
    const running = job({ progress: { bytes: 10_000, total: 30_000 } });
    const rate = jobRate(running, new RateTracker(), now);
    expect(rate).toBe(1000);
    expect(eta(running, rate)).toBe(20_000);
    expect(eta(job({ progress: { bytes: 10_000, total: null } }), rate)).toBeNull();
    expect(jobRate(job({ progress: null }), new RateTracker(), now)).toBeNull();
  });
});

describe('lists', () => {
  it('recent failures: the last 24 h, newest first', () => {
    const now = Date.parse('2026-11-30T12:00:00.000Z');
    const old = job({ id: 'old', state: 'failed', finished_at: '2026-11-29T11:00:00.000Z' });
    const a = job({ id: 'a', state: 'failed', finished_at: '2026-11-30T01:00:00.000Z' });
    const b = job({ id: 'b', state: 'failed', finished_at: '2026-11-30T02:00:00.000Z' });
    expect(recentFailures([old, a, b], now).map((j) => j.id)).toEqual(['b', 'a']);
  });

  it('queue order: by position, then jobs waiting for a retry time, soonest first', () => {
    const jobs = [
      job({ id: 'retry-late', state: 'queued', queue_position: null, not_before: '2026-11-30T00:09:00.000Z' }),
      job({ id: 'second', state: 'queued', queue_position: 2 }),
      job({ id: 'retry-soon', state: 'queued', queue_position: null, not_before: '2026-11-30T00:05:00.000Z' }),
      job({ id: 'first', state: 'queued', queue_position: 1 }),
    ];
    expect(queueOrdered(jobs).map((j) => j.id)).toEqual(['first', 'second', 'retry-soon', 'retry-late']);
  });
});
