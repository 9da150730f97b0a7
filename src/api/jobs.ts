import type { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { BackerError } from '../errors.js';
import { VERIFY_LEVELS } from '../manifests/verification.js';
import type { MandateSpec } from '../mandates/types.js';
import { parseDatabaseMap, parseDestination, restoreParamsSchema, type RestoreParams } from '../pipeline/restore-params.js';
import type { RestoreResult } from '../pipeline/run-restore.js';
import { parseSubset } from '../pipeline/run-verify.js';
import type { AnyJob, JobKind } from '../queue/types.js';
import type { ApiDeps } from './app.js';

type Json = (body: unknown, status?: ContentfulStatusCode) => Response;

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

async function body<T extends z.ZodType>(request: Request, schema: T): Promise<z.output<T>> {
  const raw: unknown = await request.json().catch(() => {
    throw badRequest('the body must be a JSON object');
  });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw badRequest(`invalid request: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'schema mismatch'}`);
  }
  return parsed.data;
}

function jobOfKind(deps: ApiDeps, id: string, kinds: readonly JobKind[]): AnyJob {
  const job = deps.queue.get(id);
  if (!job || !kinds.includes(job.kind)) throw new BackerError('JOB_NOT_FOUND', `no ${kinds.join(' or ')} job ${id}`, { component: 'api', details: { job: id } });
  return job;
}

/** Restores and verifications: thin handlers that validate, enqueue under the mandate's lock, return the job. */
export function registerJobRoutes(app: Hono, deps: ApiDeps, json: Json): void {
  app.post('/v1/restores', async (c) => {
    const params = await body(c.req.raw, restoreParamsSchema);
    const mandate = deps.services.mandate(params.mandate);
    // What can be refused from the request alone is refused now, not as a failed job later.
    parseDestination(params.to, mandate.source.type, mandate.source.container);
    const planner = deps.restores;
    if (!planner) throw new BackerError('INTERNAL', 'this API serves no restores', { component: 'api' });
    parseDatabaseMap(params.databases, mandate.source.type, planner.hasDatabases(mandate.source.type));
    if (params.dry_run) return json({ plan: await planner.plan(mandate, params) });
    const { mandate: name, ...rest } = params;
    return json({ job: deps.queue.submit({ kind: 'restore', mandate: name, trigger: 'api', params: rest }) }, 202);
  });

  app.get('/v1/restores/:id', (c) => json({ job: jobOfKind(deps, c.req.param('id'), ['restore']) }));

  app.post('/v1/verifications', async (c) => {
    const params = await body(c.req.raw, verificationRequestSchema);
    if (params.subset !== undefined) parseSubset(params.subset);
    if (params.backup !== undefined && params.mandate === undefined) throw badRequest('backup needs mandate');
    const names = params.mandate === undefined ? deps.services.discovery.current().mandates.map((m) => m.name) : [deps.services.mandate(params.mandate).name];
    const { mandate: _mandate, ...rest } = params;
    const kind = params.level === 'drill' ? 'drill' : 'verify';
    const jobs = names.map((name) => deps.queue.submit({ kind, mandate: name, trigger: 'api', params: rest }));
    return json({ jobs }, 202);
  });

  app.get('/v1/verifications/:id', (c) => json({ job: jobOfKind(deps, c.req.param('id'), ['verify', 'drill']) }));
}
