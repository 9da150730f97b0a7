import type { Manifest } from '../manifests/schema.js';

export interface RetentionPolicy {
  /** Keep the newest N complete backups. */
  keep: number;
  /** Safety backups (tagged `safety`, taken before a restore) kept besides: the newest N. Default 3. */
  safetyKeep?: number;
  /** …and every safety backup younger than this many days. Default 7. */
  safetyDays?: number;
}

export const isSafety = (m: Manifest): boolean => m.tags?.includes('safety') === true;

/**
 * Pure: which of one mandate's backups on one target to delete. Regular backups: the oldest beyond
 * `keep`. Safety backups never count against `keep`: the newest `safetyKeep` and every one younger
 * than `safetyDays` stay.
 */
export function selectExpiredAll<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy, now = new Date()): T[] {
  const regular = backups.filter((b) => !isSafety(b.manifest));
  const safety = backups.filter((b) => isSafety(b.manifest));
  const minAge = now.getTime() - (policy.safetyDays ?? 7) * 86_400_000;
  const oldSafety = selectExpired(safety, { keep: policy.safetyKeep ?? 3 }).filter((b) => Date.parse(b.manifest.created_at) < minAge);
  return [...selectExpired(regular, policy), ...oldSafety];
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
