import { z } from '@hono/zod-openapi';
import { BackerError, describeError } from '../errors.js';
import { indexedBackups, listingIndexEnabled, type IndexedBackup } from '../manifests/listing-index.js';
import { MANIFEST_SUFFIX, type Manifest } from '../manifests/schema.js';
import { listBackups, newestFirst, readManifest, type ManifestProblem, type StoredBackup } from '../manifests/store.js';
import type { Target } from '../targets/types.js';
import { byCodeUnit } from '../util/compare.js';

/** Backups a page holds when `limit` is not given, and at most. */
export const BACKUPS_LIMIT_DEFAULT = 50;
export const BACKUPS_LIMIT_MAX = 500;

/** A whole number in a query string ("" and "1.5" are not). */
const wholeNumber = (min: number, max: number): z.ZodType<number, string> =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date and time, e.g. 2026-11-30T00:00:00Z' });

/** Paging and the time window, shared by every backup listing. */
export const pagingQuery = {
  limit: wholeNumber(1, BACKUPS_LIMIT_MAX)
    .default(BACKUPS_LIMIT_DEFAULT)
    .openapi({ param: { name: 'limit', in: 'query' }, type: 'string', description: `backups per page, 1–${BACKUPS_LIMIT_MAX} (default ${BACKUPS_LIMIT_DEFAULT})` }),
  offset: wholeNumber(0, Number.MAX_SAFE_INTEGER)
    .default(0)
    .openapi({ param: { name: 'offset', in: 'query' }, type: 'string', description: 'backups to skip (default 0)' }),
  since: instant.optional().openapi({ description: 'only backups created at or after this time' }),
  until: instant.optional().openapi({ description: 'only backups created before this time' }),
};

export const backupsQuerySchema = z
  .object({
    mandate: z.string().min(1, 'must not be empty').optional().openapi({ description: 'only the backups of this mandate' }),
    target: z.string().min(1, 'must not be empty').optional().openapi({ description: 'only the backups on this target' }),
    ...pagingQuery,
  })
  .strict();

export const targetQuerySchema = z
  .object({ target: z.string().min(1, 'must not be empty').optional().openapi({ description: 'the target the backup is on (needed when it is on several)' }) })
  .strict();

export interface BackupFilter {
  mandate?: string;
  target?: string;
  since?: string;
  until?: string;
  limit: number;
  offset: number;
}

export interface BackupPage {
  backups: Manifest[];
  total: number;
  limit: number;
  offset: number;
  /** Manifests that could not be trusted, and targets that could not be listed. */
  problems: ManifestProblem[];
}

/** The chosen target (404 naming the known ones), or every target. */
export function pickTargets(targets: ReadonlyMap<string, Target>, name: string | undefined): Target[] {
  if (name === undefined) return [...targets.values()];
  const target = targets.get(name);
  if (target === undefined) {
    const known = [...targets.keys()].join(', ') || 'none';
    throw new BackerError('TARGET_NOT_FOUND', `no target named ${name}; known: ${known}`, { component: 'api', details: { target: name } });
  }
  return [target];
}

type Listed = { backups: readonly IndexedBackup[]; problems: ManifestProblem[] };

/** One target's trusted backups (newest first) and problems, from its listing index (src/manifests/listing-index.ts) or listed now. */
async function listTarget(target: Target, mandate: string | undefined): Promise<Listed & { version?: number }> {
  if (!listingIndexEnabled()) {
    const listing = await listBackups(target, mandate);
    return { backups: listing.backups.map((b) => ({ manifest: b.manifest, at: Date.parse(b.manifest.created_at) })), problems: listing.problems };
  }
  const view = await indexedBackups(target);
  if (mandate === undefined) return { backups: view.backups, problems: [...view.problems], version: view.version };
  const prefix = `${mandate}/`;
  return { backups: view.backups.filter((b) => b.manifest.mandate === mandate), problems: view.problems.filter((p) => p.key.startsWith(prefix)) };
}

const acrossTargets = (a: IndexedBackup, b: IndexedBackup): number => newestFirst(a.manifest, b.manifest) || byCodeUnit(a.manifest.target.name, b.manifest.target.name);

/** The last merge of several targets' views, reused while none of them changed. */
let merged: { key: string; backups: readonly IndexedBackup[] } | undefined;

function merge(listed: readonly (Listed & { version?: number })[]): readonly IndexedBackup[] {
  const [only, ...rest] = listed;
  if (only !== undefined && rest.length === 0) return only.backups;
  const versions = listed.map((l) => l.version);
  const key = versions.every((v) => v !== undefined) ? versions.join(',') : undefined;
  if (key !== undefined && merged?.key === key) return merged.backups;
  const backups = listed.flatMap((l) => l.backups).sort(acrossTargets);
  if (key !== undefined) merged = { key, backups };
  return backups;
}

/** Every trusted backup on the targets (newest first) and the problems; a target that cannot be listed is a problem, not a failure. */
async function collect(targets: readonly Target[], mandate: string | undefined): Promise<{ backups: readonly IndexedBackup[]; problems: ManifestProblem[] }> {
  const listings = await Promise.all(
    targets.map(async (t): Promise<Listed & { version?: number }> => {
      try {
        return await listTarget(t, mandate);
      } catch (err) {
        return { backups: [], problems: [{ target: t.name, key: mandate === undefined ? '' : `${mandate}/`, message: `${t.name}: cannot list backups: ${describeError(err)}` }] };
      }
    }),
  );
  return { backups: merge(listings), problems: listings.flatMap((l) => l.problems) };
}

/** One page of backups, newest first, filtered by mandate, target and time window; `total` counts every match. */
export async function backupPage(targets: ReadonlyMap<string, Target>, filter: BackupFilter): Promise<BackupPage> {
  const { backups, problems } = await collect(pickTargets(targets, filter.target), filter.mandate);
  const since = filter.since === undefined ? -Infinity : Date.parse(filter.since);
  const until = filter.until === undefined ? Infinity : Date.parse(filter.until);
  const matching = filter.since === undefined && filter.until === undefined ? backups : backups.filter((b) => b.at >= since && b.at < until);
  const page = matching.slice(filter.offset, filter.offset + filter.limit).map((b) => b.manifest);
  return { backups: page, total: matching.length, limit: filter.limit, offset: filter.offset, problems };
}

export interface FoundBackup {
  target: Target;
  stored: StoredBackup;
}

/** The copies of backup `id` (its name, or its uuid) on one target; found by the manifest's key first, by reading every manifest for a uuid. */
async function findOn(target: Target, id: string): Promise<{ found: StoredBackup[]; problems: ManifestProblem[] }> {
  const suffix = `/${id}${MANIFEST_SUFFIX}`;
  const keys = (await target.list('')).map((o) => o.key).filter((k) => k.endsWith(suffix));
  if (keys.length === 0) {
    const listing = await listBackups(target);
    return { found: listing.backups.filter((b) => b.manifest.uuid === id), problems: listing.problems.filter((p) => p.dangling?.uuid === id) };
  }
  const found: StoredBackup[] = [];
  const problems: ManifestProblem[] = [];
  for (const key of keys) {
    try {
      found.push(await readManifest(target, key));
    } catch (err) {
      const dangling = err instanceof BackerError ? (err.details.dangling as ManifestProblem['dangling']) : undefined;
      problems.push({ target: target.name, key, message: describeError(err), ...(dangling ? { dangling } : {}) });
    }
  }
  return { found, problems };
}

/** Every trusted copy of backup `id` on the chosen target(s); 404 BACKUP_NOT_FOUND (with why, when a copy is broken) when there is none. */
export async function findBackup(targets: ReadonlyMap<string, Target>, id: string, targetName: string | undefined): Promise<FoundBackup[]> {
  const found: FoundBackup[] = [];
  const problems: ManifestProblem[] = [];
  for (const target of pickTargets(targets, targetName)) {
    const one = await findOn(target, id);
    found.push(...one.found.map((stored) => ({ target, stored })));
    problems.push(...one.problems);
  }
  if (found.length === 0) {
    const why = problems.length === 0 ? '' : ` (${problems.map((p) => p.message).join('; ')})`;
    const where = targetName === undefined ? '' : ` on target ${targetName}`;
    throw new BackerError('BACKUP_NOT_FOUND', `no backup named or with uuid ${id}${where}${why}`, { component: 'api', details: { backup: id } });
  }
  return found;
}

/** The one copy a download streams: a backup on several targets (or a name two mandates share) needs `target` (or the uuid). */
export function oneCopy(found: readonly FoundBackup[], id: string): FoundBackup {
  const [first, ...rest] = found;
  if (first === undefined) throw new BackerError('BACKUP_NOT_FOUND', `no backup named or with uuid ${id}`, { component: 'api', details: { backup: id } });
  if (rest.length === 0) return first;
  const targets = [...new Set(found.map((f) => f.target.name))];
  const message =
    targets.length > 1
      ? `backup ${id} is on the targets ${targets.join(', ')}: choose one with ?target=`
      : `${found.length} backups named ${id} (mandates ${found.map((f) => f.stored.manifest.mandate).join(', ')}): download one by its uuid`;
  throw new BackerError('API_BAD_REQUEST', message, { component: 'api', details: { backup: id, parameter: 'target', targets } });
}
