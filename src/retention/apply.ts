import { BackerError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { MandateSpec } from '../mandates/types.js';
import { listBackups, type StoredBackup } from '../manifests/store.js';
import { MANIFEST_SUFFIX } from '../manifests/schema.js';
import { VERIFY_INFIX } from '../manifests/verification.js';
import type { Target } from '../targets/types.js';
import { failpoint } from '../util/failpoint.js';
import { removeStaleArtifacts } from './leftovers.js';
import { planRetention, type PlannedBackup, type RetentionPolicy } from './policy.js';

/** The policy of a mandate: its GFS rules, or the newest `retention` backups. */
export const retentionPolicyOf = (mandate: Pick<MandateSpec, 'retention' | 'retention_rules'>): RetentionPolicy =>
  mandate.retention_rules === undefined ? { keep: mandate.retention } : { keep: mandate.retention, rules: mandate.retention_rules };

/** Verification records (`<name>.verify-<time>.json`) go with their backup. */
async function removeVerifications(target: Target, manifestKey: string): Promise<void> {
  const prefix = `${manifestKey.slice(0, -MANIFEST_SUFFIX.length)}${VERIFY_INFIX}`;
  for (const record of await target.list(prefix)) await target.remove(record.key);
}

/** The valid backups of one mandate on one target, newest first. */
async function mandateBackups(target: Target, mandate: string): Promise<StoredBackup[]> {
  const { backups } = await listBackups(target, mandate);
  return backups.filter((b) => b.manifest.mandate === mandate);
}

/** The retention plan of one mandate on one target, from the manifests there (nothing is deleted). */
export async function planTarget(target: Target, mandate: string, policy: RetentionPolicy, now = new Date()): Promise<PlannedBackup<StoredBackup>[]> {
  return planRetention(await mandateBackups(target, mandate), policy, now);
}

/** Removes one backup: the manifest first, so it stops existing before its artifact is touched. */
async function removeBackup(target: Target, backup: StoredBackup): Promise<void> {
  await target.remove(backup.manifestKey);
  failpoint('retention.mid-delete');
  await target.remove(backup.manifest.artifact.key);
  await removeVerifications(target, backup.manifestKey);
}

/**
 * Deletes the expired backups of one mandate on one target, pushing each deleted name to
 * `deleted` (returned). An artifact left behind by a failed delete is an orphan, never a backup
 * that looks complete. A failed deletion is logged and the others still go; then it throws, naming
 * the first failure.
 */
export async function applyRetention(target: Target, mandate: string, policy: RetentionPolicy, logger: Logger, deleted: string[] = []): Promise<string[]> {
  const backups = await mandateBackups(target, mandate);
  const expired = planRetention(backups, policy).filter((p) => !p.keep);
  const failures: string[] = [];
  for (const { backup, reasons } of expired) {
    const fields = { target: target.name, mandate, backup: backup.manifest.name, reason: reasons.join('; ') };
    try {
      await removeBackup(target, backup);
    } catch (err) {
      failures.push(`${backup.manifest.name}: ${describeError(err)}`);
      logger.warn({ ...fields, err: describeError(err) }, 'retention could not delete backup');
      continue;
    }
    deleted.push(backup.manifest.name);
    logger.info(fields, 'retention deleted backup');
  }
  // Artifacts an earlier pass or run left without a manifest (killed between the two deletes).
  await removeStaleArtifacts(target, mandate, backups, logger).catch((err: unknown) => {
    failures.push(`artifacts without manifest: ${describeError(err)}`);
  });
  if (failures.length > 0) {
    throw new BackerError('TARGET_WRITE_FAILED', `retention could not delete everything (${failures.length} failed of ${expired.length} expired backups and the artifacts without manifest): ${failures[0] ?? ''}`, {
      component: 'retention',
      details: { target: target.name, mandate },
    });
  }
  return deleted;
}
