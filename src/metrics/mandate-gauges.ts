import type { AnyJob, MandateStats } from '../queue/types.js';
import { computeHealth, STALE_FACTOR } from '../status/rules.js';
import { MANDATE_STATUSES, type MandateHealth, type MandateStatus } from '../status/types.js';
import type { MetricSet } from './definitions.js';
import type { MetricsDeps } from './metrics.js';

const seconds = (iso: string): number => Date.parse(iso) / 1000;

function newest(...isos: (string | null | undefined)[]): string | null {
  const known = isos.filter((t): t is string => typeof t === 'string');
  return known.length === 0 ? null : known.reduce((a, b) => (Date.parse(a) >= Date.parse(b) ? a : b));
}

/** The newest finished verification or drill of the mandate, and the newest successful one (job history). */
function verifications(deps: MetricsDeps, mandate: string): { last: AnyJob | null; lastSuccess: AnyJob | null } {
  const finished = (['verify', 'drill'] as const)
    .flatMap((kind) => deps.queue.page({ mandate, kind, limit: 20 }).jobs)
    .filter((j) => (j.state === 'succeeded' || j.state === 'failed') && j.finished_at !== null)
    .sort((a, b) => Date.parse(b.finished_at ?? '') - Date.parse(a.finished_at ?? ''));
  const successes = (['verify', 'drill'] as const)
    .flatMap((kind) => deps.queue.page({ mandate, kind, state: 'succeeded', limit: 1 }).jobs)
    .filter((j) => j.finished_at !== null)
    .sort((a, b) => Date.parse(b.finished_at ?? '') - Date.parse(a.finished_at ?? ''));
  return { last: finished[0] ?? null, lastSuccess: successes[0] ?? null };
}

interface MandateFacts {
  name: string;
  problems: number;
  skipped: boolean;
  stats: MandateStats | null;
  health: MandateHealth | undefined;
}

function setTimes(set: MetricSet, f: MandateFacts): void {
  const labels = { mandate: f.name };
  // The queue's stats are persisted: a restart never turns a known success back into none.
  const success = f.stats?.last_success_at ?? f.health?.last_success_at ?? null;
  const failure = f.stats?.last_failure_at ?? null;
  const attempt = newest(success, failure, f.health?.last_attempt_at);
  if (success !== null) set.lastSuccess.set(labels, seconds(success));
  if (failure !== null) set.lastFailure.set(labels, seconds(failure));
  if (attempt !== null) set.lastAttempt.set(labels, seconds(attempt));
  set.everSucceeded.set(labels, success === null ? 0 : 1);
  if (f.health !== undefined) set.firstSeen.set(labels, seconds(f.health.first_seen_at));
  const raw = f.stats?.last_raw_bytes ?? f.health?.last_raw_bytes ?? null;
  if (raw !== null) set.size.set({ mandate: f.name, kind: 'raw' }, raw);
  if (f.stats?.last_stored_bytes != null) set.size.set({ mandate: f.name, kind: 'stored' }, f.stats.last_stored_bytes);
}

/**
 * For a mandate the status monitor (src/status) has not judged yet (discovery just found it): the
 * same rules, from the queue's persisted stats, first seen now.
 */
function unjudgedStatus(f: MandateFacts, intervalMs: number | null, maxAgeMs: number | null, now: number): MandateStatus {
  if (f.skipped) return 'skipped';
  const input = { mandate: f.name, skipped: null, interval: null, max_age_ms: maxAgeMs, stats: f.stats, first_seen_at: new Date(now).toISOString(), running: false };
  return computeHealth(input, intervalMs, new Date(now)).status;
}

function setMandate(set: MetricSet, deps: MetricsDeps, f: MandateFacts, now: number): void {
  const labels = { mandate: f.name };
  setTimes(set, f);
  const interval = f.health?.expected_interval_ms ?? deps.scheduler.intervalMs(f.name);
  const maxAge = f.health?.max_age_ms ?? (interval === null ? null : Math.round(interval * STALE_FACTOR));
  if (interval !== null) set.expectedInterval.set(labels, interval / 1000);
  if (maxAge !== null) set.maxAge.set(labels, maxAge / 1000);
  set.problems.set(labels, f.problems);
  const status: MandateStatus = f.health?.status ?? unjudgedStatus(f, interval, maxAge, now);
  for (const s of MANDATE_STATUSES) set.status.set({ mandate: f.name, status: s }, s === status ? 1 : 0);
  const verify = verifications(deps, f.name);
  if (verify.lastSuccess?.finished_at != null) set.verifyLastSuccess.set(labels, seconds(verify.lastSuccess.finished_at));
  if (verify.last !== null) set.verifyLastResult.set(labels, verify.last.state === 'succeeded' ? 1 : 0);
  if (!f.skipped) {
    // Present from the start, so that increase() sees the first backup of a mandate.
    set.backupsTotal.inc({ mandate: f.name, result: 'succeeded' }, 0);
    set.backupsTotal.inc({ mandate: f.name, result: 'failed' }, 0);
  }
}

const PER_MANDATE = ['lastSuccess', 'lastAttempt', 'lastFailure', 'everSucceeded', 'expectedInterval', 'maxAge', 'firstSeen', 'size', 'verifyLastSuccess', 'verifyLastResult', 'problems', 'status'] as const;

/** Every known mandate (skipped ones included), read now; mandates that went away drop out. */
export function updateMandateGauges(set: MetricSet, deps: MetricsDeps, now: number): void {
  for (const key of PER_MANDATE) set[key].reset();
  const snapshot = deps.discovery.current();
  const facts: MandateFacts[] = [
    ...snapshot.mandates.map((m) => ({ name: m.name, problems: 0, skipped: false })),
    ...snapshot.skipped.map((s) => ({ name: s.name, problems: s.problems.length, skipped: true })),
  ].map((m) => ({ ...m, stats: deps.queue.mandateStats(m.name), health: deps.status.get(m.name) }));
  for (const f of facts) setMandate(set, deps, f, now);
}
