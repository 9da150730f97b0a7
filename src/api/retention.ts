import type { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BackerError } from '../errors.js';
import { planMandate, planTargets } from '../retention/report.js';
import type { Target } from '../targets/types.js';
import type { ApiDeps } from './app.js';

/**
 * `GET /v1/mandates/{name}/retention[?target=T]`: the retention plan of a mandate, per target, with
 * every backup kept or to be removed and the reasons (as `backer retention plan --json`). Read only.
 */
export function registerRetentionRoutes(app: Hono, deps: Pick<ApiDeps, 'services'>, json: (body: unknown, status?: ContentfulStatusCode) => Response): void {
  app.get('/v1/mandates/:name/retention', async (c) => {
    const mandate = deps.services.mandate(c.req.param('name'));
    const names = planTargets(mandate, c.req.query('target'), 'api');
    const targets: Target[] = [];
    for (const name of names) {
      const target = deps.services.targets.get(name);
      if (target === undefined) throw new BackerError('TARGET_NOT_FOUND', `no target named ${name}`, { component: 'api', details: { target: name } });
      targets.push(target);
    }
    return json(await planMandate(mandate, targets));
  });
}
