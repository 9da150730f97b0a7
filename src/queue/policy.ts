import type { AnyJob, JobTrigger } from './types.js';

/**
 * The queue's choice of what runs next, as pure functions (no timers, no I/O): the queue calls
 * pickRunnable whenever something changed (a job queued, finished, a retry time reached) and
 * starts what it returns.
 */

/** A job with what it needs: the limits it counts against. */
export interface Candidate {
  job: AnyJob;
  /** The targets it writes to or reads from (each counts against that target's concurrency). */
  targets: readonly string[];
  /** Whether it uses the Docker engine (counts against docker.concurrency). */
  docker: boolean;
  /** The mandate's schedule interval in ms, when known: for overloaded(). */
  mandateInterval?: number;
}

export interface Limits {
  /** queue.concurrency: jobs at once, in all. */
  concurrency: number;
  /** targets[].concurrency by target name; a target not in the map has no limit of its own. */
  perTarget: ReadonlyMap<string, number>;
  /** docker.concurrency; null: no limit of its own. */
  docker: number | null;
}

export interface PickInput {
  /** Jobs in state `queued` (including those waiting for a retry time). */
  queued: readonly Candidate[];
  /** Jobs running now. */
  running: readonly Candidate[];
  limits: Limits;
  now: Date;
  /** queue.aging in ms: a waiting job gains one priority step per this much wait. 0 or less: no aging. */
  aging: number;
}

/** Manual triggers; restores count as manual whatever their trigger. */
const MANUAL_TRIGGERS: ReadonlySet<JobTrigger> = new Set(['api', 'cli']);

/** Since when a job waits: its retry time if it has one, else its creation. */
function waitingSince(job: AnyJob): number {
  return Date.parse(job.not_before ?? job.created_at);
}

/** priority + one step per `aging` ms waited. */
export function effectivePriority(job: AnyJob, now: Date, aging: number): number {
  const waited = Math.max(0, now.getTime() - waitingSince(job));
  return job.priority + (aging > 0 ? Math.floor(waited / aging) : 0);
}

/** 0 for manual runs and restores, 1 for scheduled, catch-up and start-up runs: the tie-breaker after priority. */
function triggerRank(job: AnyJob): number {
  return job.kind === 'restore' || MANUAL_TRIGGERS.has(job.trigger) ? 0 : 1;
}

/** The queued jobs in the order they get a slot: effective priority, manual first, oldest first (then the input's order: the sort is stable, and the queue lists jobs as they were queued). */
export function queueOrder(queued: readonly Candidate[], now: Date, aging: number): Candidate[] {
  const keyed = queued.map((c) => ({ c, prio: effectivePriority(c.job, now, aging), rank: triggerRank(c.job), since: waitingSince(c.job) }));
  keyed.sort((a, b) => b.prio - a.prio || a.rank - b.rank || a.since - b.since);
  return keyed.map((k) => k.c);
}

/** What is in use: counts per limit, and the mandates that have a job running or picked. */
class Usage {
  total = 0;
  docker = 0;
  readonly targets = new Map<string, number>();
  readonly mandates = new Set<string>();
  /** Limited resources a skipped job ahead in the order waits for: later jobs may not take them. */
  readonly reservedTargets = new Set<string>();
  dockerReserved = false;

  constructor(readonly limits: Limits) {}

  add(c: Candidate): void {
    this.total++;
    if (c.docker) this.docker++;
    for (const t of new Set(c.targets)) this.targets.set(t, (this.targets.get(t) ?? 0) + 1);
    this.mandates.add(c.job.mandate);
  }

  targetFull(t: string): boolean {
    const limit = this.limits.perTarget.get(t);
    return limit !== undefined && (this.targets.get(t) ?? 0) >= limit;
  }

  dockerFull(): boolean {
    return this.limits.docker !== null && this.docker >= this.limits.docker;
  }

  fits(c: Candidate): boolean {
    if (c.docker && (this.dockerFull() || this.dockerReserved)) return false;
    return c.targets.every((t) => !this.targetFull(t) && !this.reservedTargets.has(t));
  }

  /**
   * `c` was skipped for a limit: its limited targets, and Docker when Docker is what is full, are
   * kept for it, so that jobs behind it cannot take them in turn forever (a job with two targets
   * would otherwise wait for both to be free at once while single-target jobs keep one busy).
   * Jobs that need none of them still start: no head-of-line blocking.
   */
  reserveFor(c: Candidate): void {
    for (const t of c.targets) if (this.limits.perTarget.has(t)) this.reservedTargets.add(t);
    if (c.docker && this.dockerFull()) this.dockerReserved = true;
  }
}

/**
 * The queued jobs to start now, in the order to start them. Rules:
 * - never more than `limits.concurrency` running in all, per target its limit, on Docker its limit;
 * - never two jobs of one mandate at once (not two queued ones of one mandate in one pick either);
 * - a job whose `not_before` is in the future waits;
 * - order (queueOrder): effective priority (priority + floor(waited / aging)), then manual runs
 *   and restores before scheduled ones, then the oldest;
 * - a job that would exceed a target's or Docker's limit is skipped, and jobs behind it that fit
 *   still start (no head-of-line blocking), except on the limited resources the skipped job waits
 *   for (Usage.reserveFor): so a job ahead is never starved by jobs behind it, and aging moves
 *   every waiting job ahead in time.
 */
export function pickRunnable(input: PickInput): AnyJob[] {
  const { limits, now } = input;
  const usage = new Usage(limits);
  const runningIds = new Set<string>();
  for (const c of input.running) {
    usage.add(c);
    runningIds.add(c.job.id);
  }
  const picked: AnyJob[] = [];
  const ready = input.queued.filter((c) => !runningIds.has(c.job.id) && (c.job.not_before === null || Date.parse(c.job.not_before) <= now.getTime()));
  for (const c of queueOrder(ready, now, input.aging)) {
    if (usage.total >= limits.concurrency) break;
    if (usage.mandates.has(c.job.mandate)) continue;
    if (!usage.fits(c)) {
      usage.reserveFor(c);
      continue;
    }
    usage.add(c);
    picked.push(c.job);
  }
  return picked;
}

export interface OverloadedMandate {
  mandate: string;
  /** How long its oldest ready job has waited. */
  waited_ms: number;
  /** Its schedule interval. */
  interval_ms: number;
}

/**
 * The seed's "overloaded queue": mandates whose oldest queued job (ready to run: its retry time,
 * if any, has come) has waited longer than the mandate's schedule interval, i.e. the queue cannot
 * keep up with its schedule. Mandates without a known interval are never overloaded. By mandate name.
 */
export function overloaded(queued: readonly Candidate[], now: Date): OverloadedMandate[] {
  const oldest = new Map<string, OverloadedMandate>();
  for (const c of queued) {
    if (c.mandateInterval === undefined || c.mandateInterval <= 0) continue;
    const since = waitingSince(c.job);
    if (since > now.getTime()) continue;
    const waited = now.getTime() - since;
    const known = oldest.get(c.job.mandate);
    if (known === undefined || waited > known.waited_ms) oldest.set(c.job.mandate, { mandate: c.job.mandate, waited_ms: waited, interval_ms: c.mandateInterval });
  }
  return [...oldest.values()].filter((o) => o.waited_ms > o.interval_ms).sort((a, b) => (a.mandate < b.mandate ? -1 : a.mandate > b.mandate ? 1 : 0));
}
