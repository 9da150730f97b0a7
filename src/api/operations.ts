import { z } from '@hono/zod-openapi';
import { BackerError } from '../errors.js';
import type { MandateSpec } from '../mandates/types.js';
import type { Queue } from '../queue/queue.js';
import { emptyStats } from '../queue/stats.js';
import { JOB_KINDS, JOB_STATES, type AnyJob } from '../queue/types.js';
import type { ApiDeps } from './app.js';
import { mandateHealthDetail, mandateListingText } from './mandate-status.js';
import { defineRoute, validationError, type ApiApp, type Json, type JsonResponse } from './route.js';
import { errors, jobEventSchema, jobReplySchema, jobSchema, jsonContent, mandateDetailSchema, mandateListSchema, queueStatsSchema } from './schemas.js';

const jobsPageSchema = z.object({ jobs: z.array(jobSchema), total: z.number().int(), limit: z.number().int(), offset: z.number().int() }).openapi('JobsPage');
const jobDetailSchema = z.object({ job: jobSchema, history: z.array(jobEventSchema) }).openapi('JobDetail');

/** Jobs a page holds when `limit` is not given, and at most. */
export const JOBS_LIMIT_DEFAULT = 50;
export const JOBS_LIMIT_MAX = 500;
/** Jobs `GET /v1/mandates/{name}` shows, newest first. */
export const RECENT_JOBS = 5;
/** Longest `?wait=` of `GET /v1/jobs/{id}`, in seconds. */
export const WAIT_MAX_SECONDS = 300;

/** A whole number in a query string ("" and "1.5" are not). */
const wholeNumber = (min: number, max: number): z.ZodType<number> =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

export const jobsQuerySchema = z
  .object({
    mandate: z.string().min(1, 'must not be empty').optional(),
    kind: z.enum(JOB_KINDS, { error: `must be one of ${JOB_KINDS.join(', ')}` }).optional(),
    state: z.enum(JOB_STATES, { error: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
    limit: wholeNumber(1, JOBS_LIMIT_MAX).default(JOBS_LIMIT_DEFAULT),
    offset: wholeNumber(0, Number.MAX_SAFE_INTEGER).default(0),
  })
  .strict();

export const jobQuerySchema = z
  .object({
    wait: z
      .string()
      .regex(/^\d+(\.\d+)?$/, `must be a number of seconds between 0 and ${WAIT_MAX_SECONDS}`)
      .transform(Number)
      .pipe(z.number().max(WAIT_MAX_SECONDS, `must be a number of seconds between 0 and ${WAIT_MAX_SECONDS}`))
      .optional(),
  })
  .strict();

const emptyQuerySchema = z.object({}).strict();

/** The query string checked against `schema`; a 400 naming the first bad (or unknown) parameter. */
export function parseQuery<T extends z.ZodType>(query: Record<string, string>, schema: T): z.output<T> {
  const parsed = schema.safeParse(query);
  if (parsed.success) return parsed.data;
  throw validationError('query', parsed.error);
}

/** A mandate as `GET /v1/mandates` lists it (never its source options: they may hold secrets). */
export function mandateJson(m: MandateSpec, nextRun: Date | null, nextVerify: Date | null = null): Record<string, unknown> {
  return {
    name: m.name,
    origin: m.origin,
    type: m.source.type,
    container: m.source.container,
    interval: m.interval,
    next_run: nextRun?.toISOString() ?? null,
    targets: m.targets,
    middleware: m.middleware,
    retention: m.retention,
    name_pattern: m.name_pattern,
    verify: m.verify.interval,
    verify_level: m.verify.level,
    next_verify: nextVerify?.toISOString() ?? null,
  };
}

/** `GET /v1/mandates/{name}`: settings as configured, next runs, the stats kept across restarts, recent jobs. */
function mandateDetail(deps: ApiDeps, m: MandateSpec): Record<string, unknown> {
  const { next_run: _run, next_verify: _verify, ...settings } = mandateJson(m, null);
  // Retention as configured: GFS rules when the mandate has them, else keep the newest N.
  const retention = m.retention_rules === undefined ? {} : { retention_rules: m.retention_rules };
  return {
    mandate: { ...settings, ...retention, priority: m.priority },
    next_run: deps.scheduler.nextRun(m.name)?.toISOString() ?? null,
    next_verification: deps.scheduler.nextRun(m.name, 'verify')?.toISOString() ?? null,
    stats: deps.queue.mandateStats(m.name) ?? emptyStats(m.name),
    recent_jobs: deps.queue.page({ mandate: m.name, limit: RECENT_JOBS, offset: 0 }).jobs,
    settings_sources: m.settings_sources ?? {},
  };
}

/** Waits at most `ms` for the job; ends the wait (listener and timer) early when the client goes away. */
async function waitForJob(queue: Queue, id: string, ms: number, request: AbortSignal): Promise<AnyJob> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const onClientGone = (): void => controller.abort();
  request.addEventListener('abort', onClientGone, { once: true });
  if (request.aborted) controller.abort();
  try {
    return await queue.wait(id, controller.signal);
  } finally {
    clearTimeout(timer);
    request.removeEventListener('abort', onClientGone);
  }
}

/** A job as GET /v1/jobs shows it: with `queue_position` (1: next to get a slot) while it waits, ready to run; null otherwise. */
function withPosition(job: AnyJob, positions: ReadonlyMap<string, number>): AnyJob & { queue_position: number | null } {
  return { ...job, queue_position: positions.get(job.id) ?? null };
}

function mustGetJob(queue: Queue, id: string): AnyJob {
  const job = queue.get(id);
  if (!job) throw new BackerError('JOB_NOT_FOUND', `no job ${id}`, { component: 'api', details: { job: id } });
  return job;
}

const nameParams = z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, description: 'the mandate' }) });
const idParams = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, description: 'the job id' }) });

const mandatesRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/mandates',
  summary: 'Every mandate with its next runs, the skipped ones with their problems',
  responses: { 200: jsonContent(mandateListSchema, 'Mandates, skipped mandates, config problems'), ...errors(401, 403) },
});

const mandateRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/mandates/{name}',
  summary: 'One mandate: settings, next runs, stats kept across restarts, recent jobs',
  request: { params: nameParams, query: emptyQuerySchema },
  responses: { 200: jsonContent(mandateDetailSchema, 'The mandate'), ...errors(400, 401, 403, 404, 409) },
});

const backupNowRoute = defineRoute('operate', {
  method: 'post',
  path: '/v1/mandates/{name}/backups',
  summary: 'Queue a backup of the mandate now',
  request: { params: nameParams },
  responses: { 202: jsonContent(jobReplySchema, 'The queued job'), ...errors(401, 403, 404, 409) },
});

const jobsRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/jobs',
  summary: 'Jobs, newest first, filtered and paged',
  request: { query: jobsQuerySchema },
  responses: { 200: jsonContent(jobsPageSchema, 'One page of jobs'), ...errors(400, 401, 403) },
});

const jobRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/jobs/{id}',
  summary: 'One job and its history; `?wait=S` waits up to S seconds for it to end',
  request: { params: idParams, query: jobQuerySchema },
  responses: { 200: jsonContent(jobDetailSchema, 'The job and its events'), ...errors(400, 401, 403, 404) },
});

const cancelRoute = defineRoute('operate', {
  method: 'post',
  path: '/v1/jobs/{id}/cancel',
  summary: 'Cancel a queued or running job',
  request: { params: idParams },
  responses: { 200: jsonContent(jobReplySchema, 'The job'), ...errors(401, 403, 404, 409) },
});

const queueStatsRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/queue/stats',
  summary: 'Running, queued and retrying jobs, waits, failures of the last 24 h, overloaded mandates',
  request: { query: emptyQuerySchema },
  responses: { 200: jsonContent(queueStatsSchema, 'Queue figures'), ...errors(400, 401, 403) },
});

/** Mandates, jobs and the queue: thin handlers that validate, ask the queue or the scheduler, return JSON. */
export function registerOperationRoutes(app: ApiApp, deps: ApiDeps, json: Json): void {
  // Status, health and last backup of each mandate: src/api/mandate-status.ts.
  // The listing's text is kept between requests (mandateListingText); scrubbed like json() does, per response.
  app.openapi(mandatesRoute, () => new Response(deps.services.secrets.scrub(mandateListingText(deps, mandateJson)), { status: 200, headers: { 'content-type': 'application/json' } }) as JsonResponse);

  app.openapi(mandateRoute, (c) => {
    const mandate = deps.services.mandate(c.req.valid('param').name);
    return json({ ...mandateDetail(deps, mandate), ...mandateHealthDetail(deps, mandate.name) });
  });

  app.openapi(backupNowRoute, (c) => {
    const mandate = deps.services.mandate(c.req.valid('param').name);
    return json({ job: deps.queue.enqueue(mandate.name, 'api') }, 202);
  });

  app.openapi(jobsRoute, (c) => {
    const query = c.req.valid('query');
    const { jobs, total } = deps.queue.page(query);
    const positions = deps.queue.positions();
    return json({ jobs: jobs.map((j) => withPosition(j, positions)), total, limit: query.limit, offset: query.offset });
  });

  app.openapi(jobRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { wait } = c.req.valid('query');
    mustGetJob(deps.queue, id);
    const job = wait === undefined ? mustGetJob(deps.queue, id) : await waitForJob(deps.queue, id, wait * 1000, c.req.raw.signal);
    return json({ job: withPosition(job, deps.queue.positions()), history: deps.queue.history(id) });
  });

  app.openapi(cancelRoute, (c) => json({ job: deps.queue.cancel(c.req.valid('param').id) }));

  app.openapi(queueStatsRoute, () => json(deps.queue.stats()));
}
