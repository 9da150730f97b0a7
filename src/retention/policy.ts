import type { Manifest } from '../manifests/schema.js';

export interface RetentionPolicy {
  /** Keep the newest N complete backups. */
  keep: number;
}

/** Pure: which of one mandate's backups on one target to delete (oldest beyond `keep`). */
export function selectExpired<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy): T[] {
  // As instants, not strings: the schema accepts any fractional precision ("…:00Z" is before "…:00.500Z").
  const sorted = [...backups].sort(
    (a, b) =>
      Date.parse(b.manifest.created_at) - Date.parse(a.manifest.created_at) || b.manifest.name.localeCompare(a.manifest.name),
  );
  return sorted.slice(Math.max(policy.keep, 1));
}
