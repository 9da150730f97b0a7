import { Cron } from 'croner';
import type { MandateSpec } from '../mandates/types.js';
import type { Logger } from '../logging/logger.js';

export interface Scheduler {
  /** Reconciles the cron jobs with the current mandates (new, changed, removed). */
  update(mandates: readonly MandateSpec[]): void;
  nextRun(mandate: string): Date | null;
  close(): Promise<void>;
}

export interface SchedulerOptions {
  trigger(mandate: string): void;
  logger: Logger;
  /** Track schedules (nextRun) without ever firing them; for tests. Default false. */
  paused?: boolean;
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  const jobs = new Map<string, { interval: string; cron: Cron }>();
  let closed = false;
  return {
    update(mandates) {
      if (closed) return;
      const wanted = new Map(mandates.map((m) => [m.name, m.interval]));
      for (const [name, job] of jobs) {
        if (wanted.get(name) !== job.interval) {
          job.cron.stop();
          jobs.delete(name);
        }
      }
      for (const [name, interval] of wanted) {
        if (jobs.has(name)) continue;
        // UTC, like the <DATE> placeholder, so that schedules do not move with the host's zone.
        const cron = new Cron(interval, { timezone: 'UTC', protect: true, mode: '5-or-6-parts', paused: options.paused ?? false }, () => options.trigger(name));
        jobs.set(name, { interval, cron });
        options.logger.debug({ mandate: name, interval, next: cron.nextRun()?.toISOString() }, 'scheduled');
      }
    },
    nextRun: (mandate) => jobs.get(mandate)?.cron.nextRun() ?? null,
    close() {
      closed = true;
      for (const job of jobs.values()) job.cron.stop();
      jobs.clear();
      return Promise.resolve();
    },
  };
}
