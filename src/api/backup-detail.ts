import { text } from 'node:stream/consumers';
import { z } from '@hono/zod-openapi';
import { describeError } from '../errors.js';
import { MANIFEST_SUFFIX, manifestKey } from '../manifests/schema.js';
import { readManifest } from '../manifests/store.js';
import { VERIFY_INFIX, verificationSchema, type Verification } from '../manifests/verification.js';
import type { Target } from '../targets/types.js';
import type { FoundBackup } from './backup-listing.js';
import { byCodeUnit } from '../util/compare.js';

/**
 * What `GET /v1/backups/{name}` adds to the manifests (the web UI's backup screen): where each copy
 * is and whether its artifact is there, and every verification record stored next to it.
 */

export const backupCopySchema = z
  .object({
    target: z.string(),
    manifest_key: z.string(),
    artifact_key: z.string().nullable(),
    /** The artifact's size as the manifest states it (null when the manifest cannot be read). */
    size: z.number().int().nullable(),
    /** The artifact exists with the manifest's size. */
    present: z.boolean(),
    problem: z.string().nullable(),
  })
  .openapi('BackupCopy');

// Built from the record's own schema (plain zod): the same shape, documented.
export const verificationRecordSchema = z.object(verificationSchema.shape).openapi('VerificationRecord');

export type BackupCopy = z.infer<typeof backupCopySchema>;

/** Every valid verification record of one stored backup, newest first (invalid records are never trusted, so left out). */
async function verificationsOf(target: Target, key: string): Promise<Verification[]> {
  const prefix = `${key.slice(0, -MANIFEST_SUFFIX.length)}${VERIFY_INFIX}`;
  const keys = (await target.list(prefix)).map((o) => o.key).filter((k) => k.endsWith('.json'));
  const records = await Promise.all(
    keys.map(async (k) => {
      const parsed = verificationSchema.safeParse(await target.read(k).then(text).then((t) => JSON.parse(t) as unknown, () => null));
      return parsed.success ? parsed.data : null;
    }),
  );
  return records.filter((r): r is Verification => r !== null).sort((a, b) => byCodeUnit(b.started_at, a.started_at));
}

/** A copy the listing does not trust (its manifest is there, its artifact is missing or of another size), or null when `target` has no manifest for it. */
async function brokenCopy(target: Target, key: string): Promise<BackupCopy | null> {
  if ((await target.stat(key)) === undefined) return null;
  try {
    const { manifest } = await readManifest(target, key);
    return { target: target.name, manifest_key: key, artifact_key: manifest.artifact.key, size: manifest.artifact.size, present: true, problem: null };
  } catch (err) {
    return { target: target.name, manifest_key: key, artifact_key: null, size: null, present: false, problem: describeError(err) };
  }
}

/**
 * The copies of a found backup on `targets` (those that hold a trusted copy, and those whose
 * manifest is there without its artifact) and the verification records of the trusted ones.
 */
export async function backupDetail(found: readonly FoundBackup[], targets: readonly Target[]): Promise<{ copies: BackupCopy[]; verifications: Verification[] }> {
  const copies: BackupCopy[] = found.map(({ target, stored }) => ({
    target: target.name,
    manifest_key: stored.manifestKey,
    artifact_key: stored.manifest.artifact.key,
    size: stored.manifest.artifact.size,
    present: true,
    problem: null,
  }));
  const first = found[0]?.stored.manifest;
  if (first !== undefined) {
    const key = manifestKey(first.mandate, first.name);
    const others = targets.filter((t) => !found.some((f) => f.target === t));
    const broken = await Promise.all(others.map((t) => brokenCopy(t, key).catch((err: unknown) => ({ target: t.name, manifest_key: key, artifact_key: null, size: null, present: false, problem: describeError(err) }))));
    copies.push(...broken.filter((c): c is BackupCopy => c !== null));
  }
  const verifications = (await Promise.all(found.map((f) => verificationsOf(f.target, f.stored.manifestKey)))).flat();
  verifications.sort((a, b) => byCodeUnit(b.started_at, a.started_at));
  return { copies, verifications };
}
