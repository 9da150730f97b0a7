/**
 * createMetrics' logic over its inputs (queue stats, discovery's snapshot, the status monitor,
 * target usage, readiness, bus events), with plain stand-ins: what a mandate the status monitor
 * has not judged yet shows, that mandates which went away drop out, counters by result, and
 * targets before their first good listing. The daemon-level behaviour is test/metrics.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/discovery/snapshot.js';
import { createEventBus } from '../../src/events/bus.js';
import type { MandateSpec } from '../../src/mandates/types.js';
import { createMetrics, type MetricsDeps } from '../../src/metrics/metrics.js';
import { emptyStats } from '../../src/queue/stats.js';
import type { AnyJob, MandateStats } from '../../src/queue/types.js';
import type { MandateHealth, TargetUsage } from '../../src/status/types.js';
import { parseMetrics, valueOf } from '../helpers/metrics.js';

const HOUR_MS = 3_600_000;
const iso = (msAgo: number): string => new Date(Date.now() - msAgo).toISOString();

function world() {
  const snapshot: Snapshot = { mandates: [], problems: [], docker_error: null, skipped: [] };
  const stats = new Map<string, MandateStats>();
  const health = new Map<string, MandateHealth>();
  const usage: TargetUsage[] = [];
  const state = { ready: true };
  const events = createEventBus();
  const deps: MetricsDeps = {
    queue: {
      stats: () => ({ running: 1, queued: 2, retrying: 3, concurrency: 2, wait_ms_p50: null, wait_ms_p95: null, failures_24h: 0, overloaded: [] }),
      mandateStats: (m) => stats.get(m) ?? null,
      page: () => ({ jobs: [], total: 0 }),
    },
    discovery: { current: () => snapshot },
    scheduler: { intervalMs: () => HOUR_MS },
    events,
    status: { get: (m) => health.get(m) },
    usage: { current: () => usage },
    readiness: { check: () => Promise.resolve({ ready: state.ready, checks: { docker: { status: 'ok', message: null }, state: { status: 'ok', message: null } } }) },
  };
  return { snapshot, stats, health, usage, state, events, metrics: createMetrics(deps) };
}

const mandate = (name: string): MandateSpec => ({ name } as MandateSpec);
const job = (over: Partial<AnyJob>): AnyJob => ({ id: 'j', kind: 'backup', mandate: 'm', state: 'succeeded', started_at: iso(30_000), finished_at: iso(0), wait_ms: 1500, ...over }) as AnyJob;

describe('createMetrics', () => {
  it('judges a mandate the status monitor does not know yet from the persisted stats, with 1.5 x its interval', async () => {
    const w = world();
    w.snapshot.mandates.push(mandate('old'), mandate('broken'), mandate('fresh'));
    w.stats.set('old', { ...emptyStats('old'), last_success_at: iso(2 * HOUR_MS) });
    w.stats.set('broken', { ...emptyStats('broken'), last_success_at: iso(2 * HOUR_MS), last_failure_at: iso(HOUR_MS) });
    const samples = parseMetrics(await w.metrics.text());
    const status = (m: string): string | undefined => samples.find((s) => s.name === 'backer_mandate_status' && s.labels.mandate === m && s.value === 1)?.labels.status;
    expect([status('old'), status('broken'), status('fresh')]).toEqual(['stale', 'failing', 'never_succeeded']);
    expect(valueOf(samples, 'backer_backup_max_age_seconds', { mandate: 'old' })).toBe(5400);
    expect(valueOf(samples, 'backer_backup_ever_succeeded', { mandate: 'fresh' })).toBe(0);
    expect(valueOf(samples, 'backer_mandate_first_seen_timestamp_seconds', { mandate: 'old' })).toBeUndefined();
  });

  it("prefers the status monitor's figures, and drops a mandate that went away", async () => {
    const w = world();
    w.snapshot.mandates.push(mandate('a'), mandate('b'));
    const first = iso(10 * HOUR_MS);
    w.health.set('a', { mandate: 'a', status: 'ok', reason: null, last_success_at: null, last_attempt_at: null, last_error: null, expected_interval_ms: 2 * HOUR_MS, max_age_ms: 26 * HOUR_MS, age_ms: null, first_seen_at: first, last_raw_bytes: null, running: false });
    let samples = parseMetrics(await w.metrics.text());
    expect(valueOf(samples, 'backer_backup_expected_interval_seconds', { mandate: 'a' })).toBe(7200);
    expect(valueOf(samples, 'backer_backup_max_age_seconds', { mandate: 'a' })).toBe(26 * 3600);
    expect(valueOf(samples, 'backer_mandate_first_seen_timestamp_seconds', { mandate: 'a' })).toBe(Date.parse(first) / 1000);
    expect(valueOf(samples, 'backer_backup_ever_succeeded', { mandate: 'b' })).toBe(0);
    w.snapshot.mandates.splice(1, 1);
    samples = parseMetrics(await w.metrics.text());
    expect(samples.filter((s) => s.labels.mandate === 'b' && s.name !== 'backer_backups_total')).toEqual([]);
  });

  it('counts finished jobs by result and observes waits and durations from the bus; close() stops listening', async () => {
    const w = world();
    w.events.emit({ type: 'job.started', job: job({ kind: 'restore', state: 'running', wait_ms: 2500 }) });
    w.events.emit({ type: 'job.succeeded', job: job({}) });
    w.events.emit({ type: 'job.cancelled', job: job({ state: 'cancelled' }) });
    w.events.emit({ type: 'job.failed', job: job({ kind: 'restore', state: 'failed' }) });
    w.events.emit({ type: 'job.failed', job: job({ kind: 'verify', state: 'failed' }) });
    let samples = parseMetrics(await w.metrics.text());
    expect(valueOf(samples, 'backer_backups_total', { mandate: 'm', result: 'succeeded' })).toBe(1);
    expect(valueOf(samples, 'backer_backups_total', { mandate: 'm', result: 'cancelled' })).toBe(1);
    expect(valueOf(samples, 'backer_restore_total', { mandate: 'm', result: 'failed' })).toBe(1);
    expect(valueOf(samples, 'backer_job_wait_seconds_sum', { kind: 'restore' })).toBe(2.5);
    expect(valueOf(samples, 'backer_backup_duration_seconds_count', { mandate: 'm' })).toBe(2);
    w.metrics.close();
    w.metrics.close();
    w.events.emit({ type: 'job.succeeded', job: job({}) });
    samples = parseMetrics(await w.metrics.text());
    expect(valueOf(samples, 'backer_backups_total', { mandate: 'm', result: 'succeeded' })).toBe(1);
    expect(w.events.listeners()).toBe(0);
  });

  it('shows the queue by state, readiness, and a target that was never listed as unhealthy without figures', async () => {
    const w = world();
    w.state.ready = false;
    w.usage.push(
      { target: 'nas', type: 'local', backups: 0, bytes: 0, problems: 0, healthy: false, error: { code: 'TARGET_READ_FAILED', message: 'gone' }, checked_at: null },
      { target: 's3', type: 's3', backups: 4, bytes: 1000, problems: 0, healthy: false, error: { code: 'TARGET_READ_FAILED', message: 'timeout' }, checked_at: iso(60_000) },
    );
    const samples = parseMetrics(await w.metrics.text());
    expect(valueOf(samples, 'backer_ready')).toBe(0);
    expect(['queued', 'running', 'retrying'].map((state) => valueOf(samples, 'backer_queue_jobs', { state }))).toEqual([2, 1, 3]);
    expect(valueOf(samples, 'backer_target_healthy', { target: 'nas' })).toBe(0);
    expect(valueOf(samples, 'backer_backups_stored', { target: 'nas' })).toBeUndefined();
    // The figures of the last good listing stay while the target does not answer.
    expect(valueOf(samples, 'backer_backups_stored', { target: 's3' })).toBe(4);
    expect(valueOf(samples, 'backer_target_bytes', { target: 's3' })).toBe(1000);
  });
});
