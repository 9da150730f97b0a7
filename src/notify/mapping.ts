import type { BackerEvent } from '../events/bus.js';
import type { AnyJob } from '../queue/types.js';
import type { ProblemEvent } from './dedup-store.js';
import type { NotifyEvent } from './events.js';
import type { TemplateContext } from './templates.js';

/** Failures and staleness: a success closes both and is announced as backup_recovered. */
export const FAILURE_PROBLEMS: readonly ProblemEvent[] = ['backup_failed', 'stale'];

/** What one bus event asks of the notifier. */
export type Action =
  /** Sent every time (to the destinations that want it). */
  | { kind: 'once'; ctx: TemplateContext }
  /** Opens a problem (or repeats it: a reminder once due). */
  | { kind: 'problem'; event: ProblemEvent; mandate: string; ctx: TemplateContext }
  /** Closes problems; with `recovered`, a destination that had a failure or staleness open hears of it. */
  | { kind: 'resolve'; mandate: string; events: readonly ProblemEvent[]; recovered: TemplateContext | null }
  /** Only these mandates exist now: forget the others' problems. */
  | { kind: 'retain'; mandates: string[] };

export type TargetsOf = (mandate: string) => string[];

function targetText(named: string[]): string | null {
  return named.length === 0 ? null : named.join(', ');
}

function jobContext(job: AnyJob, event: NotifyEvent, at: string, targets: TargetsOf): TemplateContext {
  const result = job.result as { targets?: { target: string }[]; raw_size?: number | null } | null;
  const details = job.kind === 'backup' && typeof result?.raw_size === 'number' ? `${result.raw_size} bytes raw` : null;
  return {
    event, mandate: job.mandate, target: targetText(result?.targets?.map((t) => t.target) ?? targets(job.mandate)), error: job.error, job_id: job.id, at,
    details, command: `backer jobs show ${job.id}`, outcome: null, reminder: false,
  };
}

function mandateContext(mandate: string, event: NotifyEvent, at: string, details: string | null, targets: TargetsOf): TemplateContext {
  return { event, mandate, target: targetText(targets(mandate)), error: null, job_id: null, at, details, command: `backer mandates show ${mandate}`, outcome: null, reminder: false };
}

function backupActions(type: BackerEvent['type'], job: AnyJob, ctx: (e: NotifyEvent) => TemplateContext): Action[] {
  if (type === 'job.failed') return [{ kind: 'problem', event: 'backup_failed', mandate: job.mandate, ctx: ctx('backup_failed') }];
  if (type !== 'job.succeeded') return [];
  return [
    { kind: 'once', ctx: ctx('backup_succeeded') },
    { kind: 'resolve', mandate: job.mandate, events: FAILURE_PROBLEMS, recovered: ctx('backup_recovered') },
  ];
}

function restoreActions(type: BackerEvent['type'], job: AnyJob, ctx: (e: NotifyEvent) => TemplateContext): Action[] {
  if (type === 'job.started') return [{ kind: 'once', ctx: { ...ctx('restore_started'), details: JSON.stringify(job.params ?? {}) } }];
  if (type !== 'job.succeeded' && type !== 'job.failed' && type !== 'job.cancelled') return [];
  const outcome = type.slice('job.'.length);
  return [{ kind: 'once', ctx: { ...ctx('restore_finished'), outcome, level: outcome === 'succeeded' ? 'info' : outcome === 'failed' ? 'error' : 'warning' } }];
}

function jobActions(type: BackerEvent['type'], job: AnyJob, now: string, targets: TargetsOf): Action[] {
  const at = job.finished_at ?? job.started_at ?? now;
  const ctx = (event: NotifyEvent): TemplateContext => jobContext(job, event, at, targets);
  if (job.kind === 'backup') return backupActions(type, job, ctx);
  if (job.kind === 'restore') return restoreActions(type, job, ctx);
  // verify and drill
  if (type === 'job.failed') return [{ kind: 'problem', event: 'verification_failed', mandate: job.mandate, ctx: ctx('verification_failed') }];
  if (type === 'job.succeeded') return [{ kind: 'resolve', mandate: job.mandate, events: ['verification_failed'], recovered: null }];
  return [];
}

/**
 * Maps a bus event to notifier actions: job.failed backup → backup_failed; job.succeeded backup →
 * backup_succeeded and recovery; mandate.status → stale, or ok after a problem → recovery;
 * mandate.size_anomaly; job.failed verify/drill → verification_failed; restores started/finished.
 */
export function actionsFor(e: BackerEvent, now: string, targets: TargetsOf): Action[] {
  switch (e.type) {
    case 'job.started':
    case 'job.succeeded':
    case 'job.failed':
    case 'job.cancelled':
      return jobActions(e.type, e.job, now, targets);
    case 'mandate.status':
      if (e.status === 'stale' && e.previous !== 'stale') return [{ kind: 'problem', event: 'stale', mandate: e.mandate, ctx: mandateContext(e.mandate, 'stale', now, e.health.reason, targets) }];
      if (e.status === 'ok' && e.previous !== null && e.previous !== 'ok') {
        return [{ kind: 'resolve', mandate: e.mandate, events: FAILURE_PROBLEMS, recovered: mandateContext(e.mandate, 'backup_recovered', now, null, targets) }];
      }
      return [];
    case 'mandate.size_anomaly':
      return [{ kind: 'once', ctx: { ...mandateContext(e.mandate, 'size_anomaly', now, e.reason, targets), job_id: e.job_id, command: `backer jobs show ${e.job_id}` } }];
    case 'mandates.changed':
      return [{ kind: 'retain', mandates: [...e.mandates, ...e.skipped] }];
    default:
      return [];
  }
}
