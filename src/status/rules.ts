import { Cron } from 'croner';
import { formatDuration } from '../config/duration.js';
import type { MandateStats } from '../queue/types.js';
import type { MandateHealth } from './types.js';

/** Without `max_age`, a mandate is stale after this many of its intervals without a success. */
export const STALE_FACTOR = 1.5;

/** Everything the rules need about one mandate; the monitor gathers it, the rules are pure. */
export interface HealthInput {
  mandate: string;
  /** The mandate's problems in words when it is skipped; null when it runs. */
  skipped: string | null;
  /** The cron (`interval`); null for a skipped mandate (its schedule is not known for sure). */
  interval: string | null;
  /** `max_age` as configured (ms), null when not set. */
  max_age_ms: number | null;
  stats: MandateStats | null;
  first_seen_at: string;
  running: boolean;
}

const DAY_MS = 86_400_000;
/** Crons firing every second would list 86 400 fires a day: a sample is enough for their gap. */
const MAX_FIRES = 1500;

/**
 * The longest gap between two fires of `cron` within the day after `from` (UTC), or between its
 * next two fires when it fires less than twice a day; null for a cron that never fires again or
 * cannot be read.
 */
export function expectedIntervalMs(cron: string, from: Date): number | null {
  let job: Cron;
  try {
    // utcOffset, not timezone 'UTC': the same fires, without croner's Intl.DateTimeFormat (ICU's
    // time zone data, ~7 MiB of the daemon's RSS; eslint.config.js).
    job = new Cron(cron, { utcOffset: 0, paused: true, mode: '5-or-6-parts' });
  } catch {
    return null;
  }
  const fires = job.nextRuns(2, from);
  const [first] = fires;
  if (first === undefined || fires.length < 2) return null;
  const end = first.getTime() + DAY_MS;
  let last = fires[fires.length - 1] as Date;
  let longest = last.getTime() - first.getTime();
  while (last.getTime() < end && fires.length < MAX_FIRES) {
    const next = job.nextRun(last);
    if (next === null) break;
    longest = Math.max(longest, next.getTime() - last.getTime());
    fires.push(next);
    last = next;
  }
  return longest;
}

const later = (a: string | null, b: string | null): string | null => (a === null ? b : b === null ? a : Date.parse(a) >= Date.parse(b) ? a : b);

/** Whether the last finished attempt failed (a failure after the last success, or no success at all). */
function lastAttemptFailed(stats: MandateStats | null): boolean {
  if (stats?.last_failure_at == null) return false;
  return stats.last_success_at === null || Date.parse(stats.last_failure_at) > Date.parse(stats.last_success_at);
}

/** "no successful backup for 2h10m (max age 1h30m)", or for a mandate that never succeeded, since it was first seen. */
function staleReason(input: HealthInput, maxAgeMs: number, now: number): string | null {
  const since = input.stats?.last_success_at ?? null;
  const from = Date.parse(since ?? input.first_seen_at);
  const age = now - from;
  if (age <= maxAgeMs) return null;
  const what = since === null ? `no successful backup since it was first seen ${formatDuration(age)} ago` : `no successful backup for ${formatDuration(age)}`;
  return `${what} (max age ${formatDuration(maxAgeMs)})`;
}

/**
 * A mandate's health at `now`, by the rules of src/status/types.ts (most urgent first: skipped,
 * failing, stale, never_succeeded, ok). `intervalMs`: expectedIntervalMs of its cron (the monitor
 * caches it).
 */
export function computeHealth(input: HealthInput, intervalMs: number | null, now: Date): MandateHealth {
  const stats = input.stats;
  const maxAge = input.max_age_ms ?? (intervalMs === null ? null : Math.round(intervalMs * STALE_FACTOR));
  const lastSuccess = stats?.last_success_at ?? null;
  const base = {
    mandate: input.mandate,
    last_success_at: lastSuccess,
    last_attempt_at: later(lastSuccess, stats?.last_failure_at ?? null),
    last_error: null,
    expected_interval_ms: intervalMs,
    max_age_ms: maxAge,
    age_ms: lastSuccess === null ? null : Math.max(0, now.getTime() - Date.parse(lastSuccess)),
    first_seen_at: input.first_seen_at,
    last_raw_bytes: stats?.last_raw_bytes ?? null,
    running: input.running,
  };
  if (input.skipped !== null) return { ...base, status: 'skipped', reason: input.skipped };
  if (lastAttemptFailed(stats)) {
    const error = stats?.last_error ?? null;
    return { ...base, status: 'failing', reason: error?.message ?? 'the last backup failed', last_error: error };
  }
  const stale = maxAge === null ? null : staleReason(input, maxAge, now.getTime());
  if (stale !== null) return { ...base, status: 'stale', reason: stale };
  if (lastSuccess === null) return { ...base, status: 'never_succeeded', reason: 'no backup has run yet' };
  return { ...base, status: 'ok', reason: null };
}
