import type { BackupResult } from '../pipeline/run-backup.js';
import type { AnyJob, MandateStats } from './types.js';

export function emptyStats(mandate: string): MandateStats {
  return {
    mandate,
    last_success_at: null,
    last_failure_at: null,
    last_error: null,
    successes: 0,
    failures: 0,
    last_duration_ms: null,
    avg_duration_ms: null,
    last_raw_bytes: null,
    last_stored_bytes: null,
  };
}

function durationMs(job: AnyJob): number | null {
  if (job.started_at === null || job.finished_at === null) return null;
  return Math.max(0, Date.parse(job.finished_at) - Date.parse(job.started_at));
}

/** Bytes stored by a backup: the largest copy (every target holds the same artifact). */
function storedBytes(result: BackupResult | null): number | null {
  const sizes = (result?.targets ?? []).map((t) => t.size).filter((s): s is number => typeof s === 'number');
  return sizes.length === 0 ? null : Math.max(...sizes);
}

/** The stats after one more finished backup job; other kinds and unfinished jobs change nothing. */
export function addToStats(previous: MandateStats | null, job: AnyJob): MandateStats | null {
  if (job.kind !== 'backup' || job.finished_at === null) return previous;
  const stats = { ...(previous ?? emptyStats(job.mandate)) };
  const ms = durationMs(job);
  if (job.state === 'succeeded') {
    const result = job.result as BackupResult | null;
    stats.last_success_at = job.finished_at;
    stats.successes += 1;
    stats.last_raw_bytes = result?.raw_size ?? null;
    stats.last_stored_bytes = storedBytes(result);
    if (ms !== null) {
      stats.avg_duration_ms = stats.avg_duration_ms === null ? ms : Math.round(stats.avg_duration_ms + (ms - stats.avg_duration_ms) / stats.successes);
      stats.last_duration_ms = ms;
    }
  } else if (job.state === 'failed' || job.state === 'interrupted') {
    stats.last_failure_at = job.finished_at;
    stats.failures += 1;
    stats.last_error = job.error;
  } else {
    return previous;
  }
  return stats;
}
