import { z } from '@hono/zod-openapi';
import { manifestSchema } from '../manifests/schema.js';
import { errorCodeSchema, jobErrorSchema } from './error-code.js';
import { jobResultSchema } from './job-results.js';
import { mandateHealthSchema, mandateStatusFields } from './mandate-status.js';
import { JOB_KINDS, JOB_STATES } from '../queue/types.js';

/**
 * Response schemas shared by the API's routes: they document the responses in `/v1/openapi.json`
 * (test/api-auth.test.ts validates real answers against them). Request schemas live next to their
 * routes. Named with `.openapi('Name')`: each becomes a component of the document.
 */

export const errorBodySchema = z
  .object({ error: z.object({ code: errorCodeSchema, message: z.string() }) })
  .openapi('Error', { description: 'Every error: a stable code (see the README) and a message.' });

export const jobSchema = z
  .object({
    id: z.string(),
    kind: z.enum(JOB_KINDS),
    mandate: z.string(),
    params: z.record(z.string(), z.unknown()).nullable(),
    progress: z.object({ bytes: z.number(), total: z.number().nullable() }).nullable(),
    trigger: z.enum(['schedule', 'api', 'cli', 'startup', 'catch_up']),
    state: z.enum(JOB_STATES),
    priority: z.number().int(),
    attempts: z.number().int(),
    not_before: z.string().nullable(),
    wait_ms: z.number().nullable(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    error: jobErrorSchema,
    result: jobResultSchema.nullable().openapi({ description: 'What its newest attempt returned (a job queued again after a failed attempt keeps it): a backup result, or a restore or verify (drill) result with its `kind`; null before an attempt ended, or when the job ended before one ran.' }),
    queue_position: z
      .number()
      .int()
      .nullable()
      .optional()
      .openapi({ description: 'GET /v1/jobs and /v1/jobs/{id}: a queued job ready to run, its place in the order jobs get a slot (1: next; target and Docker limits may still start a later one first); null otherwise' }),
  })
  .openapi('Job');

export const jobEventSchema = z
  .object({
    at: z.string(),
    attempt: z.number().int(),
    type: z.enum(['queued', 'started', 'succeeded', 'failed', 'retrying', 'interrupted', 'requeued', 'cancelled', 'stalled', 'note']),
    message: z.string().nullable(),
  })
  .openapi('JobEvent');

export const mandateStatsSchema = z
  .object({
    mandate: z.string(),
    last_success_at: z.string().nullable(),
    last_failure_at: z.string().nullable(),
    last_error: jobErrorSchema,
    successes: z.number().int(),
    failures: z.number().int(),
    last_duration_ms: z.number().nullable(),
    avg_duration_ms: z.number().nullable(),
    last_raw_bytes: z.number().nullable(),
    last_stored_bytes: z.number().nullable(),
  })
  .openapi('MandateStats');

export const queueStatsSchema = z
  .object({
    running: z.number().int(),
    queued: z.number().int(),
    retrying: z.number().int(),
    concurrency: z.number().int(),
    wait_ms_p50: z.number().nullable(),
    wait_ms_p95: z.number().nullable(),
    failures_24h: z.number().int(),
    overloaded: z.array(z.object({ mandate: z.string(), waited_ms: z.number(), interval_ms: z.number() })),
  })
  .openapi('QueueStats');

export const configProblemSchema = z.object({ where: z.string(), message: z.string() }).openapi('ConfigProblem');

const mandateSettings = {
  name: z.string(),
  origin: z.enum(['labels', 'config']),
  type: z.string(),
  container: z.string().nullable(),
  interval: z.string(),
  targets: z.array(z.string()),
  middleware: z.array(z.string()),
  retention: z.number().int(),
  name_pattern: z.string(),
  verify: z.string().nullable(),
  verify_level: z.string(),
};

/** A mandate as `GET /v1/mandates` lists it; other route files may add fields (extend, do not narrow). */
export const mandateSchema = z
  .looseObject({ ...mandateSettings, next_run: z.string().nullable(), next_verify: z.string().nullable(), ...mandateStatusFields })
  .openapi('Mandate');

export const skippedMandateSchema = z
  .looseObject({ name: z.string(), origin: z.enum(['labels', 'config']), container: z.string().nullable(), problems: z.array(configProblemSchema), ...mandateStatusFields })
  .openapi('SkippedMandate');

export const mandateListSchema = z
  .looseObject({
    mandates: z.array(mandateSchema),
    skipped: z.array(skippedMandateSchema),
    problems: z.array(configProblemSchema),
    docker_error: z.string().nullable(),
  })
  .openapi('MandateList');

export const settingSourceSchema = z
  .union([
    z.object({ from: z.literal('label'), label: z.string().openapi({ description: 'The container label, e.g. backer.interval' }) }),
    z.object({ from: z.literal('config'), path: z.string().openapi({ description: 'The key in the config file, e.g. mandates.shop.interval' }) }),
    z.object({ from: z.literal('default') }),
  ])
  .openapi('SettingSource');

export const mandateDetailSchema = z
  .looseObject({
    mandate: z.looseObject({ ...mandateSettings, priority: z.number().int(), retention_rules: z.record(z.string(), z.unknown()).optional() }),
    next_run: z.string().nullable(),
    next_verification: z.string().nullable(),
    stats: mandateStatsSchema,
    recent_jobs: z.array(jobSchema),
    health: mandateHealthSchema.optional(),
    settings_sources: z.record(z.string(), settingSourceSchema).openapi({ description: 'Where each setting came from: a label, a config path or the default' }),
  })
  .openapi('MandateDetail');

export const jobReplySchema = z.object({ job: jobSchema }).openapi('JobReply');
export const jobsReplySchema = z.object({ jobs: z.array(jobSchema) }).openapi('JobsReply');

// manifestSchema may be built before @hono/zod-openapi extends zod (no `.openapi` then): the same shape, documented.
export const manifestDocSchema = z.object(manifestSchema.shape).strict().openapi('Manifest');

export const manifestProblemSchema = z
  .object({
    target: z.string(),
    key: z.string(),
    message: z.string(),
    dangling: z.object({ name: z.string(), uuid: z.string(), mandate: z.string(), artifact_key: z.string() }).optional(),
  })
  .openapi('ManifestProblem');

export const backupListSchema = z
  .looseObject({ backups: z.array(manifestDocSchema), problems: z.array(manifestProblemSchema) })
  .openapi('BackupList');

export const retentionPlanSchema = z
  .object({
    mandate: z.string(),
    rules: z.record(z.string(), z.unknown()),
    targets: z.array(
      z.object({
        target: z.string(),
        backups: z.array(
          z.object({
            name: z.string(),
            uuid: z.string(),
            created_at: z.string(),
            safety: z.boolean(),
            action: z.enum(['keep', 'remove']),
            reasons: z.array(z.string()),
          }),
        ),
      }),
    ),
  })
  .openapi('RetentionPlan');

export const healthSchema = z.object({ status: z.enum(['ok', 'starting']), version: z.string() }).openapi('Health');

const checkResultSchema = z.object({ status: z.enum(['ok', 'failed', 'disabled', 'starting']), message: z.string().nullable() });
export const readinessSchema = z
  .object({ ready: z.boolean(), status: z.enum(['ready', 'not_ready', 'starting']), checks: z.record(z.string(), checkResultSchema) })
  .openapi('Readiness');

/** `{ content: { 'application/json': { schema } }, description }`, the shape of every JSON response. */
export function jsonContent<T extends z.ZodType>(schema: T, description: string): { content: { 'application/json': { schema: T } }; description: string } {
  return { content: { 'application/json': { schema } }, description };
}

/** The error responses a route may answer, by status. */
export function errors(...statuses: (400 | 401 | 403 | 404 | 409 | 500 | 503)[]): Record<number, { content: { 'application/json': { schema: typeof errorBodySchema } }; description: string }> {
  const out: Record<number, { content: { 'application/json': { schema: typeof errorBodySchema } }; description: string }> = {};
  for (const status of statuses) out[status] = jsonContent(errorBodySchema, ERROR_DESCRIPTIONS[status] ?? 'Error');
  return out;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad request (API_BAD_REQUEST, or a config/label problem)',
  401: 'No bearer token, or an unknown one (API_UNAUTHORIZED; over TCP only)',
  403: "The token's scope is too small (API_FORBIDDEN)",
  404: 'Not found (MANDATE_NOT_FOUND, JOB_NOT_FOUND, BACKUP_NOT_FOUND, TARGET_NOT_FOUND …)',
  409: 'Refused (MANDATE_SKIPPED, RESTORE_REFUSED, FORGET_REFUSED …)',
  500: 'Internal error',
  503: 'Unavailable (DOCKER_UNAVAILABLE)',
};
