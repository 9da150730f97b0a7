import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { BackerError, describeError, errorCode } from '../errors.js';
import type { EventBus, JobProgress } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import { createMemoryJobStore } from './memory-store.js';
import { TERMINAL_STATES, type AnyJob, type JobEvent, type JobFilter, type JobKind, type JobOutcome, type JobStore, type JobTrigger } from './types.js';

/** What runs a job: one function per kind, chosen by the daemon. */
export interface JobRunContext {
  signal: AbortSignal;
  /** Reports bytes done (and the expected total): kept on the job and sent as `job.progress`. */
  progress(progress: JobProgress): void;
}

export interface QueueOptions {
  /** Jobs running at once, across all mandates. Default 2. */
  concurrency: number;
  run(job: AnyJob, context: JobRunContext): Promise<JobOutcome>;
  logger: Logger;
  store?: JobStore;
  /** Receives job.queued/started/progress/succeeded/failed/cancelled. Default: none. */
  events?: EventBus;
}

/** `backer queue stats`, `GET /v1/queue/stats`. */
export interface QueueStats {
  running: number;
  /** Queued and ready to run. */
  queued: number;
  /** Queued, waiting for a retry's time. */
  retrying: number;
  concurrency: number;
  /** Wait from queued to started of the jobs started in the last 24 h; null when none. */
  wait_ms_p50: number | null;
  wait_ms_p95: number | null;
  failures_24h: number;
  /** Mandates whose jobs waited longer than their schedule's interval: the queue cannot keep up. */
  overloaded: { mandate: string; waited_ms: number; interval_ms: number }[];
}

export interface EnqueueRequest {
  kind: JobKind;
  mandate: string;
  trigger: JobTrigger;
  params?: Record<string, unknown>;
}

export interface Queue {
  /**
   * Asks for a backup of `mandate`. While a job for it is still queued, the trigger is coalesced
   * with that job (returned as is); while one runs, the new job waits for it.
   */
  enqueue(mandate: string, trigger: JobTrigger): AnyJob;
  /** Any kind of job. Only backups coalesce with a queued job of the same mandate. */
  submit(request: EnqueueRequest): AnyJob;
  get(id: string): AnyJob | undefined;
  /** Every matching job, newest first (no paging). */
  list(filter?: { mandate?: string; kind?: JobKind }): AnyJob[];
  /** One page of matching jobs, newest first, and how many match in all. */
  page(filter: JobFilter): { jobs: AnyJob[]; total: number };
  /** The job's history: attempts, retries, interruptions (oldest first). */
  history(id: string): JobEvent[];
  stats(): QueueStats;
  /**
   * Resolves with the job once it reached a terminal state, or, when `signal` aborts first (a wait
   * that timed out, a client that went away), with the job as it is then. Either way nothing of
   * the wait is left behind.
   */
  wait(id: string, signal?: AbortSignal): Promise<AnyJob>;
  cancel(id: string): AnyJob;
  /** How many waits are pending (for tests and diagnostics: every finished wait is gone from it). */
  waiters(): number;
  start(): void;
  /** Stops taking jobs, cancels running ones and waits until their cleanup is done. Idempotent. */
  close(): Promise<void>;
}

export function createQueue(options: QueueOptions): Queue {
  const store = options.store ?? createMemoryJobStore();
  const events = new EventEmitter();
  // One listener per pending wait: many CLI clients following jobs at once are normal, not a leak
  // (a wait always removes its listener, see wait()).
  events.setMaxListeners(0);
  const pending: string[] = [];
  const running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  const runningMandates = new Set<string>();
  let started = false;
  let closed = false;

  const update = (job: AnyJob, patch: Partial<AnyJob>): AnyJob => {
    const next = { ...job, ...patch };
    store.save(next);
    events.emit('change', next);
    if (patch.state !== undefined) options.events?.emit({ type: patch.state === 'running' ? 'job.started' : `job.${patch.state}`, job: next });
    return next;
  };

  const reportProgress = (id: string, progress: JobProgress): void => {
    const job = store.get(id);
    if (!job || job.state !== 'running') return;
    store.save({ ...job, progress });
    options.events?.emit({ type: 'job.progress', job_id: id, kind: job.kind, mandate: job.mandate, progress });
  };

  const mustGet = (id: string): AnyJob => {
    const job = store.get(id);
    if (!job) throw new BackerError('JOB_NOT_FOUND', `no job ${id}`, { component: 'queue', details: { job: id } });
    return job;
  };

  const execute = async (job: AnyJob, controller: AbortController): Promise<void> => {
    let current = update(job, { state: 'running', started_at: new Date().toISOString() });
    options.logger.info({ job: job.id, kind: job.kind, mandate: job.mandate, trigger: job.trigger }, 'job started');
    try {
      const outcome = await options.run(current, { signal: controller.signal, progress: (p) => reportProgress(job.id, p) });
      current = { ...current, progress: store.get(job.id)?.progress ?? current.progress };
      current = update(current, {
        state: controller.signal.aborted ? 'cancelled' : outcome.status,
        result: outcome.result,
        error: outcome.error,
        finished_at: new Date().toISOString(),
      });
    } catch (err) {
      current = update(current, {
        state: controller.signal.aborted ? 'cancelled' : 'failed',
        error: { code: errorCode(err), message: describeError(err) },
        finished_at: new Date().toISOString(),
      });
    }
    const log = current.state === 'succeeded' ? options.logger.info.bind(options.logger) : options.logger.error.bind(options.logger);
    log({ job: job.id, kind: job.kind, mandate: job.mandate, state: current.state, error: current.error?.message }, `job ${current.state}`);
  };

  const pump = (): void => {
    if (!started || closed) return;
    for (let i = 0; i < pending.length && running.size < options.concurrency; ) {
      const id = pending[i] as string;
      const job = store.get(id);
      if (!job || job.state !== 'queued') {
        pending.splice(i, 1);
        continue;
      }
      if (runningMandates.has(job.mandate)) {
        i++;
        continue;
      }
      pending.splice(i, 1);
      const controller = new AbortController();
      runningMandates.add(job.mandate);
      const done = execute(job, controller).finally(() => {
        running.delete(id);
        runningMandates.delete(job.mandate);
        pump();
      });
      running.set(id, { controller, done });
    }
  };

  const submit = (request: EnqueueRequest): AnyJob => {
    if (closed) throw new BackerError('INTERNAL', 'the queue is closed', { component: 'queue' });
    if (request.kind === 'backup') {
      const queued = pending.map((id) => store.get(id)).find((j) => j?.kind === 'backup' && j.mandate === request.mandate && j.state === 'queued');
      if (queued) return queued;
    }
    const job: AnyJob = {
      id: randomUUID(),
      kind: request.kind,
      mandate: request.mandate,
      params: request.params ?? null,
      progress: null,
      trigger: request.trigger,
      state: 'queued',
      priority: 5,
      attempts: 0,
      not_before: null,
      wait_ms: null,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
      error: null,
      result: null,
    };
    store.save(job);
    pending.push(job.id);
    events.emit('change', job);
    options.events?.emit({ type: 'job.queued', job });
    pump();
    return store.get(job.id) ?? job;
  };

  return {
    enqueue: (mandate, trigger) => submit({ kind: 'backup', mandate, trigger }),
    submit,
    get: (id) => store.get(id),
    page: (filter) => store.list(filter),
    history: (id) => {
      mustGet(id);
      return store.events(id);
    },
    stats: () => {
      const active = store.active();
      const failures = store.finishedSince(new Date(Date.now() - 86_400_000)).filter((j) => j.state === 'failed').length;
      return {
        running: active.filter((j) => j.state === 'running').length,
        queued: active.filter((j) => j.state === 'queued' && j.not_before === null).length,
        retrying: active.filter((j) => j.state === 'queued' && j.not_before !== null).length,
        concurrency: options.concurrency,
        wait_ms_p50: null,
        wait_ms_p95: null,
        failures_24h: failures,
        overloaded: [],
      };
    },
    list(filter) {
      return store.list({ ...filter, limit: Number.MAX_SAFE_INTEGER }).jobs;
    },
    wait(id, signal) {
      const job = mustGet(id);
      if (TERMINAL_STATES.has(job.state) || signal?.aborted === true) return Promise.resolve(job);
      return new Promise((resolve) => {
        const finish = (result: AnyJob): void => {
          events.off('change', listener);
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        };
        const listener = (changed: AnyJob): void => {
          if (changed.id === id && TERMINAL_STATES.has(changed.state)) finish(changed);
        };
        // The store may have forgotten the job meanwhile: then the last state this wait knew.
        const onAbort = (): void => finish(store.get(id) ?? job);
        events.on('change', listener);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    waiters: () => events.listenerCount('change'),
    cancel(id) {
      const job = mustGet(id);
      if (job.state === 'queued') return update(job, { state: 'cancelled', finished_at: new Date().toISOString() });
      running.get(id)?.controller.abort(new BackerError('JOB_CANCELLED', 'cancelled on request', { component: 'queue' }));
      return mustGet(id);
    },
    start() {
      started = true;
      pump();
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const id of pending.splice(0)) {
        const job = store.get(id);
        if (job?.state === 'queued') update(job, { state: 'cancelled', finished_at: new Date().toISOString() });
      }
      for (const r of running.values()) r.controller.abort(new BackerError('JOB_CANCELLED', 'Backer is shutting down', { component: 'queue' }));
      await Promise.all([...running.values()].map((r) => r.done));
    },
  };
}
