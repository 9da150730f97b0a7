import type { Logger } from '../logging/logger.js';
import { listBackups } from '../manifests/store.js';
import { MANIFEST_SUFFIX } from '../manifests/schema.js';
import { VERIFY_INFIX } from '../manifests/verification.js';
import type { Target } from '../targets/types.js';
import { selectExpiredAll, type RetentionPolicy } from './policy.js';

/** Verification records (`<name>.verify-<time>.json`) go with their backup. */
async function removeVerifications(target: Target, manifestKey: string): Promise<void> {
  const prefix = `${manifestKey.slice(0, -MANIFEST_SUFFIX.length)}${VERIFY_INFIX}`;
  for (const record of await target.list(prefix)) await target.remove(record.key);
}

/**
 * Deletes the expired backups of one mandate on one target. The manifest goes first, so a
 * backup stops existing before its artifact is touched; an artifact left behind by a failed
 * delete is an orphan, never a backup that looks complete.
 */
export async function applyRetention(target: Target, mandate: string, policy: RetentionPolicy, logger: Logger): Promise<string[]> {
  const { backups } = await listBackups(target, mandate);
  const expired = selectExpiredAll(backups.filter((b) => b.manifest.mandate === mandate), policy);
  const deleted: string[] = [];
  for (const backup of expired) {
    await target.remove(backup.manifestKey);
    await target.remove(backup.manifest.artifact.key);
    await removeVerifications(target, backup.manifestKey);
    deleted.push(backup.manifest.name);
    logger.info({ target: target.name, mandate, backup: backup.manifest.name }, 'retention deleted backup');
  }
  return deleted;
}
