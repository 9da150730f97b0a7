/**
 * The mandate status rules (src/status/rules.ts) and the monitor's announcements
 * (src/status/monitor.ts) with an injected clock, an in-memory queue store and seen store.
 */
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/discovery/snapshot.js';
import { createEventBus, type BackerEvent } from '../../src/events/bus.js';
import type { MandateSpec } from '../../src/mandates/types.js';
import type { MandateStats } from '../../src/queue/types.js';
import { createStatusMonitor } from '../../src/status/monitor.js';
import { computeHealth, expectedIntervalMs, type HealthInput } from '../../src/status/rules.js';
import { createMemorySeenStore } from '../../src/status/seen-store.js';
import { capturingLogger } from '../helpers/logs.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const HOUR = 3_600_000;
const at = (msAgo: number): string => new Date(NOW.getTime() - msAgo).toISOString();

function stats(patch: Partial<MandateStats>): MandateStats {
  return { mandate: 'db', last_success_at: null, last_failure_at: null, last_error: null, successes: 0, failures: 0, last_duration_ms: null, avg_duration_ms: null, last_raw_bytes: null, last_stored_bytes: null, ...patch };
}

function input(patch: Partial<HealthInput>): HealthInput {
  return { mandate: 'db', skipped: null, interval: '0 * * * *', max_age_ms: null, stats: null, first_seen_at: at(10 * 60_000), running: false, ...patch };
}

describe('expectedIntervalMs', () => {
  it('is the longest gap between fires within the next day', () => {
    expect(expectedIntervalMs('0 * * * *', NOW)).toBe(HOUR);
    expect(expectedIntervalMs('0 0 * * *', NOW)).toBe(24 * HOUR);
    // 02:00 and 03:00 each day: the gap over night is 23 h.
    expect(expectedIntervalMs('0 2,3 * * *', NOW)).toBe(23 * HOUR);
    expect(expectedIntervalMs('*/4 * * * * *', NOW)).toBe(4000);
    expect(expectedIntervalMs('0 0 * * 0', NOW)).toBe(7 * 24 * HOUR);
    expect(expectedIntervalMs('not a cron', NOW)).toBeNull();
  });
});

describe('computeHealth', () => {
  it('is never_succeeded before any run, and stale once 1.5 intervals passed since first seen', () => {
    const fresh = computeHealth(input({}), HOUR, NOW);
    expect(fresh).toMatchObject({ status: 'never_succeeded', max_age_ms: 1.5 * HOUR, expected_interval_ms: HOUR, age_ms: null, last_attempt_at: null });
    const old = computeHealth(input({ first_seen_at: at(2 * HOUR) }), HOUR, NOW);
    expect(old.status).toBe('stale');
    expect(old.reason).toBe('no successful backup since it was first seen 2h ago (max age 1h30m)');
  });

  it('is ok within max_age, stale past it; max_age overrides 1.5 × interval', () => {
    const recent = input({ stats: stats({ last_success_at: at(80 * 60_000), last_raw_bytes: 42 }) });
    expect(computeHealth(recent, HOUR, NOW)).toMatchObject({ status: 'ok', reason: null, age_ms: 80 * 60_000, last_raw_bytes: 42 });
    const late = input({ stats: stats({ last_success_at: at(100 * 60_000) }) });
    expect(computeHealth(late, HOUR, NOW)).toMatchObject({ status: 'stale', reason: 'no successful backup for 1h40m (max age 1h30m)' });
    expect(computeHealth({ ...late, max_age_ms: 2 * HOUR }, HOUR, NOW)).toMatchObject({ status: 'ok', max_age_ms: 2 * HOUR });
    expect(computeHealth({ ...recent, max_age_ms: HOUR }, HOUR, NOW).status).toBe('stale');
  });

  it('is failing when the last attempt failed, with its error, whether or not it ever succeeded', () => {
    const error = { code: 'DUMP_FAILED' as const, message: 'mysqldump: access denied' };
    const never = computeHealth(input({ stats: stats({ last_failure_at: at(60_000), last_error: error }) }), HOUR, NOW);
    expect(never).toMatchObject({ status: 'failing', reason: error.message, last_error: error, last_attempt_at: at(60_000) });
    const after = computeHealth(input({ stats: stats({ last_success_at: at(HOUR), last_failure_at: at(60_000), last_error: error }) }), HOUR, NOW);
    expect(after.status).toBe('failing');
    // A success after the failure: ok again, and no error shown.
    const recovered = computeHealth(input({ stats: stats({ last_success_at: at(60_000), last_failure_at: at(HOUR), last_error: error }) }), HOUR, NOW);
    expect(recovered).toMatchObject({ status: 'ok', last_error: null, last_attempt_at: at(60_000) });
  });

  it('is skipped above all, with its problems as the reason; without a schedule never stale', () => {
    const skipped = computeHealth(input({ skipped: 'label backer.max_age: bad', interval: null, stats: stats({ last_failure_at: at(60_000) }) }), null, NOW);
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'label backer.max_age: bad', max_age_ms: null });
    expect(computeHealth(input({ first_seen_at: at(1000 * HOUR) }), null, NOW).status).toBe('never_succeeded');
    expect(computeHealth(input({ running: true }), HOUR, NOW).running).toBe(true);
  });
});

const spec = (name: string, alerts: Partial<MandateSpec['alerts']> = {}): MandateSpec => ({
  name,
  origin: 'config',
  source: { type: 'files', container: null, options: {} },
  interval: '0 * * * *',
  targets: ['local'],
  middleware: [],
  retention: 1,
  priority: 5,
  name_pattern: '<DATE>',
  verify: { interval: null, level: 'decode' },
  alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null, ...alerts },
});

describe('createStatusMonitor', () => {
  it('announces each change once, persists the status so that a restart does not announce it again', () => {
    let now = NOW;
    const seen = createMemorySeenStore();
    const events = createEventBus();
    const got: BackerEvent[] = [];
    events.on((e) => got.push(e));
    const statsOf = new Map<string, MandateStats>();
    const snapshot: Snapshot = { mandates: [spec('db')], problems: [], docker_error: null, skipped: [{ name: 'bad', origin: 'labels', container: 'bad', problems: [{ where: 'container bad label backer.min_size', message: 'expected a size' }] }] };
    const make = () =>
      createStatusMonitor({
        queue: { mandateStats: (m) => statsOf.get(m) ?? null, page: () => ({ jobs: [], total: 0 }) },
        discovery: { current: () => snapshot },
        events,
        seen,
        logger: capturingLogger().logger,
        clock: () => now,
        tickMs: 3_600_000,
      });
    const first = make();
    first.start();
    const statuses = () => got.flatMap((e) => (e.type === 'mandate.status' ? [[e.mandate, e.previous, e.status]] : []));
    expect(statuses()).toEqual([
      ['db', null, 'never_succeeded'],
      ['bad', null, 'skipped'],
    ]);
    expect(first.current().map((h) => h.mandate)).toEqual(['bad', 'db']);
    expect(first.get('bad')?.reason).toBe('container bad label backer.min_size: expected a size');
    first.close();

    // Down for 2 h: the next daemon finds it stale at start, and says so once.
    now = new Date(NOW.getTime() + 2 * HOUR);
    const second = make();
    second.start();
    expect(statuses().slice(2)).toEqual([['db', 'never_succeeded', 'stale']]);
    expect(second.get('db')?.first_seen_at).toBe(NOW.toISOString());
    // A success arrives (the job event triggers a recompute).
    statsOf.set('db', stats({ last_success_at: now.toISOString(), successes: 1 }));
    events.emit({ type: 'mandates.changed', mandates: ['db'], skipped: ['bad'] });
    expect(statuses().slice(3)).toEqual([['db', 'stale', 'ok']]);
    second.close();
    // Closed: nothing recomputed, nothing announced.
    statsOf.delete('db');
    events.emit({ type: 'mandates.changed', mandates: ['db'], skipped: ['bad'] });

    const third = make();
    third.start();
    expect(statuses()).toHaveLength(5);
    expect(statuses()[4]).toEqual(['db', 'ok', 'stale']);
    third.close();
  });
});
