import { z } from '@hono/zod-openapi';
import { BackerError } from '../errors.js';
import { planMandate, planTargets } from '../retention/report.js';
import type { Target } from '../targets/types.js';
import type { ApiDeps } from './app.js';
import { defineRoute, type ApiApp, type Json } from './route.js';
import { errors, jsonContent, retentionPlanSchema } from './schemas.js';

const retentionRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/mandates/{name}/retention',
  summary: "The mandate's retention plan per target: every backup kept or to be removed, with the reasons (read only)",
  request: {
    params: z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, description: 'the mandate' }) }),
    query: z.object({ target: z.string().min(1).optional().openapi({ description: 'only this target' }) }),
  },
  responses: { 200: jsonContent(retentionPlanSchema, 'The plan'), ...errors(400, 401, 403, 404, 409) },
});

/**
 * `GET /v1/mandates/{name}/retention[?target=T]`: the retention plan of a mandate, per target, with
 * every backup kept or to be removed and the reasons (as `backer retention plan --json`). Read only.
 */
export function registerRetentionRoutes(app: ApiApp, deps: Pick<ApiDeps, 'services'>, json: Json): void {
  app.openapi(retentionRoute, async (c) => {
    const mandate = deps.services.mandate(c.req.valid('param').name);
    const names = planTargets(mandate, c.req.valid('query').target, 'api');
    const targets: Target[] = [];
    for (const name of names) {
      const target = deps.services.targets.get(name);
      if (target === undefined) throw new BackerError('TARGET_NOT_FOUND', `no target named ${name}`, { component: 'api', details: { target: name } });
      targets.push(target);
    }
    return json(await planMandate(mandate, targets));
  });
}
