import type { Manifest } from '../manifests/schema.js';
import { applyGfs, type RetentionRules } from './gfs.js';
import { byCodeUnit } from '../util/compare.js';

export interface RetentionPolicy {
  /** Keep the newest N complete backups (the old `retention=N`); used when `rules` is absent. */
  keep: number;
  /** GFS rules with restic's semantics (src/retention/gfs.ts); replace `keep` when set. */
  rules?: RetentionRules;
  /** Safety backups (tagged `safety`, taken before a restore) kept besides: the newest N. Default 3. */
  safetyKeep?: number;
  /** …and every safety backup younger than this many days. Default 7. */
  safetyDays?: number;
}

export const isSafety = (m: Manifest): boolean => m.tags?.includes('safety') === true;

/** One backup in a retention plan: kept with every rule that keeps it, or removed with the reason. */
export interface PlannedBackup<T> {
  backup: T;
  keep: boolean;
  reasons: string[];
}

export const NO_RULE = 'no rule keeps it';

/** The rules a policy applies to regular backups: its GFS rules, or `keep_last` for the old `keep`. */
export const rulesOf = (policy: RetentionPolicy): RetentionRules => policy.rules ?? { keep_last: Math.max(policy.keep, 1) };

/** Regular backups through the GFS rules, newest first; the newest is never removed. */
function planRegular<T extends { manifest: Manifest }>(backups: readonly T[], rules: RetentionRules): PlannedBackup<T>[] {
  const items = backups.map((backup) => ({ backup, time: Date.parse(backup.manifest.created_at), id: backup.manifest.name }));
  return applyGfs(items, rules).map((d, index) => {
    const reasons = index === 0 && !d.keep ? ['newest backup'] : d.reasons;
    return { backup: d.item.backup, keep: reasons.length > 0, reasons: reasons.length > 0 ? reasons : [NO_RULE] };
  });
}

/** Safety backups: the newest `safetyKeep` and every one younger than `safetyDays` stay. */
function planSafety<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy, now: Date): PlannedBackup<T>[] {
  const keepN = policy.safetyKeep ?? 3;
  const days = policy.safetyDays ?? 7;
  const minAge = now.getTime() - days * 86_400_000;
  return newestByCreated(backups).map((backup, index) => {
    const reasons: string[] = [];
    if (index < keepN) reasons.push(`safety: newest ${keepN}`);
    if (Date.parse(backup.manifest.created_at) >= minAge) reasons.push(`safety: younger than ${days} days`);
    return { backup, keep: reasons.length > 0, reasons: reasons.length > 0 ? reasons : [`safety backup beyond the newest ${keepN} and older than ${days} days`] };
  });
}

/**
 * Pure: the retention plan of one mandate's backups on one target, regular backups (newest
 * first) then safety backups. Safety backups never count against the regular rules.
 */
export function planRetention<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy, now = new Date()): PlannedBackup<T>[] {
  const regular = backups.filter((b) => !isSafety(b.manifest));
  const safety = backups.filter((b) => isSafety(b.manifest));
  return [...planRegular(regular, rulesOf(policy)), ...planSafety(safety, policy, now)];
}

/** Pure: which of one mandate's backups on one target to delete (see planRetention). */
export function selectExpiredAll<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy, now = new Date()): T[] {
  return planRetention(backups, policy, now)
    .filter((p) => !p.keep)
    .map((p) => p.backup);
}

function newestByCreated<T extends { manifest: Manifest }>(backups: readonly T[]): T[] {
  // As instants, not strings: the schema accepts any fractional precision ("…:00Z" is before "…:00.500Z").
  return [...backups].sort(
    (a, b) =>
      Date.parse(b.manifest.created_at) - Date.parse(a.manifest.created_at) || byCodeUnit(b.manifest.name, a.manifest.name),
  );
}

/** Pure: which of one mandate's backups on one target to delete (oldest beyond `keep`). */
export function selectExpired<T extends { manifest: Manifest }>(backups: readonly T[], policy: RetentionPolicy): T[] {
  return newestByCreated(backups).slice(Math.max(policy.keep, 1));
}
