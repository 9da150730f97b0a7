import type { ErrorCode } from '../errors.js';
import type { JobProgress } from '../events/bus.js';
import type { BackupResult } from '../pipeline/run-backup.js';
import type { RestoreResult } from '../pipeline/run-restore.js';
import type { VerifyResult } from '../pipeline/run-verify.js';

/**
 * `interrupted`: the process running the job died (a crash, kill -9, a power cut). A backup is
 * queued again as a new attempt of the same job; a restore stays interrupted (never re-run
 * automatically) and its last event names the safety backup.
 */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const satisfies readonly JobState[];
/** `catch_up`: a run missed while the daemon was down (schedule.catch_up: once). */
export type JobTrigger = 'schedule' | 'api' | 'cli' | 'startup' | 'catch_up';
/** Every kind runs under its mandate's lock: never two jobs of one mandate at once. */
export const JOB_KINDS = ['backup', 'restore', 'verify', 'drill'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** What a job kind returns: its status, error and a JSON result (BackupResult, RestoreResult …). */
export interface JobOutcome {
  status: 'succeeded' | 'failed';
  error: { code: ErrorCode; message: string } | null;
  result: JobResult;
  /** A failure worth another attempt (the queue retries within queue.retries). Default false. */
  retryable?: boolean;
}

/**
 * A backup's BackupResult, or a restore's or verification's result (with its `kind`; a drill's is
 * a verification's, level `drill`). The API documents these (src/api/job-results.ts).
 */
export type JobResult = BackupResult | RestoreResult | VerifyResult;

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
  /** 0 (lowest) to 9 (highest); labels say low = 2, normal = 5, high = 8. */
  priority: number;
  /** Attempts started so far (a retry or a re-run after a crash is one more attempt of the same job). */
  attempts: number;
  /** A job waiting for a retry is queued, but not taken before this time. */
  not_before: string | null;
  /** Milliseconds from queued (or from its retry time) to its last start; null until it started. */
  wait_ms: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: { code: ErrorCode; message: string } | null;
  result: Result | null;
}

export type AnyJob = Job<JobResult>;

/** `interrupted` is terminal for restores; a backup found interrupted at start is queued again. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/** One line of a job's history: each attempt's start and end, retries, interruptions. */
export interface JobEvent {
  at: string;
  attempt: number;
  type: 'queued' | 'started' | 'succeeded' | 'failed' | 'retrying' | 'interrupted' | 'requeued' | 'cancelled' | 'stalled' | 'note';
  message: string | null;
}

export interface JobFilter {
  mandate?: string;
  kind?: JobKind;
  state?: JobState;
  /** Default 100. */
  limit?: number;
  offset?: number;
}

/**
 * A mandate's newest succeeded backups as the mandate listing reads them (`GET /v1/mandates`: last
 * backup and sparkline), without the rest of their results.
 */
export interface RecentBackups {
  mandate: string;
  /** The newest succeeded backup job, null when there is none; `name` null when its result is not a backup's (no `raw_size`). */
  newest: { name: string | null; created_at: string; started_at: string | null; raw_bytes: number | null; stored_bytes: number | null } | null;
  /** Raw sizes of the newest succeeded backups, newest first (null where a result has none). */
  raw_sizes: (number | null)[];
}

/** Per-mandate figures kept across restarts (backups only). */
export interface MandateStats {
  mandate: string;
  last_success_at: string | null;
  last_failure_at: string | null;
  last_error: { code: ErrorCode; message: string } | null;
  /** Successes and failures within the history window. */
  successes: number;
  failures: number;
  last_duration_ms: number | null;
  avg_duration_ms: number | null;
  /** Raw (dump) and stored bytes of the last successful backup. */
  last_raw_bytes: number | null;
  last_stored_bytes: number | null;
}

/**
 * Where jobs live: SQLite (`<data_dir>/state.db`, src/state/job-store.ts) in the daemon, so that
 * jobs, their history and stats survive restarts; in memory (src/queue/memory-store.ts) for
 * one-shot commands and unit tests. The queue's scheduling logic does not know which.
 */
export interface JobStore {
  save(job: AnyJob): void;
  get(id: string): AnyJob | undefined;
  /** Newest created first, filtered and paged; `total` counts every match before paging. */
  list(filter?: JobFilter): { jobs: AnyJob[]; total: number };
  /** Jobs queued or running, oldest created first: what a starting queue takes over. */
  active(): AnyJob[];
  /** Terminal jobs finished at or after `since`, oldest first (queue stats). */
  finishedSince(since: Date): AnyJob[];
  addEvent(id: string, event: JobEvent): void;
  /** Oldest first. */
  events(id: string): JobEvent[];
  /** Records that `owner` (a process, see src/state/owner.ts) runs the job; renewed by a heartbeat. */
  lease(id: string, owner: string, until: Date): void;
  /** Running jobs whose lease names another owner than `owner`: their process is gone. */
  orphaned(owner: string): AnyJob[];
  /** Kept up to date by save() when a backup reaches a terminal state. */
  mandateStats(mandate: string): MandateStats | null;
  allMandateStats(): MandateStats[];
  /** The newest `perMandate` succeeded backups of each of `mandates` (by name; one entry each, in order): one query for all of them. */
  recentBackups(mandates: readonly string[], perMandate: number): RecentBackups[];
  /** Records one scheduled fire (mandate, kind, time); false when it was already recorded. */
  claimFire(mandate: string, kind: string, at: Date): boolean;
  /** The newest recorded fire of a mandate's schedule kind, or null. */
  lastFire(mandate: string, kind: string): Date | null;
  /** Deletes terminal jobs finished before `before`, with their events; returns how many. */
  prune(before: Date): number;
  close(): void;
}
