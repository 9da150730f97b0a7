import { writeFile } from 'node:fs/promises';
import type { Snapshot } from '../discovery/snapshot.js';
import { BackerError } from '../errors.js';
import { SecretRegistry } from '../logging/logger.js';
import type { Queue } from '../queue/queue.js';
import { createApi, type ApiDeps } from './app.js';
import { openApiDocument, type OpenApiDocument } from './openapi.js';
import type { ApiApp } from './route.js';

const EMPTY: Snapshot = { mandates: [], problems: [], docker_error: null, skipped: [] };

function unavailable(what: string): never {
  throw new BackerError('INTERNAL', `the document app has no ${what}`, { component: 'api' });
}

/** Deps that serve nothing: enough to register every route (the document needs no daemon). */
export function stubApiDeps(): ApiDeps {
  const queue = new Proxy({} as Queue, { get: (_target, key) => () => unavailable(`queue.${String(key)}`) });
  return {
    services: { discovery: { start: () => Promise.resolve(), current: () => EMPTY, refresh: () => Promise.resolve(EMPTY), close: () => Promise.resolve() }, mandate: () => unavailable('mandates'), targets: new Map(), secrets: new SecretRegistry() },
    queue,
    scheduler: { nextRun: () => null },
  };
}

/** The app every route is registered on, with stub deps. */
export function documentApp(): ApiApp {
  return createApi(stubApiDeps());
}

/** The OpenAPI document as docs/openapi.json holds it (2-space JSON, final newline). */
export function documentText(document: OpenApiDocument = openApiDocument(documentApp())): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

export async function writeOpenApiDocument(path: string): Promise<void> {
  await writeFile(path, documentText());
}
