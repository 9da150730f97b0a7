import { BackerError } from '../errors.js';
import type { MandateSpec } from '../mandates/types.js';
import { listBackups, readManifest, type StoredBackup } from '../manifests/store.js';
import { isSafety } from '../retention/policy.js';
import type { Target } from '../targets/types.js';

export interface LocatedBackup extends StoredBackup {
  target: Target;
}

function targetsOf(mandate: MandateSpec, targets: ReadonlyMap<string, Target>, only: string | undefined): Target[] {
  if (only !== undefined) {
    const target = targets.get(only);
    if (!target) {
      throw new BackerError('TARGET_NOT_FOUND', `no target named ${only}; configured: ${[...targets.keys()].join(', ')}`, {
        component: 'restore',
        details: { target: only },
        permanent: true,
      });
    }
    return [target];
  }
  return mandate.targets.map((t) => targets.get(t)).filter((t): t is Target => t !== undefined);
}

/**
 * The backup a restore or verification names: `latest` (the newest regular backup, safety backups
 * aside), a name or a uuid, on `--target` or on the first of the mandate's targets that has it.
 * Its manifest is read and checked against the stored artifact's size.
 */
export async function findBackup(mandate: MandateSpec, targets: ReadonlyMap<string, Target>, id: string, only?: string): Promise<LocatedBackup> {
  for (const target of targetsOf(mandate, targets, only)) {
    const { backups } = await listBackups(target, mandate.name);
    const found = id === 'latest' ? backups.find((b) => !isSafety(b.manifest)) : backups.find((b) => b.manifest.name === id || b.manifest.uuid === id);
    // readManifest again: listBackups may have read it a while ago, the artifact must still be there.
    if (found) return { ...(await readManifest(target, found.manifestKey)), target };
  }
  const where = only === undefined ? `the targets of mandate ${mandate.name} (${mandate.targets.join(', ')})` : `target ${only}`;
  throw new BackerError('BACKUP_NOT_FOUND', `${id === 'latest' ? 'no backup' : `no backup named or with uuid ${id}`} of mandate ${mandate.name} on ${where}`, {
    component: 'restore',
    details: { mandate: mandate.name, backup: id },
    permanent: true,
  });
}

/** Every backup of a mandate on its targets (or one target), newest first, safety backups included. */
export async function allBackups(mandate: MandateSpec, targets: ReadonlyMap<string, Target>, only?: string): Promise<LocatedBackup[]> {
  const out: LocatedBackup[] = [];
  for (const target of targetsOf(mandate, targets, only)) {
    const { backups } = await listBackups(target, mandate.name);
    out.push(...backups.map((b) => ({ ...b, target })));
  }
  return out;
}
