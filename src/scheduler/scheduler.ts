import { performance } from 'node:perf_hooks';
import { Cron } from 'croner';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { VerifyLevel } from '../manifests/verification.js';
import type { MandateSpec } from '../mandates/types.js';

/** What a schedule starts: the mandate's backup (`interval`), or its scheduled verification (`verify`). */
export type ScheduledRun = { kind: 'backup' } | { kind: 'verify'; level: VerifyLevel };
export type ScheduleKind = ScheduledRun['kind'];

/** Scheduled fires already triggered (the state database): a restart never doubles a run. */
export interface FireLog {
  /** Records the fire; false when it was recorded before (the run exists). */
  claim(mandate: string, kind: ScheduleKind, at: Date): boolean;
  last(mandate: string, kind: ScheduleKind): Date | null;
}

export interface CatchUp {
  mode: 'skip' | 'once';
  windowMs: number;
}

/** How a run came about: its fire time, and whether it makes up for a fire missed while down. */
export interface FireInfo {
  at: Date;
  catchUp: boolean;
}

export interface Scheduler {
  /** Reconciles the cron jobs with the current mandates (new, changed, removed). */
  update(mandates: readonly MandateSpec[]): void;
  /** When the mandate's backup (default) or scheduled verification runs next; null when it has none. */
  nextRun(mandate: string, kind?: ScheduleKind): Date | null;
  /** The time between the mandate's next two backups (for overload detection); null without a schedule. */
  intervalMs(mandate: string): number | null;
  /** Changes whenever a nextRun() answer may have changed (an update, a fire): a key for caches of them. */
  version(): number;
  close(): Promise<void>;
}

export interface SchedulerOptions {
  trigger(mandate: string, run: ScheduledRun, info: FireInfo): void;
  /** Default: none (every fire triggers, nothing is caught up). */
  fires?: FireLog;
  /** Default: skip. */
  catchUp?: CatchUp;
  logger: Logger;
  /** Track schedules (nextRun) without ever firing them; for tests. Default false. */
  paused?: boolean;
}

interface Schedule {
  mandate: string;
  interval: string;
  run: ScheduledRun;
}

const keyOf = (mandate: string, kind: ScheduleKind): string => `${kind}:${mandate}`;

/** A schedule is replaced when any of this changes. */
const signature = (s: Schedule): string => JSON.stringify([s.interval, s.run]);

/** Every mandate's backup schedule, and its verification schedule when it has one. */
function wantedSchedules(mandates: readonly MandateSpec[]): Map<string, Schedule> {
  const wanted = new Map<string, Schedule>();
  for (const m of mandates) {
    wanted.set(keyOf(m.name, 'backup'), { mandate: m.name, interval: m.interval, run: { kind: 'backup' } });
    if (m.verify.interval !== null) {
      wanted.set(keyOf(m.name, 'verify'), { mandate: m.name, interval: m.verify.interval, run: { kind: 'verify', level: m.verify.level } });
    }
  }
  return wanted;
}

/** A fire time to the second: the key of a scheduled run. */
const toSecond = (at: Date): Date => new Date(Math.floor(at.getTime() / 1000) * 1000);

/** The longest the single timer sleeps: a wall clock that jumps (suspend, NTP) is noticed this late at most. */
const MAX_SLEEP_MS = 60_000;

interface Job {
  schedule: Schedule;
  signature: string;
  /** Computes fire times only: it has no callback, hence no timer of its own. */
  cron: Cron;
  /** The next fire time, kept so that asking for it (GET /v1/mandates, per mandate) costs nothing. */
  next: Date | null;
  interval?: { at: number; ms: number | null };
}

/**
 * One timer for every schedule, not one per mandate: it sleeps until the earliest fire time (at
 * most MAX_SLEEP_MS), fires what is due and sleeps again, so an idle daemon with 500 mandates wakes
 * as rarely as one with a single mandate. Fire times come from croner in UTC (a fixed offset of 0:
 * the same times as the "UTC" zone without its per-call Intl cost).
 */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const jobs = new Map<string, Job>();
  const { logger } = options;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let wakeAt = Infinity;
  let version = 0;
  /**
   * One croner instance per cron text, shared by every schedule with that text (500 containers
   * with the default interval parse it once): they have no callback, so they only compute times.
   */
  const crons = new Map<string, Cron>();
  const cronOf = (interval: string): Cron => {
    let cron = crons.get(interval);
    if (cron === undefined) {
      // UTC, like the <DATE> placeholder, so that schedules do not move with the host's zone.
      cron = new Cron(interval, { utcOffset: 0, mode: '5-or-6-parts' });
      crons.set(interval, cron);
    }
    return cron;
  };

  const fire = (schedule: Schedule, at: Date, catchUp: boolean): void => {
    const { mandate, run } = schedule;
    if (options.fires && !options.fires.claim(mandate, run.kind, at)) {
      logger.info({ mandate, kind: run.kind, at: at.toISOString() }, 'scheduled run already triggered; not doubled');
      return;
    }
    options.trigger(mandate, run, { at, catchUp });
  };

  /** schedule.catch_up once: the newest fire time missed while no daemon ran, within the window. */
  const catchUp = (schedule: Schedule, cron: Cron): void => {
    const { mandate, run } = schedule;
    if (options.catchUp?.mode !== 'once' || options.paused === true || run.kind !== 'backup' || !options.fires) return;
    const last = options.fires.last(mandate, run.kind);
    const missed = cron.previousRuns(1, new Date())[0];
    // Only a schedule that fired before can have missed a run; a new mandate starts with its next fire.
    if (last === null || missed === undefined || toSecond(missed) <= last) return;
    if (Date.now() - missed.getTime() > options.catchUp.windowMs) return;
    logger.warn({ mandate, missed: missed.toISOString(), last: last.toISOString() }, 'a scheduled backup was missed while Backer was down; catching up once');
    fire(schedule, toSecond(missed), true);
  };

  /** Fires every due schedule once (a late wake-up fires a missed time once, then moves on), then sleeps again. */
  const wake = (): void => {
    timer = undefined;
    wakeAt = Infinity;
    if (closed) return;
    const now = new Date();
    for (const job of jobs.values()) {
      if (job.next === null || job.next.getTime() > now.getTime()) continue;
      version++;
      const at = job.next;
      job.next = job.cron.nextRun(now);
      if (options.paused === true) continue;
      try {
        fire(job.schedule, toSecond(at), false);
      } catch (err) {
        // One failing trigger must not stop the timer that every other schedule needs.
        logger.error({ mandate: job.schedule.mandate, kind: job.schedule.run.kind, err: describeError(err) }, 'a scheduled run could not be triggered');
      }
    }
    arm();
  };

  /** (Re)arms the timer for the earliest fire time, unless it is armed for that already. */
  const arm = (): void => {
    if (closed) return;
    let earliest = Date.now() + MAX_SLEEP_MS;
    for (const job of jobs.values()) if (job.next !== null && job.next.getTime() < earliest) earliest = job.next.getTime();
    if (timer !== undefined && wakeAt <= earliest) return;
    clearTimeout(timer);
    wakeAt = earliest;
    timer = setTimeout(wake, Math.max(0, earliest - Date.now()));
  };

  const create = (key: string, schedule: Schedule): void => {
    const { mandate, interval, run } = schedule;
    const cron = cronOf(interval);
    const next = cron.nextRun();
    jobs.set(key, { schedule, signature: signature(schedule), cron, next });
    logger.debug({ mandate, kind: run.kind, interval, next: next?.toISOString() }, 'scheduled');
    catchUp(schedule, cron);
  };

  let firstUpdate = true;
  return {
    update(mandates) {
      if (closed) return;
      const t0 = performance.now();
      const wanted = wantedSchedules(mandates);
      for (const [key, job] of jobs) {
        const schedule = wanted.get(key);
        if (schedule === undefined || signature(schedule) !== job.signature) jobs.delete(key);
      }
      let created = 0;
      for (const [key, schedule] of wanted) {
        if (jobs.has(key)) continue;
        create(key, schedule);
        created++;
      }
      const used = new Set([...jobs.values()].map((j) => j.schedule.interval));
      for (const interval of crons.keys()) if (!used.has(interval)) crons.delete(interval);
      version++;
      arm();
      // The start-up's mark (issue 11): at_ms since the process started.
      const fields = { created, ms: Math.round((performance.now() - t0) * 10) / 10, at_ms: Math.round(performance.now()) };
      if (firstUpdate) logger.info(fields, 'startup: schedules created');
      else logger.debug(fields, 'schedules updated');
      firstUpdate = false;
    },
    nextRun: (mandate, kind = 'backup') => jobs.get(keyOf(mandate, kind))?.next ?? null,
    version: () => version,
    intervalMs(mandate) {
      const job = jobs.get(keyOf(mandate, 'backup'));
      if (!job) return null;
      // Asked for every waiting job on every queue pass: computed once per schedule and hour.
      if (job.interval === undefined || Date.now() - job.interval.at > 3_600_000) {
        const [a, b] = job.cron.nextRuns(2);
        job.interval = { at: Date.now(), ms: a && b ? b.getTime() - a.getTime() : null };
      }
      return job.interval.ms;
    },
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      jobs.clear();
      crons.clear();
      version++;
      return Promise.resolve();
    },
  };
}
