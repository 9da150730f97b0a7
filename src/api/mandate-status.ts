import { z } from '@hono/zod-openapi';
import { RETRY_CLASS, type ErrorCode } from '../errors.js';
import type { MandateSpec } from '../mandates/types.js';
import type { Queue } from '../queue/queue.js';
import type { RecentBackups } from '../queue/types.js';
import { MANDATE_STATUSES, type MandateHealth } from '../status/types.js';
import type { ApiDeps } from './app.js';

/**
 * What `GET /v1/mandates` adds to each mandate: its status and health (from the status monitor,
 * when the daemon has one), its last successful backup (from the job history) and its next run.
 */

// No import of schemas.ts: it may import these (its Mandate schema documents them).
const ERROR_CODES = Object.keys(RETRY_CLASS).sort() as [ErrorCode, ...ErrorCode[]];

export const mandateHealthSchema = z
  .object({
    mandate: z.string(),
    status: z.enum(MANDATE_STATUSES),
    reason: z.string().nullable(),
    last_success_at: z.string().nullable(),
    last_attempt_at: z.string().nullable(),
    last_error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }).nullable(),
    expected_interval_ms: z.number().nullable(),
    max_age_ms: z.number().nullable(),
    age_ms: z.number().nullable(),
    first_seen_at: z.string(),
    last_raw_bytes: z.number().nullable(),
    running: z.boolean(),
  })
  .openapi('MandateHealth');

export const lastBackupSchema = z
  .object({
    name: z.string(),
    created_at: z.string().openapi({ description: 'When the backup job started' }),
    raw_bytes: z.number().nullable().openapi({ description: 'The dump, before middleware' }),
    stored_bytes: z.number().nullable().openapi({ description: 'The artifact as stored (after middleware)' }),
  })
  .nullable()
  .openapi('LastBackup');

export type LastBackup = z.infer<typeof lastBackupSchema>;

/** Raw sizes the sparkline of `GET /v1/mandates` shows (`recent_sizes`). */
export const RECENT_SIZES = 30;

/** The newest succeeded backup job's result, or null. */
function lastBackup(recent: RecentBackups | undefined): LastBackup {
  const newest = recent?.newest;
  if (!newest || newest.name === null) return null;
  return { name: newest.name, created_at: newest.started_at ?? newest.created_at, raw_bytes: newest.raw_bytes, stored_bytes: newest.stored_bytes };
}

/** Last backup and recent raw sizes (oldest first) of every mandate, from one store query. */
function backupFigures(queue: Pick<Queue, 'recentBackups'>, mandates: readonly string[]): (mandate: string) => { last_backup: LastBackup; recent_sizes: number[] } {
  const byMandate = new Map(queue.recentBackups(mandates, RECENT_SIZES).map((r) => [r.mandate, r]));
  return (mandate) => {
    const recent = byMandate.get(mandate);
    const sizes = (recent?.raw_sizes ?? []).filter((n): n is number => n !== null);
    return { last_backup: lastBackup(recent), recent_sizes: sizes.reverse() };
  };
}

/** `status` and `health` when the daemon has a status monitor; nothing otherwise. */
function healthFields(health: MandateHealth | undefined): { status?: MandateHealth['status']; health?: MandateHealth } {
  return health === undefined ? {} : { status: health.status, health };
}

/** The body of `GET /v1/mandates` (`settings`: operations.ts mandateJson): runnable mandates with status, last backup and next run; skipped ones with their problems. */
export function mandateListing(
  deps: Pick<ApiDeps, 'services' | 'scheduler' | 'queue' | 'status'>,
  settings: (m: MandateSpec, nextRun: Date | null, nextVerify: Date | null) => Record<string, unknown>,
): Record<string, unknown> {
  const snapshot = deps.services.discovery.current();
  // One query for all mandates (not one per mandate: issue 11, 500 containers).
  const figures = backupFigures(deps.queue, [...snapshot.mandates.map((m) => m.name), ...snapshot.skipped.map((s) => s.name)]);
  const one = (m: MandateSpec): Record<string, unknown> => ({
    ...settings(m, deps.scheduler.nextRun(m.name), deps.scheduler.nextRun(m.name, 'verify')),
    ...healthFields(deps.status?.get(m.name)),
    ...figures(m.name),
  });
  return {
    mandates: snapshot.mandates.map(one),
    // Skipped mandates are not run (their problems say why), but their older backups stay visible.
    skipped: snapshot.skipped.map((s) => ({ ...s, status: 'skipped' as const, ...figures(s.name) })),
    problems: snapshot.problems,
    docker_error: snapshot.docker_error,
  };
}

/** What `GET /v1/mandates/{name}` adds: the mandate's health, when known. */
export function mandateHealthDetail(deps: Pick<ApiDeps, 'status'>, name: string): { health?: MandateHealth } {
  const health = deps.status?.get(name);
  return health === undefined ? {} : { health };
}

/** Fields of the list's entries, for the OpenAPI schema of `GET /v1/mandates` (helper of operations.ts). */
export const mandateStatusFields = {
  status: z.enum(MANDATE_STATUSES).optional().openapi({ description: 'From the status monitor: ok, stale, failing, never_succeeded or skipped' }),
  health: mandateHealthSchema.optional(),
  last_backup: lastBackupSchema,
  recent_sizes: z.array(z.number()).openapi({ description: `Raw sizes (bytes) of the last ${RECENT_SIZES} succeeded backups, oldest first` }),
};
