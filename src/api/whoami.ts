import { z } from '@hono/zod-openapi';
import { defineRoute, SCOPES, type ApiApp, type Json } from './route.js';
import { errors, jsonContent } from './schemas.js';

export const whoamiSchema = z
  .object({
    name: z.string().openapi({ description: 'The token\'s name in api.tokens (`socket` over the unix socket)' }),
    scope: z.enum(SCOPES as ['read', 'operate', 'admin']),
    via: z.enum(['socket', 'token']),
  })
  .openapi('Whoami');

const whoamiRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/whoami',
  summary: 'The caller: the token\'s name and scope (what a client such as the web UI may offer)',
  responses: { 200: jsonContent(whoamiSchema, 'The principal'), ...errors(401) },
});

/** `GET /v1/whoami` (read scope): who the bearer token is; never the token itself. */
export function registerWhoamiRoute(app: ApiApp, json: Json): void {
  app.openapi(whoamiRoute, (c) => {
    const principal = c.get('principal');
    return json({ name: principal?.name ?? null, scope: principal?.scope ?? null, via: principal?.via ?? null });
  });
}
