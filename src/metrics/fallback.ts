import type { MandateStats } from '../queue/types.js';
import type { MandateStatus } from '../status/types.js';

/**
 * For a mandate the status monitor (src/status) has not judged yet (discovery just found it): its
 * status from the queue's persisted stats, with the same rules.
 */

/** max_age when only the interval is known: 1.5 × the interval. */
export function defaultMaxAgeMs(intervalMs: number | null): number | null {
  return intervalMs === null ? null : Math.round(intervalMs * 1.5);
}

export function fallbackStatus(stats: MandateStats | null, maxAgeMs: number | null, now: number): MandateStatus {
  const success = stats?.last_success_at ?? null;
  const failure = stats?.last_failure_at ?? null;
  if (failure !== null && (success === null || Date.parse(failure) > Date.parse(success))) return 'failing';
  if (success === null) return 'never_succeeded';
  if (maxAgeMs !== null && now - Date.parse(success) > maxAgeMs) return 'stale';
  return 'ok';
}
