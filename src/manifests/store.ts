import { text } from 'node:stream/consumers';
import { BackerError, describeError } from '../errors.js';
import type { Target } from '../targets/types.js';
import { MANIFEST_SUFFIX, manifestSchema, type Manifest } from './schema.js';

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

/** Parses and checks one manifest against its key and the stored artifact. */
export async function readManifest(target: Target, key: string): Promise<StoredBackup> {
  const fail = (message: string, cause?: unknown, extra: Record<string, unknown> = {}): BackerError =>
    new BackerError('MANIFEST_INVALID', `${target.name}: ${key}: ${message}`, { component: 'manifests', details: { target: target.name, key, ...extra }, cause });
  let json: unknown;
  try {
    json = JSON.parse(await text(await target.read(key)));
  } catch (err) {
    if (err instanceof BackerError && err.code === 'BACKUP_NOT_FOUND') throw err;
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
  const artifact = await target.stat(manifest.artifact.key);
  if (!artifact) {
    const dangling: DanglingBackup = { name: manifest.name, uuid: manifest.uuid, mandate: manifest.mandate, artifact_key: manifest.artifact.key };
    throw fail(`artifact ${manifest.artifact.key} is missing (deleted by hand? \`backer backups forget ${manifest.name}\` removes this manifest)`, undefined, { dangling });
  }
  if (artifact.size !== manifest.artifact.size) {
    throw fail(`artifact ${manifest.artifact.key} has ${artifact.size} bytes, the manifest says ${manifest.artifact.size}`);
  }
  return { manifest, manifestKey: key };
}

/**
 * The backups on a target are exactly its valid manifests (there is no shared index file).
 * Newest first. Invalid manifests are reported, never trusted nor deleted.
 */
export async function listBackups(target: Target, mandate?: string): Promise<BackupListing> {
  const objects = await target.list(mandate === undefined ? '' : `${mandate}/`);
  const backups: StoredBackup[] = [];
  const problems: ManifestProblem[] = [];
  for (const object of objects) {
    if (!object.key.endsWith(MANIFEST_SUFFIX)) continue;
    try {
      backups.push(await readManifest(target, object.key));
    } catch (err) {
      const dangling = err instanceof BackerError ? (err.details.dangling as DanglingBackup | undefined) : undefined;
      problems.push({ target: target.name, key: object.key, message: describeError(err), ...(dangling ? { dangling } : {}) });
    }
  }
  backups.sort((a, b) => b.manifest.created_at.localeCompare(a.manifest.created_at) || b.manifest.name.localeCompare(a.manifest.name));
  return { backups, problems };
}
