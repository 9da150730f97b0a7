import type { ErrorCode } from '../errors.js';
import type { JobProgress } from '../events/bus.js';
import type { BackupResult } from '../pipeline/run-backup.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobTrigger = 'schedule' | 'api' | 'cli' | 'startup';
/** Every kind runs under its mandate's lock: never two jobs of one mandate at once. */
export const JOB_KINDS = ['backup', 'restore', 'verify', 'drill'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** What a job kind returns: its status, error and a JSON result (BackupResult, RestoreResult …). */
export interface JobOutcome {
  status: 'succeeded' | 'failed';
  error: { code: ErrorCode; message: string } | null;
  result: JobResult;
}

/** A backup's BackupResult, or the JSON result of a restore, verification or drill (with its `kind`). */
export type JobResult = BackupResult | ({ kind: 'restore' | 'verify' | 'drill' } & Record<string, unknown>);

/**
 * `Result`: what the kind returns. The default is a backup's, for the many readers that only deal
 * with backups; the queue and the API hold `AnyJob`.
 */
export interface Job<Result = BackupResult> {
  id: string;
  kind: JobKind;
  mandate: string;
  /** The request of a restore or verification (backup, target, level …); null for backups. */
  params: Record<string, unknown> | null;
  progress: JobProgress | null;
  trigger: JobTrigger;
  state: JobState;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: { code: ErrorCode; message: string } | null;
  result: Result | null;
}

export type AnyJob = Job<JobResult>;

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Where jobs live. In memory for now; a durable store (resume after a crash, failed-job history)
 * replaces this without touching the queue's scheduling logic.
 */
export interface JobStore {
  save(job: AnyJob): void;
  get(id: string): AnyJob | undefined;
  /** Every job, oldest created first. */
  list(): AnyJob[];
}

export function createMemoryJobStore(limit = 1000): JobStore {
  const jobs = new Map<string, AnyJob>();
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
