import { z } from '@hono/zod-openapi';
import type { ApiDeps } from './app.js';
import { defineRoute, type ApiApp, type Json } from './route.js';
import { errors } from './schemas.js';

const metricsRoute = defineRoute('read', {
  method: 'get',
  path: '/metrics',
  summary: 'Prometheus metrics (text exposition format)',
  description: 'Every metric is listed in the README section "Metrics". Also served without a token on `metrics.listen` (loopback only).',
  responses: {
    200: { content: { 'text/plain': { schema: z.string() } }, description: 'The metrics in the Prometheus text format 0.0.4' },
    ...errors(401, 403, 404),
  },
});

/** `GET /metrics` (read scope): 404 when the daemon runs without metrics (ApiDeps.metrics absent). */
export function registerMetricsRoutes(app: ApiApp, deps: ApiDeps, json: Json): void {
  app.openapi(metricsRoute, async (c) => {
    if (deps.metrics === undefined) return json({ error: { code: 'API_BAD_REQUEST', message: 'no route GET /metrics: this daemon runs without metrics' } }, 404);
    const text = await deps.metrics.text();
    return c.text(text, 200, { 'content-type': deps.metrics.contentType });
  });
}
