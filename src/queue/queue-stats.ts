import type { AnyJob, JobStore } from './types.js';

/** `backer queue stats`, `GET /v1/queue/stats`. */
export interface QueueStats {
  running: number;
  /** Queued and ready to run. */
  queued: number;
  /** Queued, waiting for a retry's time. */
  retrying: number;
  concurrency: number;
  /** Wait from queued (or retry time) to start, of the jobs started in the last 24 h; null when none. */
  wait_ms_p50: number | null;
  wait_ms_p95: number | null;
  failures_24h: number;
  /** Mandates whose jobs waited longer than their schedule's interval: the queue cannot keep up. */
  overloaded: { mandate: string; waited_ms: number; interval_ms: number }[];
}

const DAY_MS = 86_400_000;

/** The value below which `share` of the sorted values lie (nearest rank). */
function percentile(sorted: number[], share: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1))] ?? null;
}

function startedWithin(job: AnyJob, since: number): boolean {
  return job.wait_ms !== null && job.started_at !== null && Date.parse(job.started_at) >= since;
}

export function queueStats(store: JobStore, concurrency: number, overloaded: QueueStats['overloaded']): QueueStats {
  const since = Date.now() - DAY_MS;
  const active = store.active();
  const finished = store.finishedSince(new Date(since));
  const waits = [...finished, ...active]
    .filter((j) => startedWithin(j, since))
    .map((j) => j.wait_ms as number)
    .sort((a, b) => a - b);
  return {
    running: active.filter((j) => j.state === 'running').length,
    queued: active.filter((j) => j.state === 'queued' && j.not_before === null).length,
    retrying: active.filter((j) => j.state === 'queued' && j.not_before !== null).length,
    concurrency,
    wait_ms_p50: percentile(waits, 0.5),
    wait_ms_p95: percentile(waits, 0.95),
    failures_24h: finished.filter((j) => j.state === 'failed').length,
    overloaded,
  };
}
