/**
 * The API's OpenAPI 3.1 document: docs/openapi.json is what `npm run openapi` generates now, it is a
 * valid 3.1 document, and it lists exactly the routes the app registers (each with its scope).
 */
import { readFile } from 'node:fs/promises';
import { compileErrors, validate } from '@readme/openapi-parser';
import { describe, expect, it } from 'vitest';
import { documentApp, documentText } from '../src/api/openapi-document.js';
import { openApiDocument } from '../src/api/openapi.js';
import { SCOPES } from '../src/api/route.js';
import { BACKER_VERSION } from '../src/util/version.js';

const COMMITTED = new URL('../docs/openapi.json', import.meta.url);
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

type Operation = { 'x-backer-scope'?: string; security?: Record<string, string[]>[] };
type Document = { openapi: string; info: { version: string }; paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>; components?: { securitySchemes?: Record<string, unknown> } };

function operations(document: Document): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (op !== undefined) out.set(`${method.toUpperCase()} ${path}`, op);
    }
  }
  return out;
}

describe('openapi document', () => {
  it('docs/openapi.json is current (regenerate with `npm run openapi`)', async () => {
    expect(await readFile(COMMITTED, 'utf8')).toBe(documentText());
  });

  it('is a valid OpenAPI 3.1 document with the version and a bearer scheme', async () => {
    const document = JSON.parse(documentText()) as Document;
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(document.openapi).toBe('3.1.0');
    expect(document.info.version).toBe(BACKER_VERSION);
    expect(document.components?.securitySchemes?.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('lists every route the app registers, and no other, each with its scope', () => {
    const app = documentApp();
    const registered = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, '{$1}')}`),
    );
    const documented = operations(openApiDocument(app) as unknown as Document);
    expect([...documented.keys()].sort()).toEqual([...registered].sort());
    for (const [key, op] of documented) {
      const scope = op['x-backer-scope'];
      expect([...SCOPES, 'public'], key).toContain(scope);
      expect(op.security, key).toEqual(scope === 'public' ? [] : [{ bearerAuth: [] }]);
    }
  });

  it('gives the scopes the issue asks for: GET read, backups/verifications/cancel operate, restores and deletes admin', () => {
    const documented = operations(openApiDocument(documentApp()) as unknown as Document);
    const scope = (key: string): string | undefined => documented.get(key)?.['x-backer-scope'];
    expect(scope('GET /v1/jobs')).toBe('read');
    expect(scope('POST /v1/mandates/{name}/backups')).toBe('operate');
    expect(scope('POST /v1/verifications')).toBe('operate');
    expect(scope('POST /v1/jobs/{id}/cancel')).toBe('operate');
    expect(scope('POST /v1/restores')).toBe('admin');
    expect(scope('GET /v1/backups/{name}/download')).toBe('admin');
    for (const [key, op] of documented) {
      if (key.startsWith('DELETE ')) expect(op['x-backer-scope'], key).toBe('admin');
    }
    for (const key of ['GET /healthz', 'GET /readyz', 'GET /v1/health']) expect(scope(key)).toBe('public');
  });
});
