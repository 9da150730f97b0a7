/**
 * Start-up sweep of every target, run once when the daemon starts (after recovery, before the
 * queue): each target removes what interrupted writes left (Target.sweep: local temp files of
 * dead processes, S3 multipart uploads begun before the start), and the objects are checked for
 * orphans, which are reported and never deleted: a manifest whose artifact is missing, and an
 * artifact without manifest older than a day (a younger one may be a backup still being written).
 */
import { text } from 'node:stream/consumers';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { MANIFEST_SUFFIX } from '../manifests/schema.js';
import { VERIFY_INFIX } from '../manifests/verification.js';
import type { ObjectInfo, SweepReport, Target } from '../targets/types.js';

/** An artifact without manifest younger than this may belong to a backup in flight. */
export const ORPHAN_ARTIFACT_MIN_AGE_MS = 24 * 60 * 60 * 1000;

export interface Orphan {
  kind: 'manifest_without_artifact' | 'artifact_without_manifest';
  key: string;
  size: number;
  /** Seconds since the object was last modified. */
  age_s: number;
}

export interface TargetSweep {
  target: string;
  removed: SweepReport['removed'];
  removed_bytes: number;
  failed: SweepReport['failed'];
  orphans: Orphan[];
  /** Set when the target could not be swept or checked at all. */
  error?: string;
}

export interface SweepSummary {
  targets: TargetSweep[];
}

const ageSeconds = (object: ObjectInfo, now: number): number => Math.max(0, Math.round((now - object.modified.getTime()) / 1000));

/** The artifact key a manifest names, or undefined when it cannot be read as one. */
async function artifactKeyOf(target: Target, manifestKey: string): Promise<string | undefined> {
  try {
    const json: unknown = JSON.parse(await text(await target.read(manifestKey)));
    const key = (json as { artifact?: { key?: unknown } } | null)?.artifact?.key;
    return typeof key === 'string' ? key : undefined;
  } catch {
    return undefined;
  }
}

/** `<mandate>/<name>` for every `.` in the file name: the backups an artifact may belong to. */
function backupBases(key: string): string[] {
  const bases: string[] = [];
  for (let i = key.indexOf('.', key.lastIndexOf('/') + 2); i >= 0; i = key.indexOf('.', i + 1)) bases.push(key.slice(0, i));
  return bases;
}

const isRecord = (key: string): boolean => key.endsWith(MANIFEST_SUFFIX) || (key.includes(VERIFY_INFIX) && key.endsWith('.json'));

/**
 * Orphans among the objects of every mandate (`<mandate>/...`). A backup is `<name><ext>` beside
 * `<name>.manifest.json`, so pairs are matched by name; only a manifest without such a partner is
 * read (its artifact may have another name). A manifest that cannot be read is not judged here
 * (listing backups reports it).
 */
export async function findOrphans(target: Target, now = Date.now()): Promise<Orphan[]> {
  const objects = (await target.list('')).filter((o) => o.key.includes('/'));
  const byKey = new Map(objects.map((o) => [o.key, o]));
  const manifests = new Map(objects.filter((o) => o.key.endsWith(MANIFEST_SUFFIX)).map((o) => [o.key.slice(0, -MANIFEST_SUFFIX.length), o]));
  const paired = new Set<string>();
  const loose: ObjectInfo[] = [];
  for (const object of objects.filter((o) => !isRecord(o.key))) {
    const bases = backupBases(object.key).filter((b) => manifests.has(b));
    for (const b of bases) paired.add(b);
    if (bases.length === 0) loose.push(object);
  }
  const orphans: Orphan[] = [];
  const claimed = new Set<string>();
  for (const [base, manifest] of manifests) {
    if (paired.has(base)) continue;
    const artifactKey = await artifactKeyOf(target, manifest.key);
    if (artifactKey === undefined) continue;
    claimed.add(artifactKey);
    if (!byKey.has(artifactKey)) {
      orphans.push({ kind: 'manifest_without_artifact', key: manifest.key, size: manifest.size, age_s: ageSeconds(manifest, now) });
    }
  }
  for (const object of loose) {
    if (claimed.has(object.key) || now - object.modified.getTime() < ORPHAN_ARTIFACT_MIN_AGE_MS) continue;
    orphans.push({ kind: 'artifact_without_manifest', key: object.key, size: object.size, age_s: ageSeconds(object, now) });
  }
  return orphans;
}

async function sweepOne(target: Target, logger: Logger, startedAt: Date): Promise<TargetSweep> {
  const result: TargetSweep = { target: target.name, removed: [], removed_bytes: 0, failed: [], orphans: [] };
  const errors: string[] = [];
  try {
    const report = await target.sweep({ startedAt, logger });
    result.removed = report.removed;
    result.failed = report.failed;
    result.removed_bytes = report.removed.reduce((sum, r) => sum + r.bytes, 0);
  } catch (err) {
    errors.push(describeError(err));
    logger.error({ target: target.name, err: describeError(err) }, 'start-up sweep failed: temp files and unfinished uploads of this target are left');
  }
  for (const f of result.failed) logger.warn({ target: target.name, object: f.key, err: f.error }, 'start-up sweep could not remove an abandoned temp file or upload');
  try {
    result.orphans = await findOrphans(target);
  } catch (err) {
    errors.push(describeError(err));
    logger.error({ target: target.name, err: describeError(err) }, 'start-up sweep could not check this target for orphans');
  }
  for (const o of result.orphans) {
    const what = o.kind === 'manifest_without_artifact' ? 'a manifest whose artifact is missing' : 'an artifact without manifest';
    logger.warn({ target: target.name, object: o.key, size: o.size, age_s: o.age_s, kind: o.kind }, `start-up sweep found ${what} (left in place)`);
  }
  if (errors.length > 0) result.error = errors.join('; ');
  return result;
}

/**
 * Sweeps every target in turn and logs one line per target ("start-up sweep"). Never throws: a
 * target that fails is logged as an error and the others go on.
 */
export async function sweepTargets(targets: ReadonlyMap<string, Target>, logger: Logger, startedAt: Date): Promise<SweepSummary> {
  const summary: SweepSummary = { targets: [] };
  for (const target of targets.values()) {
    const result = await sweepOne(target, logger, startedAt).catch(
      (err: unknown): TargetSweep => ({ target: target.name, removed: [], removed_bytes: 0, failed: [], orphans: [], error: describeError(err) }),
    );
    summary.targets.push(result);
    const line = { target: result.target, removed: result.removed.length, removed_bytes: result.removed_bytes, orphans: result.orphans.length };
    if (result.failed.length > 0) Object.assign(line, { failed: result.failed.length });
    logger.info(line, 'start-up sweep');
  }
  return summary;
}
