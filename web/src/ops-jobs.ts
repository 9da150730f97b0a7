// Jobs screen logic, pure: transfer rate and ETA from progress samples, recent failures.
import type { OpsJob } from './api-ops';

export interface Sample { at: number; bytes: number }

/** Samples older than this (ms) do not count toward the current rate. */
export const RATE_WINDOW_MS = 10_000;

/**
 * Progress samples per job (from job.progress events): the rate is the bytes moved over the last
 * RATE_WINDOW_MS, so it follows the job's current speed instead of its average since the start.
 */
export class RateTracker {
  private readonly samples = new Map<string, Sample[]>();

  add(id: string, bytes: number, at: number): void {
    const list = this.samples.get(id) ?? [];
    const last = list[list.length - 1];
    if (last !== undefined && bytes < last.bytes) list.length = 0; // a retry starts again from 0
    list.push({ at, bytes });
    while (list.length > 2 && (list[0]?.at ?? at) < at - RATE_WINDOW_MS) list.shift();
    this.samples.set(id, list);
  }

  /** Bytes per second over the window; null with fewer than two samples a moment apart. */
  rate(id: string): number | null {
    const list = this.samples.get(id) ?? [];
    const first = list[0];
    const last = list[list.length - 1];
    if (first === undefined || last === undefined || last.at - first.at < 500) return null;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }

  /** Forgets the jobs that are no longer running. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.samples.keys()) if (!ids.has(id)) this.samples.delete(id);
  }
}

/** The rate of a running job: from the live samples, else its bytes over the time since it started. */
export function jobRate(job: OpsJob, tracker: RateTracker, now: number): number | null {
  const live = tracker.rate(job.id);
  if (live !== null) return live;
  if (job.progress === null || job.started_at === null) return null;
  const elapsed = now - Date.parse(job.started_at);
  return elapsed >= 1000 ? (job.progress.bytes * 1000) / elapsed : null;
}

/** Milliseconds left, when the total is known and the job moves. */
export function eta(job: OpsJob, rate: number | null): number | null {
  const total = job.progress?.total ?? null;
  if (total === null || job.progress === null || rate === null || rate <= 0) return null;
  return Math.max(0, ((total - job.progress.bytes) / rate) * 1000);
}

export function rateText(rate: number | null, bytes: (n: number) => string): string {
  return rate === null ? '—' : `${bytes(Math.round(rate))}/s`;
}

/** Failed jobs that finished within the last 24 h, newest first. */
export function recentFailures(failed: OpsJob[], now: number): OpsJob[] {
  const since = now - 86_400_000;
  return failed
    .filter((j) => j.finished_at !== null && Date.parse(j.finished_at) >= since)
    .sort((a, b) => (b.finished_at ?? '').localeCompare(a.finished_at ?? ''));
}

/** Queued jobs in queue order: ready ones by position, then those waiting for a retry time (soonest first). */
export function queueOrdered(queued: OpsJob[]): OpsJob[] {
  const pos = (j: OpsJob): number => j.queue_position ?? Number.MAX_SAFE_INTEGER;
  return [...queued].sort((a, b) => pos(a) - pos(b) || (a.not_before ?? a.created_at).localeCompare(b.not_before ?? b.created_at));
}
