import type { Logger } from '../logging/logger.js';
import type { VerifyLevel } from '../manifests/verification.js';
import type { Queue } from '../queue/queue.js';

/**
 * Queues a mandate's scheduled verification: a `verify` job of its newest backup at `level`, or a
 * `drill` job when the level is drill. A failure is the job's (loud, in its events and log), never
 * the scheduler's. While an earlier scheduled verification of the mandate is still queued, the new
 * tick is skipped: a slow verification never piles up behind itself.
 */
export function triggerScheduledVerify(queue: Queue, mandate: string, level: VerifyLevel, logger: Logger): void {
  const kind = level === 'drill' ? 'drill' : 'verify';
  const waiting = queue.page({ mandate, kind, state: 'queued', limit: 500 }).jobs.find((job) => job.trigger === 'schedule');
  if (waiting !== undefined) {
    logger.info({ mandate, kind, verify_level: level, job: waiting.id }, 'scheduled verification skipped: the previous one is still queued');
    return;
  }
  // The newest backup, on every target that holds it: what a restore would take. Older ones are
  // covered by `backer verify --subset n/t` rotations.
  const job = queue.submit({ kind, mandate, trigger: 'schedule', params: { level, backup: 'latest' } });
  logger.info({ mandate, kind, verify_level: level, job: job.id }, 'scheduled verification queued');
}
