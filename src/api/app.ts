import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BackerError } from '../errors.js';
import { listBackups } from '../manifests/store.js';
import type { Queue } from '../queue/queue.js';
import type { EventBus } from '../events/bus.js';
import { registerJobRoutes, type RestorePlanner } from './jobs.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Services } from '../daemon/services.js';
import { BACKER_VERSION } from '../util/version.js';
import { toHttpError } from './errors.js';
import { registerOperationRoutes } from './operations.js';
import { registerRetentionRoutes } from './retention.js';

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

  registerOperationRoutes(app, deps, json);
  registerRetentionRoutes(app, deps, json);
  registerJobRoutes(app, deps, json);

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
