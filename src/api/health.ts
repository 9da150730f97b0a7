import { BACKER_VERSION } from '../util/version.js';
import type { Readiness } from '../status/types.js';
import type { ApiDeps } from './app.js';
import { defineRoute, type ApiApp, type Json } from './route.js';
import { healthSchema, jsonContent, readinessSchema } from './schemas.js';

const healthRoute = defineRoute('public', {
  method: 'get',
  path: '/v1/health',
  summary: 'The daemon answers; `starting` until start-up (recovery, first discovery) completes',
  responses: { 200: jsonContent(healthSchema, 'Status and version') },
});

const livenessRoute = defineRoute('public', {
  method: 'get',
  path: '/healthz',
  summary: 'Liveness: 200 whenever the process answers',
  responses: { 200: jsonContent(healthSchema, 'Status and version') },
});

const readinessRoute = defineRoute('public', {
  method: 'get',
  path: '/readyz',
  summary: 'Readiness: 200 when started and its checks (Docker, state database) pass, else 503',
  responses: {
    200: jsonContent(readinessSchema, 'Ready'),
    503: jsonContent(readinessSchema, 'Not ready: starting, or a check failed'),
  },
});

const STARTING = { status: 'starting', message: 'the daemon is starting' } as const;

/** `/v1/health`, `/healthz` (liveness) and `/readyz` (readiness): public, answered before start-up completes. */
export function registerHealthRoutes(app: ApiApp, deps: Pick<ApiDeps, 'readiness'>, json: Json, started: () => boolean): void {
  const health = (): ReturnType<Json> => json({ status: started() ? 'ok' : 'starting', version: BACKER_VERSION });
  app.openapi(healthRoute, health);
  app.openapi(livenessRoute, health);
  app.openapi(readinessRoute, async () => {
    if (!started()) return json({ ready: false, status: 'starting', checks: { docker: STARTING, state: STARTING } }, 503);
    const readiness: Readiness = (await deps.readiness?.check()) ?? { ready: true, checks: { docker: { status: 'ok', message: null }, state: { status: 'ok', message: null } } };
    return json({ ...readiness, status: readiness.ready ? 'ready' : 'not_ready' }, readiness.ready ? 200 : 503);
  });
}
