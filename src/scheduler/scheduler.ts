import { Cron } from 'croner';
import type { Logger } from '../logging/logger.js';
import type { VerifyLevel } from '../manifests/verification.js';
import type { MandateSpec } from '../mandates/types.js';

/** What a schedule starts: the mandate's backup (`interval`), or its scheduled verification (`verify`). */
export type ScheduledRun = { kind: 'backup' } | { kind: 'verify'; level: VerifyLevel };
export type ScheduleKind = ScheduledRun['kind'];

export interface Scheduler {
  /** Reconciles the cron jobs with the current mandates (new, changed, removed). */
  update(mandates: readonly MandateSpec[]): void;
  /** When the mandate's backup (default) or scheduled verification runs next; null when it has none. */
  nextRun(mandate: string, kind?: ScheduleKind): Date | null;
  close(): Promise<void>;
}

export interface SchedulerOptions {
  trigger(mandate: string, run: ScheduledRun): void;
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

export function createScheduler(options: SchedulerOptions): Scheduler {
  const jobs = new Map<string, { signature: string; cron: Cron }>();
  let closed = false;
  return {
    update(mandates) {
      if (closed) return;
      const wanted = wantedSchedules(mandates);
      for (const [key, job] of jobs) {
        const schedule = wanted.get(key);
        if (schedule === undefined || signature(schedule) !== job.signature) {
          job.cron.stop();
          jobs.delete(key);
        }
      }
      for (const [key, schedule] of wanted) {
        if (jobs.has(key)) continue;
        const { mandate, interval, run } = schedule;
        // UTC, like the <DATE> placeholder, so that schedules do not move with the host's zone.
        const cron = new Cron(interval, { timezone: 'UTC', protect: true, mode: '5-or-6-parts', paused: options.paused ?? false }, () => options.trigger(mandate, run));
        jobs.set(key, { signature: signature(schedule), cron });
        options.logger.debug({ mandate, kind: run.kind, interval, next: cron.nextRun()?.toISOString() }, 'scheduled');
      }
    },
    nextRun: (mandate, kind = 'backup') => jobs.get(keyOf(mandate, kind))?.cron.nextRun() ?? null,
    close() {
      closed = true;
      for (const job of jobs.values()) job.cron.stop();
      jobs.clear();
      return Promise.resolve();
    },
  };
}
