import { z } from '@hono/zod-openapi';
import { BackerError } from '../errors.js';
import type { MandateTestReport } from '../checks/mandate-test.js';
import type { ApiDeps } from './app.js';
import { defineRoute, type ApiApp, type Json } from './route.js';
import { errors, jsonContent } from './schemas.js';

/**
 * Runs `backer mandates test` for one mandate. The daemon binds it to its services and its own
 * shutdown signal (each check also has its own timeout), not to the request's connection.
 */
export type MandateTester = (name: string) => Promise<MandateTestReport>;

const checkSchema = z
  .object({
    name: z.string().openapi({ example: 'credentials accepted' }),
    ok: z.boolean(),
    message: z.string().openapi({ description: 'What was found, or why the check failed' }),
    duration_ms: z.number().int(),
  })
  .openapi('MandateCheck');

export const mandateTestSchema = z
  .object({
    mandate: z.string(),
    ok: z.boolean().openapi({ description: 'true only when every check passed' }),
    checks: z.array(checkSchema),
  })
  .openapi('MandateTestReport');

const testRoute = defineRoute('operate', {
  method: 'post',
  path: '/v1/mandates/{name}/test',
  summary: 'Run every check a backup of the mandate needs, storing nothing',
  description:
    'Container running, dump tool present, credentials accepted, each target writable and listable (a probe object written, read, listed and deleted), ' +
    'middleware programs present and keys usable. No backup is stored, no manifest written, no container stopped. A failed check is not an HTTP error: see `ok`.',
  request: { params: z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, description: 'the mandate' }) }) },
  responses: { 200: jsonContent(mandateTestSchema, 'The report: one entry per check'), ...errors(400, 401, 403, 404, 500) },
});

export function registerCheckRoutes(app: ApiApp, deps: ApiDeps, json: Json): void {
  app.openapi(testRoute, async (c) => {
    const name = c.req.valid('param').name;
    // Unknown or skipped mandates answer 404/400 before anything is checked.
    deps.services.mandate(name);
    if (deps.checks === undefined) throw new BackerError('INTERNAL', 'this daemon cannot test mandates', { component: 'api' });
    return json(await deps.checks(name));
  });
}
