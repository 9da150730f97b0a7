import type { Manifest } from '../manifests/schema.js';

export interface RetentionPolicy {
  /** Keep the newest N complete backups. */
  keep: number;
}

/** Pure: which of one mandate's backups on one target to delete (oldest beyond `keep`). */
export function selectExpired<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy): T[] {
  const sorted = [...backups].sort(
    (a, b) => b.manifest.created_at.localeCompare(a.manifest.created_at) || b.manifest.name.localeCompare(a.manifest.name),
  );
  return sorted.slice(Math.max(policy.keep, 1));
}
