import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BackerError } from '../errors.js';
import type { Queue } from '../queue/queue.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import type { ReadinessProbe, StatusMonitor, TargetUsageMonitor } from '../status/types.js';
import { registerJobRoutes, type RestorePlanner } from './jobs.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { Services } from '../daemon/services.js';
import { authenticate, type ApiToken } from './auth.js';
import { toHttpError } from './errors.js';
import { registerHealthRoutes } from './health.js';
import { registerOpenApiRoute } from './openapi.js';
import { registerOperationRoutes } from './operations.js';
import { registerRetentionRoutes } from './retention.js';
import { newApiApp, type ApiApp, type Json, type JsonResponse } from './route.js';
import { registerBackupRoutes } from './backups.js';
import { registerEventRoutes } from './events.js';
import { registerTargetRoutes } from './targets.js';
import type { Metrics } from '../metrics/metrics.js';
import { registerMetricsRoutes } from './metrics.js';
import { registerCheckRoutes, type MandateTester } from './checks.js';
import { registerWhoamiRoute } from './whoami.js';

export interface ApiDeps {
  /** `config` (optional) gives `GET /v1/targets` each target's settings (without credentials). */
  services: Pick<Services, 'discovery' | 'mandate' | 'targets' | 'secrets'> & Partial<Pick<Services, 'config'>>;
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
  /** Where audit lines go (info, component api, `audit: true`). Default: none. */
  logger?: Logger;
  /** `api.tokens`, hashed: the bearer tokens accepted over TCP. Default: none (TCP answers public routes only). */
  tokens?: readonly ApiToken[];
  /** `/readyz`; without it the daemon is ready once started. */
  readiness?: ReadinessProbe;
  /** `GET /metrics` (src/metrics); without it that route answers 404. */
  metrics?: Pick<Metrics, 'text' | 'contentType'>;
  /** `POST /v1/mandates/{name}/test` (src/checks); without it that route answers 500. */
  checks?: MandateTester;
  /** Mandate health (src/status); without it `GET /v1/mandates` has no `status`/`health`. */
  status?: StatusMonitor;
  /** Target usage and health (src/status); without it `GET /v1/targets` lists each target on every request. */
  usage?: TargetUsageMonitor;
}

/** Routes that answer before start-up completes (the rest wait for it). */
const EARLY = new Set(['/v1/health', '/healthz', '/readyz', '/v1/openapi.json']);

/** Hono's own HTTP errors (malformed JSON, a wrong content type) in the API's error shape. */
function fromHttpException(err: HTTPException): BackerError {
  const message = err.status === 415 ? 'the body must be JSON (content-type: application/json)' : err.status === 400 ? 'the body must be a JSON object' : err.message;
  return new BackerError('API_BAD_REQUEST', message, { component: 'api', details: { status: err.status } });
}

/** Thin handlers: validate, call a service, return JSON. Every response is scrubbed of secrets. */
export function createApi(deps: ApiDeps): ApiApp {
  const app = newApiApp();
  const json: Json = (body: unknown, status: ContentfulStatusCode = 200): JsonResponse =>
    new Response(deps.services.secrets.scrub(JSON.stringify(body)), { status, headers: { 'content-type': 'application/json' } }) as JsonResponse;

  app.onError((err) => {
    const { status, body } = toHttpError(err instanceof HTTPException ? fromHttpException(err) : err);
    const response = json(body, status as ContentfulStatusCode);
    if (status === 401) response.headers.set('www-authenticate', 'Bearer realm="backer"');
    return response;
  });
  app.notFound((c) => json({ error: { code: 'API_BAD_REQUEST', message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  // The socket is claimed first (one daemon per socket), before recovery and discovery have run:
  // answering then would list no mandates and refuse backups of mandates that are about to exist.
  const state = { ready: deps.ready === undefined };
  void deps.ready?.then(
    () => (state.ready = true),
    () => undefined,
  );
  app.use('*', async (c, next) => {
    c.set('logger', deps.logger);
    c.set('principal', authenticate(c.env?.transport, c.req.header('authorization'), deps.tokens ?? []));
    if (!state.ready && !EARLY.has(c.req.path)) await deps.ready;
    await next();
  });

  registerHealthRoutes(app, deps, json, () => state.ready);
  registerOperationRoutes(app, deps, json);
  registerRetentionRoutes(app, deps, json);
  registerJobRoutes(app, deps, json);
  registerBackupRoutes(app, deps, json);
  registerTargetRoutes(app, deps, json);
  registerEventRoutes(app, deps);
  registerMetricsRoutes(app, deps, json);
  registerCheckRoutes(app, deps, json);
  registerWhoamiRoute(app, json);
  // Last: the document lists every route registered before it.
  registerOpenApiRoute(app, json);
  return app;
}
