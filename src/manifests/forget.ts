import { BackerError } from '../errors.js';
import type { Target } from '../targets/types.js';
import { listBackups } from './store.js';

/** A manifest removed by forget: its artifact was missing. */
export interface Forgotten {
  target: string;
  key: string;
  name: string;
  uuid: string;
  artifact_key: string;
}

export interface ForgetResult {
  forgotten: Forgotten[];
  /** Manifests of the backup whose artifact is present: never touched. */
  kept: { target: string; key: string }[];
}

/**
 * Removes the manifests of backup `id` (name or uuid) whose artifact is missing, on one target.
 * A backup whose artifact is present is never touched: deleting data is retention's job.
 */
export async function forgetOn(target: Target, id: string): Promise<ForgetResult> {
  const listing = await listBackups(target);
  const kept = listing.backups.filter((b) => b.manifest.name === id || b.manifest.uuid === id).map((b) => ({ target: target.name, key: b.manifestKey }));
  const forgotten: Forgotten[] = [];
  for (const p of listing.problems) {
    const d = p.dangling;
    if (!d || (d.name !== id && d.uuid !== id)) continue;
    // Checked again right before the removal: a manifest whose artifact came back is kept.
    if (await target.stat(d.artifact_key)) {
      kept.push({ target: target.name, key: p.key });
      continue;
    }
    await target.remove(p.key);
    forgotten.push({ target: target.name, key: p.key, name: d.name, uuid: d.uuid, artifact_key: d.artifact_key });
  }
  return { forgotten, kept };
}

/**
 * `backer backups forget` and `DELETE /v1/backups/{name}`: forget on every given target. Refuses
 * (FORGET_REFUSED) when nothing was forgotten but a copy with its artifact exists; BACKUP_NOT_FOUND
 * when no target knows the backup.
 */
export async function forgetBackup(targets: readonly Target[], id: string, component: string): Promise<ForgetResult> {
  const result: ForgetResult = { forgotten: [], kept: [] };
  for (const target of targets) {
    const one = await forgetOn(target, id);
    result.forgotten.push(...one.forgotten);
    result.kept.push(...one.kept);
  }
  if (result.forgotten.length === 0 && result.kept.length > 0) {
    const where = result.kept.map((i) => `${i.target}: ${i.key}`).join(', ');
    throw new BackerError('FORGET_REFUSED', `refusing to forget ${id}: its artifact is present (${where}); forget removes only manifests whose artifact is missing`, {
      component,
      details: { backup: id },
    });
  }
  if (result.forgotten.length === 0) throw new BackerError('BACKUP_NOT_FOUND', `no backup named or with uuid ${id}`, { component, details: { backup: id } });
  return result;
}
