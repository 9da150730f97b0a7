import { Cron } from 'croner';

/**
 * Why a cron expression is unusable, or null when it is a valid 5- or 6-field expression (6:
 * seconds first). Shared by mandates (`interval`, `verify`) and the config's `verify.interval`.
 */
export function checkCron(expression: string): string | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `expected a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), received ${JSON.stringify(expression)}`;
  }
  let job: Cron | undefined;
  try {
    // paused and without a function: only the pattern is parsed, nothing is scheduled. In UTC
    // (a fixed offset, as the scheduler computes): whether a pattern ever fires does not depend on
    // the zone, and croner's walk through local time (Intl) costs 5-20x more, ~0.1 s at start for
    // a pattern that fires once in four years (29 February).
    job = new Cron(expression, { paused: true, mode: '5-or-6-parts', utcOffset: 0 });
    if (job.nextRun() === null) return `${JSON.stringify(expression)} never fires`;
    return null;
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, '') : String(err);
    return `invalid cron expression ${JSON.stringify(expression)}: ${reason}`;
  } finally {
    job?.stop();
  }
}
