import { z } from '@hono/zod-openapi';
import { BackerError } from '../errors.js';
import { VERIFY_LEVELS } from '../manifests/verification.js';
import type { MandateSpec } from '../mandates/types.js';
import { parseDatabaseMap, parseDestination, restoreParamsSchema, type RestoreParams } from '../pipeline/restore-params.js';
import type { RestoreResult } from '../pipeline/run-restore.js';
import { parseSubset } from '../pipeline/run-verify.js';
import type { AnyJob, JobKind } from '../queue/types.js';
import type { ApiDeps } from './app.js';
import { audit, defineRoute, type ApiApp, type Json } from './route.js';
import { restorePlanFields } from './job-results.js';
import { errors, jobReplySchema, jobsReplySchema, jsonContent } from './schemas.js';

/** What the restore routes need from the daemon to answer at once (a dry run, a refusal). */
export interface RestorePlanner {
  plan(mandate: MandateSpec, params: RestoreParams): Promise<RestoreResult>;
  /** Whether backups of a source type hold named databases (`--database FROM:TO`). */
  hasDatabases(type: string): boolean;
}

export const verificationRequestSchema = z
  .object({
    /** Omitted: every mandate (one job each). */
    mandate: z.string().min(1).optional(),
    backup: z.string().min(1).optional(),
    target: z.string().min(1).optional(),
    level: z.enum(VERIFY_LEVELS).default('decode'),
    subset: z.string().optional(),
  })
  .strict();

function badRequest(message: string): BackerError {
  return new BackerError('API_BAD_REQUEST', message, { component: 'api' });
}

function jobOfKind(deps: ApiDeps, id: string, kinds: readonly JobKind[]): AnyJob {
  const job = deps.queue.get(id);
  if (!job || !kinds.includes(job.kind)) throw new BackerError('JOB_NOT_FOUND', `no ${kinds.join(' or ')} job ${id}`, { component: 'api', details: { job: id } });
  return job;
}

const idParams = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, description: 'the job id' }) });
const restorePlanSchema = z
  .object({ plan: z.looseObject(restorePlanFields).openapi({ description: 'The restore result a dry run gives: nothing is touched' }) })
  .openapi('RestorePlan');

const restoreRoute = defineRoute('admin', {
  method: 'post',
  path: '/v1/restores',
  summary: 'Restore a backup (a job), or plan it (`dry_run`: nothing is touched)',
  request: { body: { content: { 'application/json': { schema: restoreParamsSchema.openapi('RestoreRequest') } }, required: true } },
  responses: {
    200: jsonContent(restorePlanSchema, 'The plan of a dry run'),
    202: jsonContent(jobReplySchema, 'The queued restore job'),
    ...errors(400, 401, 403, 404, 409, 500),
  },
});

const restoreJobRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/restores/{id}',
  summary: 'A restore job',
  request: { params: idParams },
  responses: { 200: jsonContent(jobReplySchema, 'The job'), ...errors(401, 403, 404) },
});

const verificationRoute = defineRoute('operate', {
  method: 'post',
  path: '/v1/verifications',
  summary: 'Verify backups (a verify or drill job per mandate)',
  request: { body: { content: { 'application/json': { schema: verificationRequestSchema.openapi('VerificationRequest') } }, required: true } },
  responses: { 202: jsonContent(jobsReplySchema, 'The queued jobs'), ...errors(400, 401, 403, 404, 409) },
});

const verificationJobRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/verifications/{id}',
  summary: 'A verify or drill job',
  request: { params: idParams },
  responses: { 200: jsonContent(jobReplySchema, 'The job'), ...errors(401, 403, 404) },
});

/** Restores and verifications: thin handlers that validate, enqueue under the mandate's lock, return the job. */
export function registerJobRoutes(app: ApiApp, deps: ApiDeps, json: Json): void {
  app.openapi(restoreRoute, async (c) => {
    const params = c.req.valid('json');
    const mandate = deps.services.mandate(params.mandate);
    // What can be refused from the request alone is refused now, not as a failed job later.
    parseDestination(params.to, mandate.source.type, mandate.source.container);
    const planner = deps.restores;
    if (!planner) throw new BackerError('INTERNAL', 'this API serves no restores', { component: 'api' });
    parseDatabaseMap(params.databases, mandate.source.type, planner.hasDatabases(mandate.source.type));
    if (params.dry_run) return json({ plan: await planner.plan(mandate, params) });
    const { mandate: name, ...rest } = params;
    const job = deps.queue.submit({ kind: 'restore', mandate: name, trigger: 'api', params: rest });
    audit(c, 'restore', { mandate: name, backup: rest.backup, to: rest.to, job: job.id });
    return json({ job }, 202);
  });

  app.openapi(restoreJobRoute, (c) => json({ job: jobOfKind(deps, c.req.valid('param').id, ['restore']) }));

  app.openapi(verificationRoute, (c) => {
    const params = c.req.valid('json');
    if (params.subset !== undefined) parseSubset(params.subset);
    if (params.backup !== undefined && params.mandate === undefined) throw badRequest('backup needs mandate');
    const names = params.mandate === undefined ? deps.services.discovery.current().mandates.map((m) => m.name) : [deps.services.mandate(params.mandate).name];
    const { mandate: _mandate, ...rest } = params;
    const kind = params.level === 'drill' ? 'drill' : 'verify';
    const jobs = names.map((name) => deps.queue.submit({ kind, mandate: name, trigger: 'api', params: rest }));
    return json({ jobs }, 202);
  });

  app.openapi(verificationJobRoute, (c) => json({ job: jobOfKind(deps, c.req.valid('param').id, ['verify', 'drill']) }));
}
