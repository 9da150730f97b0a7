import { formatDuration } from '../config/duration.js';
import { BackerError, describeError, errorCode, retryable } from '../errors.js';
import type { JobProgress } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import { failpoint } from '../util/failpoint.js';
import { retryDelay } from './retry.js';
import type { AnyJob, JobEvent, JobOutcome, JobStore } from './types.js';

/** What runs a job: one function per kind, chosen by the daemon. */
export interface JobRunContext {
  signal: AbortSignal;
  /** Reports bytes done (and the expected total): kept on the job and sent as `job.progress`. */
  progress(progress: JobProgress): void;
  /** Adds a line to the job's history (e.g. the name of a restore's safety backup). */
  note(message: string): void;
  /** The job's history so far, earlier attempts included. */
  history(): JobEvent[];
}

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  delayMs: number;
  maxDelayMs: number;
}

export interface AttemptOptions {
  store: JobStore;
  /** The job with its latest progress (kept in memory between heartbeats). */
  read(id: string): AnyJob | undefined;
  /** Whether the store survives the process: a shutdown then interrupts instead of cancelling. */
  durable: boolean;
  logger: Logger;
  run(job: AnyJob, context: JobRunContext): Promise<JobOutcome>;
  /** Saves a change of the job and tells everyone (events, waits). */
  update(job: AnyJob, patch: Partial<AnyJob>): AnyJob;
  progress(id: string, progress: JobProgress): void;
  event(job: AnyJob, type: JobEvent['type'], message: string | null): void;
  /** The lease of this process: renewed while the job runs. */
  owner: string;
  retry: RetryPolicy;
  /** A job whose bytes did not move for this long is failed (a hung dump). Null: never. */
  stallTimeoutMs: number | null;
  /** Lease renewal, progress persistence and the stall check run this often. */
  heartbeatMs: number;
  random?: () => number;
}

/** Why an aborted attempt stopped: a cancel ends the job, a shutdown only interrupts it. */
export type AbortReason = 'cancel' | 'shutdown' | 'stall';

/** A reason of this kind on the controller tells the attempt how to end. */
export class AttemptAbort extends BackerError {
  constructor(
    readonly reason: AbortReason,
    message: string,
  ) {
    super(reason === 'stall' ? 'JOB_STALLED' : 'JOB_CANCELLED', message, { component: 'queue', permanent: true });
  }
}

const LEASE_FACTOR = 3;

/** The outcome of one attempt, from what the runner returned or threw. */
interface Settled {
  outcome: JobOutcome | null;
  thrown: unknown;
}

async function settle(options: AttemptOptions, job: AnyJob, context: JobRunContext): Promise<Settled> {
  try {
    return { outcome: await options.run(job, context), thrown: undefined };
  } catch (err) {
    return { outcome: null, thrown: err };
  }
}

/** Renews the lease, saves the progress and watches for a stall, every heartbeat. */
function startHeartbeat(options: AttemptOptions, job: AnyJob, controller: AbortController): { moved(bytes: number): void; stop(): void } {
  let lastBytes = -1;
  let lastMove = Date.now();
  const timer = setInterval(() => {
    options.store.lease(job.id, options.owner, new Date(Date.now() + options.heartbeatMs * LEASE_FACTOR));
    const current = options.read(job.id);
    if (current?.state === 'running' && current.progress) options.store.save(current);
    if (options.stallTimeoutMs !== null && Date.now() - lastMove > options.stallTimeoutMs && !controller.signal.aborted) {
      const span = options.stallTimeoutMs >= 1000 ? formatDuration(options.stallTimeoutMs) : `${options.stallTimeoutMs} ms`;
      controller.abort(new AttemptAbort('stall', `no progress for ${span} (queue.stall_timeout): the job was stopped`));
    }
  }, options.heartbeatMs);
  timer.unref();
  return {
    moved(bytes) {
      if (bytes !== lastBytes) {
        lastBytes = bytes;
        lastMove = Date.now();
      }
    },
    stop: () => clearInterval(timer),
  };
}

function abortReason(signal: AbortSignal): AttemptAbort | null {
  return signal.aborted && signal.reason instanceof AttemptAbort ? signal.reason : null;
}

/** Whether a failed attempt is tried again: transient errors of kinds that may run twice, within the budget. */
function shouldRetry(job: AnyJob, settled: Settled, policy: RetryPolicy): boolean {
  if (job.kind === 'restore' || job.attempts > policy.retries) return false;
  if (settled.outcome !== null) return settled.outcome.status === 'failed' && settled.outcome.retryable === true;
  return retryable(settled.thrown);
}

/** Ends an attempt: succeeded, failed, retried later, cancelled, or interrupted by a shutdown. */
function finish(options: AttemptOptions, job: AnyJob, settled: Settled, signal: AbortSignal): AnyJob {
  const now = new Date().toISOString();
  const current = { ...job, progress: options.read(job.id)?.progress ?? job.progress };
  const abort = abortReason(signal);
  if (abort?.reason === 'shutdown' && options.durable) return interruptForShutdown(options, current);
  if (abort?.reason === 'cancel' || abort?.reason === 'shutdown' || (signal.aborted && abort === null)) {
    const error = { code: 'JOB_CANCELLED' as const, message: describeError(signal.reason) };
    return options.update(current, { state: 'cancelled', error, result: settled.outcome?.result ?? null, finished_at: now });
  }
  const error = abort !== null ? { code: abort.code, message: abort.message } : settled.outcome !== null ? settled.outcome.error : { code: errorCode(settled.thrown), message: describeError(settled.thrown) };
  const result = settled.outcome?.result ?? null;
  if (settled.outcome?.status === 'succeeded' && abort === null) return options.update(current, { state: 'succeeded', error: null, result, finished_at: now });
  if (abort === null && shouldRetry(current, settled, options.retry)) {
    const delay = retryDelay(current.attempts, options.retry.delayMs, options.retry.maxDelayMs, options.random);
    const at = new Date(Date.now() + delay).toISOString();
    options.event(current, 'retrying', `${error?.message ?? 'failed'}; attempt ${current.attempts + 1} of ${options.retry.retries + 1} at ${at}`);
    options.logger.warn({ job: job.id, mandate: job.mandate, attempt: current.attempts, retry_at: at, err: error?.message }, 'job failed; retrying');
    return options.update(current, { state: 'queued', error, result, not_before: at, progress: null });
  }
  return options.update(current, { state: 'failed', error, result, finished_at: now });
}

/**
 * A shutdown stops the attempt but not the job: a backup or verification is queued again for the
 * next start, a restore is interrupted (never re-run by itself).
 */
function interruptForShutdown(options: AttemptOptions, job: AnyJob): AnyJob {
  const message = 'Backer stopped while the job ran';
  if (job.kind === 'restore') return interruptRestore(options, job, message);
  options.event(job, 'interrupted', `${message}; it runs again from the beginning at the next start`);
  return options.update(job, { state: 'queued', progress: null, not_before: null });
}

/** A restore that did not end is never re-run: the user decides, knowing the safety backup. */
export function interruptRestore(options: Pick<AttemptOptions, 'store' | 'update' | 'event'>, job: AnyJob, why: string): AnyJob {
  const safety = options.store
    .events(job.id)
    .map((e) => /safety backup (\S+) taken/.exec(e.message ?? '')?.[1])
    .filter((name): name is string => name !== undefined)
    .pop();
  const hint = safety === undefined ? 'no safety backup was taken' : `the safety backup ${safety} holds the state before it (backer restore ${job.mandate} ${safety})`;
  const message = `${why}: the restore did not finish and is not re-run automatically; check ${job.mandate}: ${hint}`;
  options.event(job, 'interrupted', message);
  return options.update(job, { state: 'interrupted', error: { code: 'JOB_INTERRUPTED', message }, finished_at: new Date().toISOString() });
}

/** Runs one attempt of a job to its end (whatever the runner does) and records how it ended. */
export async function runAttempt(options: AttemptOptions, queued: AnyJob, controller: AbortController): Promise<AnyJob> {
  const startedAt = new Date();
  const waitFrom = Date.parse(queued.not_before ?? queued.created_at);
  options.store.lease(queued.id, options.owner, new Date(startedAt.getTime() + options.heartbeatMs * LEASE_FACTOR));
  const job = options.update(queued, {
    state: 'running',
    attempts: queued.attempts + 1,
    started_at: startedAt.toISOString(),
    wait_ms: Math.max(0, startedAt.getTime() - waitFrom),
    not_before: null,
    error: null,
  });
  options.event(job, 'started', job.attempts > 1 ? `attempt ${job.attempts}` : null);
  options.logger.info({ job: job.id, kind: job.kind, mandate: job.mandate, trigger: job.trigger, attempt: job.attempts }, 'job started');
  const heartbeat = startHeartbeat(options, job, controller);
  const context: JobRunContext = {
    signal: controller.signal,
    progress: (p) => {
      heartbeat.moved(p.bytes);
      options.progress(job.id, p);
    },
    note: (message) => options.event(job, 'note', message),
    history: () => options.store.events(job.id),
  };
  failpoint('job.started');
  const settled = await settle(options, job, context);
  heartbeat.stop();
  failpoint('job.before-finish');
  const done = finish(options, job, settled, controller.signal);
  if (done.state === 'succeeded' || done.state === 'failed' || done.state === 'cancelled') options.event(done, done.state, done.error?.message ?? null);
  const log = done.state === 'succeeded' || done.state === 'queued' ? options.logger.info.bind(options.logger) : options.logger.error.bind(options.logger);
  log({ job: job.id, kind: job.kind, mandate: job.mandate, state: done.state, attempt: job.attempts, error: done.error?.message }, `job ${done.state}`);
  return done;
}
