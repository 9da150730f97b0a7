import { z } from '@hono/zod-openapi';
import type { MandateSpec } from '../mandates/types.js';
import type { RecentBackups } from '../queue/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { MANDATE_STATUSES, type MandateHealth } from '../status/types.js';
import type { ApiDeps } from './app.js';
import { ERROR_CODES } from './error-code.js';

/**
 * What `GET /v1/mandates` adds to each mandate: its status and health (from the status monitor,
 * when the daemon has one), its last successful backup (from the job history) and its next run.
 */

// No import of schemas.ts: it may import these (its Mandate schema documents them).

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

/** Last backup and recent raw sizes (oldest first) of every mandate, from one store answer. */
function backupFigures(recent: readonly RecentBackups[]): (mandate: string) => { last_backup: LastBackup; recent_sizes: number[] } {
  const byMandate = new Map(recent.map((r) => [r.mandate, r]));
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

type Settings = (m: MandateSpec, nextRun: Date | null, nextVerify: Date | null) => Record<string, unknown>;

/** What the listing reads; `version` (the daemon's scheduler and status monitor have one) makes it cacheable. */
export interface ListingDeps extends Pick<ApiDeps, 'services' | 'queue'> {
  scheduler: Pick<Scheduler, 'nextRun'> & Partial<Pick<Scheduler, 'version'>>;
  status?: ApiDeps['status'];
}

/** The body of `GET /v1/mandates` (`settings`: operations.ts mandateJson): runnable mandates with status, last backup and next run; skipped ones with their problems. */
function buildListing(deps: ListingDeps, settings: Settings, recent: readonly RecentBackups[]): Record<string, unknown> {
  const snapshot = deps.services.discovery.current();
  const figures = backupFigures(recent);
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

/** Every mandate's last backup and sizes: one store query for all of them (not one per mandate: issue 11, 500 containers). */
function recentOf(deps: ListingDeps): readonly RecentBackups[] {
  const snapshot = deps.services.discovery.current();
  return deps.queue.recentBackups([...snapshot.mandates.map((m) => m.name), ...snapshot.skipped.map((s) => s.name)], RECENT_SIZES);
}

/**
 * The listing as JSON text, built again only when something it shows may have changed: kept per
 * discovery (one per daemon) and keyed on everything it reads: discovery's snapshot (replaced on
 * every change), the job store's recentBackups() answer (the same object until a job is written:
 * src/state/job-store.ts), the scheduler's version (updates and fires move next runs) and the
 * status monitor's (every computation). Without a scheduler version nothing is kept. The text is
 * not scrubbed of secrets: the caller scrubs it per response (secrets are added at run time).
 */
const listingCache = new WeakMap<object, { key: readonly unknown[]; text: string }>();

export function mandateListingText(deps: ListingDeps, settings: Settings): string {
  const recent = recentOf(deps);
  const version = deps.scheduler.version?.();
  const key = [deps.services.discovery.current(), recent, version, deps.status?.version(), settings];
  const cached = listingCache.get(deps.services.discovery);
  if (version !== undefined && cached !== undefined && cached.key.every((part, i) => part === key[i])) return cached.text;
  const text = JSON.stringify(buildListing(deps, settings, recent));
  if (version !== undefined) listingCache.set(deps.services.discovery, { key, text });
  return text;
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
