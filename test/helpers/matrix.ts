import { expect } from 'vitest';
import type { Daemon } from '../../src/daemon/daemon.js';
import type { Manifest } from '../../src/manifests/schema.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import { decodeWithRealTools, digest, s3Get } from './artifacts.js';
import { backupThrough, TEST_KEYS } from './env.js';

export interface DecodedBackup {
  result: BackupResult;
  /** The artifact's key on the targets, e.g. `shop-db/<name>.sql.zst.gpg`. */
  key: string;
  manifest: Manifest;
  /** The raw dump, after the real tools undid every middleware step. */
  raw: Buffer;
}

/**
 * Backs a mandate up through `chain` (middleware names), fetches the S3 copy and its manifest,
 * checks the artifact against the manifest and decodes it with the real programs.
 */
export async function backupAndDecode(daemon: Daemon, bucket: string, mandate: string, chain: string[]): Promise<DecodedBackup> {
  const result = await backupThrough(daemon, mandate, chain);
  expect(result.error?.message ?? null).toBeNull();
  expect(result.status).toBe('succeeded');
  const target = result.targets.find((t) => t.target === 's3');
  const artifact = await s3Get(bucket, `backer/${target?.artifact_key ?? ''}`);
  const manifest = JSON.parse((await s3Get(bucket, `backer/${target?.manifest_key ?? ''}`)).toString()) as Manifest;
  expect(digest(artifact)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });
  return { result, key: target?.artifact_key ?? '', manifest, raw: await decodeWithRealTools(artifact, manifest.steps, TEST_KEYS) };
}
