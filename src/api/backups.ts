import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { z } from '@hono/zod-openapi';
import { BackerError } from '../errors.js';
import { forgetBackup } from '../manifests/forget.js';
import type { ApiDeps } from './app.js';
import { backupCopySchema, backupDetail, verificationRecordSchema } from './backup-detail.js';
import { backupPage, backupsQuerySchema, findBackup, oneCopy, pagingQuery, pickTargets, targetQuerySchema } from './backup-listing.js';
import { audit, defineRoute, type ApiApp, type Json } from './route.js';
import { errors, jsonContent, manifestDocSchema, manifestProblemSchema } from './schemas.js';

/** Backups: the paged listing, one backup's manifests, the download of an artifact as stored, forget. */

export const backupPageSchema = z
  .object({
    backups: z.array(manifestDocSchema),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
    problems: z.array(manifestProblemSchema),
  })
  .openapi('BackupPage');

const forgetResultSchema = z
  .object({
    forgotten: z.array(z.object({ target: z.string(), key: z.string(), name: z.string(), uuid: z.string(), artifact_key: z.string() })),
    kept: z.array(z.object({ target: z.string(), key: z.string() })),
  })
  .openapi('ForgetResult');

const idParams = z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, description: 'the backup name or its uuid' }) });
const mandateParams = z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, description: 'the mandate' }) });

const listRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/backups',
  summary: 'Backups on every target (or one), newest first, paged',
  request: { query: backupsQuerySchema },
  responses: { 200: jsonContent(backupPageSchema, 'One page of backups and the manifests that could not be trusted'), ...errors(400, 401, 403, 404) },
});

const mandateBackupsRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/mandates/{name}/backups',
  summary: "A mandate's backups on every target (or one), newest first, paged",
  request: { params: mandateParams, query: z.object({ target: backupsQuerySchema.shape.target, ...pagingQuery }).strict() },
  responses: { 200: jsonContent(backupPageSchema, 'One page of backups'), ...errors(400, 401, 403, 404) },
});

const showRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/backups/{name}',
  summary: "A backup's manifest on each target that holds it",
  request: { params: idParams, query: targetQuerySchema },
  responses: {
    200: jsonContent(
      z
        .object({
          manifests: z.array(manifestDocSchema),
          copies: z.array(backupCopySchema).openapi({ description: 'Each target holding a manifest of it: the artifact present, or the problem' }),
          verifications: z.array(verificationRecordSchema).openapi({ description: 'The verification records of the trusted copies, newest first' }),
        })
        .openapi('BackupManifests'),
      'The manifests, copies and verification records',
    ),
    ...errors(400, 401, 403, 404),
  },
});

const downloadRoute = defineRoute('admin', {
  method: 'get',
  path: '/v1/backups/{name}/download',
  summary: 'The artifact exactly as stored (after middleware), streamed',
  request: { params: idParams, query: targetQuerySchema },
  responses: {
    200: { content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } }, description: 'The artifact; content-disposition names its file' },
    ...errors(400, 401, 403, 404),
  },
});

const forgetRoute = defineRoute('admin', {
  method: 'delete',
  path: '/v1/backups/{name}',
  summary: 'Forget a backup whose artifact is missing (removes its manifests); refused while the artifact is present',
  request: { params: idParams, query: targetQuerySchema },
  responses: { 200: jsonContent(forgetResultSchema, 'The manifests removed and those kept'), ...errors(400, 401, 403, 404, 409) },
});

/** `attachment` with the file name, ASCII-safe and RFC 5987 for the rest. */
function disposition(key: string): string {
  const name = basename(key);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function registerBackupRoutes(app: ApiApp, deps: ApiDeps, json: Json): void {
  const targets = deps.services.targets;

  app.openapi(listRoute, async (c) => json(await backupPage(targets, c.req.valid('query'))));

  app.openapi(mandateBackupsRoute, async (c) => {
    const name = c.req.valid('param').name;
    const snapshot = deps.services.discovery.current();
    // Skipped mandates keep their backups: they are listed too.
    if (!snapshot.mandates.some((m) => m.name === name) && !snapshot.skipped.some((m) => m.name === name)) {
      throw new BackerError('MANDATE_NOT_FOUND', `no mandate named ${name}`, { component: 'api', details: { mandate: name } });
    }
    return json(await backupPage(targets, { ...c.req.valid('query'), mandate: name }));
  });

  app.openapi(showRoute, async (c) => {
    const target = c.req.valid('query').target;
    const found = await findBackup(targets, c.req.valid('param').name, target);
    const detail = await backupDetail(found, pickTargets(targets, target));
    return json({ manifests: found.map((f) => f.stored.manifest), ...detail });
  });

  app.openapi(downloadRoute, async (c) => {
    const id = c.req.valid('param').name;
    const { target, stored } = oneCopy(await findBackup(targets, id, c.req.valid('query').target), id);
    const { manifest } = stored;
    const body = await target.read(manifest.artifact.key);
    audit(c, 'backup.download', { backup: manifest.name, uuid: manifest.uuid, mandate: manifest.mandate, target: target.name, bytes: manifest.artifact.size });
    // Never buffered: the target's read stream goes to the socket as the client reads it.
    return new Response(Readable.toWeb(body) as ReadableStream<Uint8Array>, {
      status: 200,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(manifest.artifact.size),
        'content-disposition': disposition(manifest.artifact.key),
      },
    });
  });

  app.openapi(forgetRoute, async (c) => {
    const id = c.req.valid('param').name;
    const target = c.req.valid('query').target;
    const result = await forgetBackup(pickTargets(targets, target), id, 'api');
    audit(c, 'backup.forget', { backup: id, forgotten: result.forgotten.map((f) => `${f.target}:${f.key}`) });
    return json(result);
  });
}
