import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { BackerError } from '../errors.js';
import type { EventBus, JobProgress } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import { ownerKey } from '../state/daemon-lock.js';
import { currentOwner } from '../state/owner.js';
import { AttemptAbort, interruptRestore, runAttempt, type AttemptOptions, type JobRunContext, type RetryPolicy } from './attempt.js';
import { createMemoryJobStore } from './memory-store.js';
import { overloaded, pickRunnable, queueOrder, type Candidate } from './policy.js';
import { queueStats, type QueueStats } from './queue-stats.js';
import { TERMINAL_STATES, type AnyJob, type RecentBackups, type JobEvent, type JobFilter, type JobKind, type JobOutcome, type JobStore, type JobTrigger, type MandateStats } from './types.js';

export type { JobRunContext, RetryPolicy } from './attempt.js';
export type { QueueStats } from './queue-stats.js';

/** What a job of a mandate needs from the shared limits, and how urgent it is. */
export interface JobNeeds {
  targets: string[];
  /** Whether it uses the Docker engine (counts against docker.concurrency). */
  docker: boolean;
  /** The mandate's schedule interval: a job that waits longer means the queue cannot keep up. */
  intervalMs: number | null;
  /** 0–9, higher first. */
  priority: number;
}

const NO_NEEDS: JobNeeds = { targets: [], docker: false, intervalMs: null, priority: 5 };

export interface QueueOptions {
  /** Jobs running at once, across all mandates. */
  concurrency: number;
  run(job: AnyJob, context: JobRunContext): Promise<JobOutcome>;
  logger: Logger;
  /** Default: in memory (nothing survives the process). */
  store?: JobStore;
  /** Whether the store survives the process: then a shutdown leaves queued jobs for the next start. */
  durable?: boolean;
  /** Receives job.queued/started/progress/succeeded/failed/cancelled/interrupted/retrying. */
  events?: EventBus;
  /** What a mandate's jobs need (targets, Docker) and their priority; unknown mandates need nothing. */
  needs?(mandate: string): JobNeeds;
  limits?: { perTarget: ReadonlyMap<string, number>; docker: number | null };
  /** Default: no retries. */
  retry?: RetryPolicy;
  /** Default: no stall watchdog. */
  stallTimeoutMs?: number | null;
  /** A waiting job gains one priority step per this much wait. Default 10 min. */
  agingMs?: number;
  /** Lease renewal and stall checks. Default 5 s. */
  heartbeatMs?: number;
  random?: () => number;
}

export interface EnqueueRequest {
  kind: JobKind;
  mandate: string;
  trigger: JobTrigger;
  params?: Record<string, unknown>;
  /** Default: the mandate's priority. */
  priority?: number;
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
   * Each queued job that is ready to run (no retry time ahead) by id, with its place in the order
   * the queue gives slots (1: next); limits may still let a later job start first.
   */
  positions(): ReadonlyMap<string, number>;
  /** The mandate's figures kept by the store (backups only); null before its first finished backup. */
  mandateStats(mandate: string): MandateStats | null;
  /** The newest `perMandate` succeeded backups of each of `mandates` (one store query for all; one entry each, in order). */
  recentBackups(mandates: readonly string[], perMandate: number): RecentBackups[];
  /**
   * Resolves with the job once it reached a terminal state, or, when `signal` aborts first (a wait
   * that timed out, a client that went away), with the job as it is then. Either way nothing of
   * the wait is left behind.
   */
  wait(id: string, signal?: AbortSignal): Promise<AnyJob>;
  cancel(id: string): AnyJob;
  /** How many waits are pending (for tests and diagnostics: every finished wait is gone from it). */
  waiters(): number;
  /** Takes over the store's jobs (interrupted ones of a previous process included), then runs jobs. */
  start(): void;
  /**
   * Stops taking jobs, stops running ones and waits until their cleanup is done. With a durable
   * store, queued jobs stay queued and stopped backups are queued again for the next start; in
   * memory, both are cancelled. Idempotent.
   */
  close(): Promise<void>;
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
  candidate: Candidate;
}

const busType = (job: AnyJob): 'job.queued' | 'job.started' | 'job.succeeded' | 'job.failed' | 'job.cancelled' | 'job.interrupted' | 'job.retrying' => {
  if (job.state === 'running') return 'job.started';
  if (job.state === 'queued') return job.attempts > 0 ? 'job.retrying' : 'job.queued';
  return `job.${job.state}`;
};

export function createQueue(options: QueueOptions): Queue {
  const store = options.store ?? createMemoryJobStore();
  const durable = options.durable ?? false;
  const owner = ownerKey(currentOwner());
  const changes = new EventEmitter();
  // One listener per pending wait: many CLI clients following jobs at once are normal, not a leak
  // (a wait always removes its listener, see wait()).
  changes.setMaxListeners(0);
  const pending = new Set<string>();
  const running = new Map<string, Running>();
  let wake: NodeJS.Timeout | undefined;
  let started = false;
  let closed = false;

  const limits = { concurrency: options.concurrency, perTarget: new Map(options.limits?.perTarget ?? []), docker: options.limits?.docker ?? null };
  const needsOf = (mandate: string): JobNeeds => {
    try {
      return options.needs?.(mandate) ?? NO_NEEDS;
    } catch {
      // A mandate that is gone needs nothing: its job fails with the reason when it runs.
      return NO_NEEDS;
    }
  };
  const candidate = (job: AnyJob): Candidate => {
    const needs = needsOf(job.mandate);
    return { job, targets: needs.targets, docker: needs.docker, mandateInterval: needs.intervalMs ?? undefined };
  };

  const update = (job: AnyJob, patch: Partial<AnyJob>): AnyJob => {
    const next = { ...job, ...patch };
    store.save(next);
    changes.emit('change', next);
    if (patch.state !== undefined) options.events?.emit({ type: busType(next), job: next });
    if (next.state === 'queued' && !closed) pending.add(next.id);
    return next;
  };
  const event = (job: AnyJob, type: JobEvent['type'], message: string | null): void =>
    store.addEvent(job.id, { at: new Date().toISOString(), attempt: job.attempts, type, message });

  const reportProgress = (id: string, progress: JobProgress): void => {
    const job = store.get(id);
    if (!job || job.state !== 'running') return;
    // Kept in memory by the store's reader; persisted on the heartbeat (see attempt.ts).
    progressOf.set(id, progress);
    options.events?.emit({ type: 'job.progress', job_id: id, kind: job.kind, mandate: job.mandate, progress });
  };
  const progressOf = new Map<string, JobProgress>();
  const withProgress = (job: AnyJob | undefined): AnyJob | undefined => {
    const progress = job?.state === 'running' ? progressOf.get(job.id) : undefined;
    return job && progress ? { ...job, progress } : job;
  };
  const read = (id: string): AnyJob | undefined => withProgress(store.get(id));

  const mustGet = (id: string): AnyJob => {
    const job = read(id);
    if (!job) throw new BackerError('JOB_NOT_FOUND', `no job ${id}`, { component: 'queue', details: { job: id } });
    return job;
  };

  const attemptOptions: AttemptOptions = {
    store,
    read,
    logger: options.logger,
    run: (job, context) => options.run(job, context),
    update,
    progress: reportProgress,
    event,
    owner,
    durable,
    retry: options.retry ?? { retries: 0, delayMs: 30_000, maxDelayMs: 900_000 },
    stallTimeoutMs: options.stallTimeoutMs ?? null,
    heartbeatMs: options.heartbeatMs ?? 5000,
    random: options.random,
  };

  const startJob = (c: Candidate): void => {
    const { job } = c;
    pending.delete(job.id);
    const controller = new AbortController();
    const done = runAttempt(attemptOptions, job, controller)
      .then(() => undefined)
      .finally(() => {
        running.delete(job.id);
        progressOf.delete(job.id);
        pump();
      });
    running.set(job.id, { controller, done, candidate: c });
  };

  /** Sleeps until the earliest retry time among the queued jobs, then picks again. */
  const wakeForRetries = (queued: AnyJob[]): void => {
    if (wake) clearTimeout(wake);
    const times = queued.map((j) => (j.not_before === null ? Infinity : Date.parse(j.not_before))).filter((t) => t > Date.now() && t !== Infinity);
    if (times.length === 0) return;
    wake = setTimeout(pump, Math.min(...times) - Date.now() + 5);
    wake.unref();
  };

  function pump(): void {
    if (!started || closed) return;
    const queued: AnyJob[] = [];
    for (const id of pending) {
      const job = store.get(id);
      if (job?.state === 'queued') queued.push(job);
      else pending.delete(id);
    }
    // What each waiting job needs, looked up once per pass.
    const candidates = queued.map(candidate);
    const picks = pickRunnable({
      queued: candidates,
      running: [...running.values()].map((r) => r.candidate),
      limits,
      now: new Date(),
      aging: options.agingMs ?? 600_000,
    });
    const byId = new Map(candidates.map((c) => [c.job.id, c]));
    for (const job of picks) startJob(byId.get(job.id) ?? candidate(job));
    const waiting = candidates.filter((c) => !running.has(c.job.id));
    wakeForRetries(waiting.map((c) => c.job));
    warnOverloaded(waiting);
  }

  /** Says once per episode that a mandate's jobs wait longer than its interval (the queue cannot keep up). */
  const overloadedNow = new Set<string>();
  function warnOverloaded(waiting: Candidate[]): void {
    const now = overloaded(waiting, new Date());
    for (const o of now) {
      if (overloadedNow.has(o.mandate)) continue;
      options.logger.warn({ mandate: o.mandate, waited_ms: o.waited_ms, interval_ms: o.interval_ms }, 'queue overloaded: a job waits longer than its mandate\'s interval; raise queue.concurrency or a target\'s concurrency, or space the schedules');
    }
    overloadedNow.clear();
    for (const o of now) overloadedNow.add(o.mandate);
  }

  const submit = (request: EnqueueRequest): AnyJob => {
    if (closed) throw new BackerError('INTERNAL', 'the queue is closed', { component: 'queue' });
    if (request.kind === 'backup') {
      for (const id of pending) {
        const queued = store.get(id);
        if (queued?.kind === 'backup' && queued.mandate === request.mandate && queued.state === 'queued' && queued.not_before === null) return queued;
      }
    }
    const job: AnyJob = {
      id: randomUUID(),
      kind: request.kind,
      mandate: request.mandate,
      params: request.params ?? null,
      progress: null,
      trigger: request.trigger,
      state: 'queued',
      priority: request.priority ?? needsOf(request.mandate).priority,
      attempts: 0,
      not_before: null,
      wait_ms: null,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
      error: null,
      result: null,
    };
    update(job, { state: 'queued' });
    event(job, 'queued', `${request.trigger}, priority ${job.priority}`);
    pump();
    return read(job.id) ?? job;
  };

  /** Jobs a previous process left running ended with it: backups run again, restores do not. */
  const takeOver = (): void => {
    for (const job of store.orphaned(owner)) {
      const why = 'the Backer process running it ended (a crash, a kill or a power cut)';
      if (job.kind === 'restore') {
        interruptRestore(attemptOptions, job, why);
        continue;
      }
      event(job, 'interrupted', `${why}; it runs again from the beginning`);
      update(job, { state: 'queued', progress: null, not_before: null });
      options.logger.warn({ job: job.id, kind: job.kind, mandate: job.mandate, attempt: job.attempts }, 'job interrupted by the end of the previous process; queued again');
    }
    for (const job of store.active()) if (job.state === 'queued') pending.add(job.id);
  };

  const positions = (): Map<string, number> => {
    const now = new Date();
    const ready = [...pending]
      .map((id) => store.get(id))
      .filter((j): j is AnyJob => j?.state === 'queued' && !running.has(j.id) && (j.not_before === null || Date.parse(j.not_before) <= now.getTime()));
    const order = queueOrder(ready.map(candidate), now, options.agingMs ?? 600_000);
    return new Map(order.map((c, i) => [c.job.id, i + 1]));
  };

  return {
    enqueue: (mandate, trigger) => submit({ kind: 'backup', mandate, trigger }),
    positions,
    submit,
    get: read,
    page: (filter) => {
      const page = store.list(filter);
      return { ...page, jobs: page.jobs.map((j) => withProgress(j) ?? j) };
    },
    list: (filter) => store.list({ ...filter, limit: Number.MAX_SAFE_INTEGER }).jobs.map((j) => withProgress(j) ?? j),
    mandateStats: (mandate) => store.mandateStats(mandate),
    recentBackups: (mandates, perMandate) => store.recentBackups(mandates, perMandate),
    history: (id) => {
      mustGet(id);
      return store.events(id);
    },
    stats: () => queueStats(store, options.concurrency, overloaded([...pending].map((id) => store.get(id)).filter((j): j is AnyJob => j !== undefined).map(candidate), new Date())),
    wait(id, signal) {
      const job = mustGet(id);
      if (TERMINAL_STATES.has(job.state) || signal?.aborted === true) return Promise.resolve(job);
      return new Promise((resolve) => {
        const finish = (result: AnyJob): void => {
          changes.off('change', listener);
          signal?.removeEventListener('abort', onAbort);
          resolve(result);
        };
        const listener = (changed: AnyJob): void => {
          if (changed.id === id && TERMINAL_STATES.has(changed.state)) finish(changed);
        };
        // The store may have forgotten the job meanwhile: then the last state this wait knew.
        const onAbort = (): void => finish(read(id) ?? job);
        changes.on('change', listener);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    waiters: () => changes.listenerCount('change'),
    cancel(id) {
      const job = mustGet(id);
      if (job.state === 'queued') {
        pending.delete(id);
        const done = update(job, { state: 'cancelled', finished_at: new Date().toISOString() });
        event(done, 'cancelled', 'cancelled on request');
        return done;
      }
      running.get(id)?.controller.abort(new AttemptAbort('cancel', 'cancelled on request'));
      return mustGet(id);
    },
    start() {
      if (started) return;
      takeOver();
      started = true;
      pump();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (wake) clearTimeout(wake);
      if (!durable) {
        for (const id of pending) {
          const job = store.get(id);
          if (job?.state === 'queued') update(job, { state: 'cancelled', finished_at: new Date().toISOString() });
        }
      }
      pending.clear();
      for (const r of running.values()) r.controller.abort(new AttemptAbort('shutdown', 'Backer is shutting down'));
      await Promise.all([...running.values()].map((r) => r.done));
    },
  };
}

