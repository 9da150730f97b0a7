import { text } from 'node:stream/consumers';
import { BackerError, describeError } from '../errors.js';
import type { ObjectInfo, Target } from '../targets/types.js';
import { fingerprintOf, manifestCacheOf, type CachedVerdict, type ManifestCache } from './cache.js';
import { MANIFEST_SUFFIX, manifestSchema, type Manifest } from './schema.js';
import { byCodeUnit } from '../util/compare.js';

export interface StoredBackup {
  manifest: Manifest;
  manifestKey: string;
}

export interface ManifestProblem {
  target: string;
  /** The manifest's key. */
  key: string;
  message: string;
  /**
   * Set when the manifest itself is valid but its artifact is gone (deleted by hand): reported on
   * every list until `backer backups forget` removes the manifest.
   */
  dangling?: DanglingBackup;
}

export interface DanglingBackup {
  name: string;
  uuid: string;
  mandate: string;
  artifact_key: string;
}

export interface BackupListing {
  backups: StoredBackup[];
  problems: ManifestProblem[];
}

type Fail = (message: string, cause?: unknown, extra?: Record<string, unknown>) => BackerError;

function failFor(target: Target, key: string): Fail {
  return (message, cause, extra = {}) =>
    new BackerError('MANIFEST_INVALID', `${target.name}: ${key}: ${message}`, { component: 'manifests', details: { target: target.name, key, ...extra }, cause });
}

/** Reads the manifest's text; read failures (BACKUP_NOT_FOUND included) are never cached. */
async function readText(target: Target, key: string, fail: Fail): Promise<string> {
  try {
    return await text(await target.read(key));
  } catch (err) {
    if (err instanceof BackerError && err.code === 'BACKUP_NOT_FOUND') throw err;
    throw fail(`not readable JSON (${describeError(err)})`, err);
  }
}

/** Parses a manifest's text and checks it against its key (not the artifact). */
function parseManifest(raw: string, key: string, fail: Fail): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw fail(`not readable JSON (${describeError(err)})`, err);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw fail(`invalid manifest: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'schema mismatch'}`);
  }
  const manifest = parsed.data;
  const expectedKey = key.slice(0, -MANIFEST_SUFFIX.length);
  if (!manifest.artifact.key.startsWith(expectedKey) || `${manifest.mandate}/${manifest.name}` !== expectedKey) {
    throw fail(`manifest describes ${manifest.mandate}/${manifest.name}, not the backup its key names`);
  }
  return manifest;
}

/** Checks the stored artifact (`artifact`: its stat, undefined when missing) against the manifest. */
function checkArtifact(manifest: Manifest, artifact: ObjectInfo | undefined, fail: Fail): void {
  if (!artifact) {
    const dangling: DanglingBackup = { name: manifest.name, uuid: manifest.uuid, mandate: manifest.mandate, artifact_key: manifest.artifact.key };
    throw fail(`artifact ${manifest.artifact.key} is missing (deleted by hand? \`backer backups forget ${manifest.name}\` removes this manifest)`, undefined, { dangling });
  }
  if (artifact.size !== manifest.artifact.size) {
    throw fail(`artifact ${manifest.artifact.key} has ${artifact.size} bytes, the manifest says ${manifest.artifact.size}`);
  }
}

/** Parses and checks one manifest against its key and the stored artifact (never cached). */
export async function readManifest(target: Target, key: string): Promise<StoredBackup> {
  const fail = failFor(target, key);
  const manifest = parseManifest(await readText(target, key, fail), key, fail);
  checkArtifact(manifest, await target.stat(manifest.artifact.key), fail);
  return { manifest, manifestKey: key };
}

/**
 * The manifest's own verdict, from the cache while the listing shows the same object, else read
 * (and cached when the target gives a fingerprint). Throws read failures.
 */
async function manifestVerdict(target: Target, object: ObjectInfo, cache: ManifestCache | undefined, fail: Fail): Promise<CachedVerdict> {
  const fingerprint = fingerprintOf(object);
  const cached = cache && fingerprint !== undefined ? cache.get(object.key, fingerprint) : undefined;
  if (cached) return cached;
  const raw = await readText(target, object.key, fail);
  let verdict: CachedVerdict;
  try {
    verdict = { ok: true, manifest: parseManifest(raw, object.key, fail) };
  } catch (err) {
    verdict = { ok: false, message: describeError(err) };
  }
  if (cache && fingerprint !== undefined) cache.set(object.key, fingerprint, verdict);
  return verdict;
}

/** One manifest of a listing; the artifact's size comes from the same listing when that shows it. */
async function checkListed(target: Target, object: ObjectInfo, context: ListContext): Promise<StoredBackup> {
  const fail = failFor(target, object.key);
  const verdict = await manifestVerdict(target, object, context.cache, fail);
  if (!verdict.ok) throw new BackerError('MANIFEST_INVALID', verdict.message, { component: 'manifests', details: { target: target.name, key: object.key } });
  const artifactKey = verdict.manifest.artifact.key;
  // Not in the listing (outside the prefix, or something a listing skips, such as a symlink): stat it as before.
  const artifact = (artifactKey.startsWith(context.prefix) ? context.objects.get(artifactKey) : undefined) ?? (await target.stat(artifactKey));
  checkArtifact(verdict.manifest, artifact, fail);
  return { manifest: verdict.manifest, manifestKey: object.key };
}

interface ListContext {
  prefix: string;
  objects: Map<string, ObjectInfo>;
  cache: ManifestCache | undefined;
}

/** The order of listBackups (and of the API): newest, then name, descending. */
export const newestFirst = (a: Manifest, b: Manifest): number => byCodeUnit(b.created_at, a.created_at) || byCodeUnit(b.name, a.name);

/**
 * The backups on a target are exactly its valid manifests (there is no shared index file).
 * Newest first. Invalid manifests are reported, never trusted nor deleted. The target is listed on
 * every call; only manifests that are new or changed since the last listing are read (cache.ts).
 */
export async function listBackups(target: Target, mandate?: string): Promise<BackupListing> {
  const prefix = mandate === undefined ? '' : `${mandate}/`;
  const listed = await target.list(prefix);
  const context: ListContext = { prefix, objects: new Map(listed.map((o) => [o.key, o])), cache: manifestCacheOf(target) };
  const backups: StoredBackup[] = [];
  const problems: ManifestProblem[] = [];
  for (const object of listed) {
    if (!object.key.endsWith(MANIFEST_SUFFIX)) continue;
    try {
      backups.push(await checkListed(target, object, context));
    } catch (err) {
      const dangling = err instanceof BackerError ? (err.details.dangling as DanglingBackup | undefined) : undefined;
      problems.push({ target: target.name, key: object.key, message: describeError(err), ...(dangling ? { dangling } : {}) });
    }
  }
  context.cache?.prune(prefix, context.objects);
  backups.sort((a, b) => newestFirst(a.manifest, b.manifest));
  return { backups, problems };
}
