import { z } from '@hono/zod-openapi';
import type { TargetConfig } from '../config/schema.js';
import { describeError, errorCode } from '../errors.js';
import { listBackups } from '../manifests/store.js';
import type { TargetUsage } from '../status/types.js';
import type { Target } from '../targets/types.js';
import type { ApiDeps } from './app.js';
import { backupPage, pagingQuery, pickTargets } from './backup-listing.js';
import { backupPageSchema } from './backups.js';
import { defineRoute, type ApiApp, type Json } from './route.js';
import { errors, jsonContent } from './schemas.js';

/** Targets: what each holds (usage), whether it answered (health), its settings without secrets, its backups. */

/** Settings never shown: credentials of any kind, whatever the target type calls them. */
const SECRET_SETTING = /secret|password|passphrase|token|private|credential/i;

const usageSchema = z.object({ backups: z.number().int(), bytes: z.number().int(), problems: z.number().int() });
const healthSchema = z.object({
  healthy: z.boolean(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  checked_at: z.string().nullable(),
});

export const targetSchema = z
  .object({
    name: z.string(),
    type: z.string(),
    default: z.boolean(),
    usage: usageSchema.nullable().openapi({ description: 'Backups with a trusted manifest and their stored bytes, as of the last good listing (health.checked_at); null before one' }),
    health: healthSchema,
    settings: z.record(z.string(), z.unknown()).openapi({ description: 'The configured options, without credentials' }),
  })
  .openapi('Target');

const targetDetailSchema = z.object({ target: targetSchema, mandates: z.array(z.string()) }).openapi('TargetDetail');

const nameParams = z.object({ name: z.string().min(1).openapi({ param: { name: 'name', in: 'path' }, description: 'the target' }) });
const noQuery = z.object({}).strict();

const listRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/targets',
  summary: 'Every target with its usage, health and settings',
  request: { query: noQuery },
  responses: { 200: jsonContent(z.object({ targets: z.array(targetSchema) }).openapi('TargetList'), 'The targets'), ...errors(400, 401, 403) },
});

const showRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/targets/{name}',
  summary: 'One target, and the mandates that write to it',
  request: { params: nameParams, query: noQuery },
  responses: { 200: jsonContent(targetDetailSchema, 'The target'), ...errors(400, 401, 403, 404) },
});

const backupsRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/targets/{name}/backups',
  summary: 'The backups on one target, newest first, paged',
  request: {
    params: nameParams,
    query: z.object({ mandate: z.string().min(1, 'must not be empty').optional().openapi({ description: 'only the backups of this mandate' }), ...pagingQuery }).strict(),
  },
  responses: { 200: jsonContent(backupPageSchema, 'One page of backups'), ...errors(400, 401, 403, 404) },
});

/** The configured options minus the name, type, default flag and every credential. */
export function publicSettings(config: TargetConfig | undefined): Record<string, unknown> {
  if (config === undefined) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === 'name' || key === 'type' || key === 'default' || SECRET_SETTING.test(key) || value === undefined) continue;
    out[key] = value;
  }
  return out;
}

/** Usage read now, for a daemon without the usage monitor. */
async function liveUsage(target: Target): Promise<TargetUsage> {
  const base = { target: target.name, type: target.type, checked_at: new Date().toISOString() };
  try {
    const listing = await listBackups(target);
    const bytes = listing.backups.reduce((sum, b) => sum + b.manifest.artifact.size, 0);
    return { ...base, backups: listing.backups.length, bytes, problems: listing.problems.length, healthy: true, error: null };
  } catch (err) {
    return { ...base, backups: 0, bytes: 0, problems: 0, healthy: false, error: { code: errorCode(err), message: describeError(err) } };
  }
}

function targetJson(target: Target, config: TargetConfig | undefined, usage: TargetUsage | undefined): z.infer<typeof targetSchema> {
  const known = usage !== undefined && usage.checked_at !== null;
  return {
    name: target.name,
    type: target.type,
    default: config?.default ?? false,
    usage: known ? { backups: usage.backups, bytes: usage.bytes, problems: usage.problems } : null,
    health: { healthy: usage?.healthy ?? false, error: usage?.error ?? null, checked_at: usage?.checked_at ?? null },
    settings: publicSettings(config),
  };
}

export function registerTargetRoutes(app: ApiApp, deps: ApiDeps, json: Json): void {
  const targets = deps.services.targets;
  const configOf = (name: string): TargetConfig | undefined => deps.services.config?.targets.find((t) => t.name === name);
  const usageOf = async (target: Target): Promise<TargetUsage | undefined> => (deps.usage ? deps.usage.get(target.name) : liveUsage(target));

  app.openapi(listRoute, async () => {
    const all = await Promise.all([...targets.values()].map(async (t) => targetJson(t, configOf(t.name), await usageOf(t))));
    return json({ targets: all });
  });

  app.openapi(showRoute, async (c) => {
    const [target] = pickTargets(targets, c.req.valid('param').name);
    if (target === undefined) throw new Error('unreachable: pickTargets returns the named target');
    const mandates = deps.services.discovery
      .current()
      .mandates.filter((m) => m.targets.includes(target.name))
      .map((m) => m.name)
      .sort();
    return json({ target: targetJson(target, configOf(target.name), await usageOf(target)), mandates });
  });

  app.openapi(backupsRoute, async (c) => {
    const name = c.req.valid('param').name;
    pickTargets(targets, name);
    return json(await backupPage(targets, { ...c.req.valid('query'), target: name }));
  });
}
