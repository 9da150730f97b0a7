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

/** Removes what runs that died left on `target` (temp files, unfinished uploads). */
async function cleanOne(target: Target, logger: Logger, startedAt: Date, result: TargetSweep, errors: string[]): Promise<void> {
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
}

/** Reports (never removes) the orphans of `target`. */
async function reportOrphans(target: Target, logger: Logger, result: TargetSweep, errors: string[]): Promise<void> {
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
}

function logSwept(result: TargetSweep, logger: Logger): void {
  const line = { target: result.target, removed: result.removed.length, removed_bytes: result.removed_bytes, orphans: result.orphans.length };
  if (result.failed.length > 0) Object.assign(line, { failed: result.failed.length });
  logger.info(line, 'start-up sweep');
}

export interface RunningSweep {
  /** Every target's temp files and unfinished uploads are removed (or their failure logged): backups may run. */
  cleaned: Promise<void>;
  /** The orphan reports too, one "start-up sweep" line per target; never rejects. */
  done: Promise<SweepSummary>;
}

/**
 * Sweeps every target in turn: first what dead runs left (`cleaned`: the queue waits for it),
 * then the orphan reports, which list and may read every manifest (10,000 backups: about a
 * second) and only log, so the daemon does not wait for them (`done`). Never rejects: a target
 * that fails is logged as an error and the others go on. An orphan report running beside a
 * backup is safe: an artifact younger than a day is never reported.
 */
export function startSweep(targets: ReadonlyMap<string, Target>, logger: Logger, startedAt: Date): RunningSweep {
  const emptyResult = (target: Target): TargetSweep => ({ target: target.name, removed: [], removed_bytes: 0, failed: [], orphans: [] });
  const results = [...targets.values()].map((target) => ({ target, result: emptyResult(target), errors: [] as string[] }));
  const cleaned = (async () => {
    for (const r of results) await cleanOne(r.target, logger, startedAt, r.result, r.errors);
  })();
  const done = cleaned.then(async () => {
    for (const r of results) {
      await reportOrphans(r.target, logger, r.result, r.errors);
      if (r.errors.length > 0) r.result.error = r.errors.join('; ');
      logSwept(r.result, logger);
    }
    return { targets: results.map((r) => r.result) };
  });
  return { cleaned, done };
}

/** The whole sweep of every target, orphan reports included (see startSweep). */
export async function sweepTargets(targets: ReadonlyMap<string, Target>, logger: Logger, startedAt: Date): Promise<SweepSummary> {
  return startSweep(targets, logger, startedAt).done;
}
