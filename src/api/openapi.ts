import { z } from '@hono/zod-openapi';
import { BACKER_VERSION } from '../util/version.js';
import { defineRoute, type ApiApp, type Json } from './route.js';
import { errors, jsonContent } from './schemas.js';

export type OpenApiDocument = ReturnType<ApiApp['getOpenAPI31Document']>;

const documentRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/openapi.json',
  summary: 'This document: every route with its scope (x-backer-scope), request and response schemas',
  responses: { 200: jsonContent(z.record(z.string(), z.unknown()).openapi('OpenApiDocument'), 'The OpenAPI 3.1 document'), ...errors(401, 403) },
});

/** The OpenAPI 3.1 document of every route registered on `app` (docs/openapi.json is this, written by `npm run openapi`). */
export function openApiDocument(app: ApiApp): OpenApiDocument {
  if (!app.openAPIRegistry.definitions.some((d) => d.type === 'component' && d.name === 'bearerAuth')) {
    app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
      type: 'http',
      scheme: 'bearer',
      description: 'A token of api.tokens (`backer token create`); needed over TCP only, the unix socket is trusted as admin.',
    });
  }
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Backer API',
      version: BACKER_VERSION,
      description: 'The API of the Backer daemon: over its unix socket (trusted as admin) and, with api.listen, over TCP with bearer tokens of a scope (read ⊂ operate ⊂ admin).',
    },
  });
}

export function registerOpenApiRoute(app: ApiApp, json: Json): void {
  app.openapi(documentRoute, () => json(openApiDocument(app)));
}
