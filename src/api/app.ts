import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { MandateSpec } from '../mandates/types.js';
import { BackerError } from '../errors.js';
import { listBackups } from '../manifests/store.js';
import type { Queue } from '../queue/queue.js';
import { JOB_KINDS, type AnyJob, type JobKind } from '../queue/types.js';
import type { EventBus } from '../events/bus.js';
import { registerJobRoutes, type RestorePlanner } from './jobs.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Services } from '../daemon/services.js';
import { BACKER_VERSION } from '../util/version.js';
import { toHttpError } from './errors.js';

export interface ApiDeps {
  services: Pick<Services, 'discovery' | 'mandate' | 'targets' | 'secrets'>;
  /** Restore plans and refusals; without it the restore routes answer 500. */
  restores?: RestorePlanner;
  /** Job events; unused for now by the routes, the event stream of the operations API will read it. */
  events?: EventBus;
  queue: Queue;
  scheduler: Pick<Scheduler, 'nextRun'>;
  /**
   * Resolves once the daemon has started (start-up recovery done, mandates discovered). Until then
   * health answers `starting` and every other request waits for it. Default: ready at once.
   */
  ready?: Promise<void>;
}

function mandateJson(m: MandateSpec, nextRun: Date | null, nextVerify: Date | null = null): Record<string, unknown> {
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

const badRequest = (message: string): BackerError => new BackerError('API_BAD_REQUEST', message, { component: 'api' });

/** Thin handlers: validate, call a service, return JSON. Every response is scrubbed of secrets. */
export function createApi(deps: ApiDeps): Hono {
  const app = new Hono();
  const json = (body: unknown, status: ContentfulStatusCode = 200): Response =>
    new Response(deps.services.secrets.scrub(JSON.stringify(body)), { status, headers: { 'content-type': 'application/json' } });

  app.onError((err) => {
    const { status, body } = toHttpError(err);
    return json(body, status as ContentfulStatusCode);
  });
  app.notFound((c) => json({ error: { code: 'API_BAD_REQUEST', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  // The socket is claimed first (one daemon per socket), before recovery and discovery have run:
  // answering then would list no mandates and refuse backups of mandates that are about to exist.
  let ready = deps.ready === undefined;
  void deps.ready?.then(() => (ready = true), () => undefined);
  app.use('*', async (c, next) => {
    if (!ready && c.req.path !== '/v1/health') await deps.ready;
    await next();
  });

  app.get('/v1/health', () => json({ status: ready ? 'ok' : 'starting', version: BACKER_VERSION }));

  app.get('/v1/mandates', () => {
    const snapshot = deps.services.discovery.current();
    return json({
      mandates: snapshot.mandates.map((m) => mandateJson(m, deps.scheduler.nextRun(m.name), deps.scheduler.nextRun(m.name, 'verify'))),
      skipped: snapshot.skipped,
      problems: snapshot.problems,
      docker_error: snapshot.docker_error,
    });
  });

  app.post('/v1/mandates/:name/backups', (c) => {
    const mandate = deps.services.mandate(c.req.param('name'));
    const job = deps.queue.enqueue(mandate.name, 'api');
    return json({ job }, 202);
  });

  app.get('/v1/jobs', (c) => {
    const kind = c.req.query('kind');
    if (kind !== undefined && !JOB_KINDS.includes(kind as JobKind)) throw badRequest(`kind must be one of ${JOB_KINDS.join(', ')}`);
    return json({ jobs: deps.queue.list({ mandate: c.req.query('mandate'), kind: kind as JobKind | undefined }) });
  });

  registerJobRoutes(app, deps, json);

  app.get('/v1/jobs/:id', async (c) => {
    const id = c.req.param('id');
    const waitParam = c.req.query('wait');
    const job = deps.queue.get(id);
    if (!job) throw new BackerError('JOB_NOT_FOUND', `no job ${id}`, { component: 'api', details: { job: id } });
    if (waitParam === undefined) return json({ job });
    const seconds = Number(waitParam);
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > 300) throw badRequest('wait must be a number of seconds between 0 and 300');
    return json({ job: await waitForJob(deps.queue, id, seconds * 1000, c.req.raw.signal) });
  });

  app.post('/v1/jobs/:id/cancel', (c) => json({ job: deps.queue.cancel(c.req.param('id')) }));

  app.get('/v1/backups', async (c) => {
    const mandate = c.req.query('mandate');
    const targetName = c.req.query('target');
    const targets = [...deps.services.targets.values()].filter((t) => targetName === undefined || t.name === targetName);
    if (targetName !== undefined && targets.length === 0) {
      throw new BackerError('TARGET_NOT_FOUND', `no target named ${targetName}`, { component: 'api', details: { target: targetName } });
    }
    const backups = [];
    const problems = [];
    for (const t of targets) {
      const listing = await listBackups(t, mandate);
      backups.push(...listing.backups.map((b) => b.manifest));
      problems.push(...listing.problems);
    }
    return json({ backups, problems });
  });

  return app;
}
