import type { Logger } from '../logging/logger.js';
import { MANIFEST_SUFFIX } from '../manifests/schema.js';
import type { StoredBackup } from '../manifests/store.js';
import { VERIFY_INFIX } from '../manifests/verification.js';
import type { Target } from '../targets/types.js';

/**
 * Artifacts of a mandate that no manifest names (valid or not) and that were stored before its
 * newest complete backup began: what a retention pass killed between a manifest and its artifact
 * left behind, or an interrupted backup whose job never ran again. They are no backup (a backup
 * is its manifest), so they go. An artifact stored after that time may belong to a backup still
 * being committed by another process (`backup --once` beside the daemon): it stays. Ambiguous
 * keys (one backup's name a prefix of another's) are kept.
 */
export async function removeStaleArtifacts(target: Target, mandate: string, backups: readonly StoredBackup[], logger: Logger): Promise<string[]> {
  const newest = backups[0];
  if (newest === undefined) return [];
  const since = Date.parse(newest.manifest.created_at);
  const objects = await target.list(`${mandate}/`);
  // `<mandate>/<name>.` of every manifest on the target, readable or not: their artifacts stay.
  const named = objects.filter((o) => o.key.endsWith(MANIFEST_SUFFIX)).map((o) => `${o.key.slice(0, -MANIFEST_SUFFIX.length)}.`);
  const removed: string[] = [];
  for (const object of objects) {
    if (object.key.endsWith(MANIFEST_SUFFIX) || object.key.includes(VERIFY_INFIX)) continue;
    if (named.some((prefix) => object.key.startsWith(prefix)) || object.modified.getTime() >= since) continue;
    await target.remove(object.key);
    removed.push(object.key);
    logger.warn({ target: target.name, mandate, key: object.key, size: object.size }, 'removed an artifact without manifest left by an interrupted run');
  }
  return removed;
}
