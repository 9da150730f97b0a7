import type { ErrorCode } from '../errors.js';
import type { BackupResult } from '../pipeline/run-backup.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobTrigger = 'schedule' | 'api' | 'cli' | 'startup';

export interface Job {
  id: string;
  mandate: string;
  trigger: JobTrigger;
  state: JobState;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: { code: ErrorCode; message: string } | null;
  result: BackupResult | null;
}

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Where jobs live. In memory for now; a durable store (resume after a crash, failed-job history)
 * replaces this without touching the queue's scheduling logic.
 */
export interface JobStore {
  save(job: Job): void;
  get(id: string): Job | undefined;
  /** Every job, oldest created first. */
  list(): Job[];
}

export function createMemoryJobStore(limit = 1000): JobStore {
  const jobs = new Map<string, Job>();
  return {
    save(job) {
      // Map.set keeps an existing key in place: the map stays in creation order.
      jobs.set(job.id, job);
      // Forget the oldest finished jobs beyond the limit; never a queued or running one.
      for (const [id, j] of jobs) {
        if (jobs.size <= limit) break;
        if (TERMINAL_STATES.has(j.state)) jobs.delete(id);
      }
    },
    get: (id) => jobs.get(id),
    list: () => [...jobs.values()],
  };
}
