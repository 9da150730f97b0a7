import { durationMs, durationProblem } from '../config/duration.js';
import { byCodeUnit } from '../util/compare.js';

/**
 * GFS retention with restic's semantics (`restic forget --keep-*`), as a pure function.
 *
 * - Backups are walked newest first. Each count rule (`keep_last`, `keep_hourly`, `keep_daily`,
 *   `keep_weekly`, `keep_monthly`, `keep_yearly`) keeps the newest backup of each of its N newest
 *   calendar buckets (UTC hours, days, ISO weeks, months, years; `keep_last`: every backup is its
 *   own bucket).
 * - `keep_within` keeps every backup younger than the duration, measured back from the NEWEST
 *   backup (not from now): an idle mandate never loses its history by waiting. Its duration is
 *   Backer's (src/config/duration.ts), a fixed span: restic's `--keep-within` with days and hours
 *   (Go's AddDate in UTC) gives the same cutoff; restic's months and years are not offered.
 * - The rules are ORed: a backup stays when any rule keeps it; every rule that keeps it is listed.
 * - When a count rule still has buckets left at the oldest backup, the oldest is kept too
 *   (restic ≥ 0.16): a young mandate with `keep_monthly: 12` keeps its first backup instead of
 *   nothing older than this month. restic 0.14 lacks that step; `keepOldest: false` turns it off
 *   (the oracle test compares both against restic's own output and counters).
 */

export interface RetentionRules {
  keep_last?: number;
  keep_hourly?: number;
  keep_daily?: number;
  keep_weekly?: number;
  keep_monthly?: number;
  keep_yearly?: number;
  /**
   * A duration as everywhere in Backer (`30d`, `26h`, `2w`, `1d12h`; `m` is minutes), kept as
   * written: the reasons say `within 30d`.
   */
  keep_within?: string;
}

export const COUNT_RULES = ['keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly'] as const;
export type CountRule = (typeof COUNT_RULES)[number];
export const RULE_KEYS = [...COUNT_RULES, 'keep_within'] as const;
export type RuleKey = (typeof RULE_KEYS)[number];

export interface GfsItem {
  /** Creation instant, ms since the epoch. */
  time: number;
  /** Tie-break for equal times (newer = greater), e.g. the backup's name. */
  id: string;
}

export interface GfsDecision<T extends GfsItem> {
  item: T;
  keep: boolean;
  /** Every rule that keeps it (`daily 2024-05-03`, `last 2`, `within 30d`); empty when removed. */
  reasons: string[];
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** ISO 8601 week of a UTC instant, as `YYYY-Www` (the week's year may differ from the date's). */
export function isoWeek(time: number): string {
  const date = new Date(time);
  const monday0 = (date.getUTCDay() + 6) % 7;
  const thursday = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - monday0 + 3);
  const year = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return `${year}-W${pad(week)}`;
}

/** The calendar bucket of a count rule, also its label in reasons. */
function bucketOf(rule: CountRule, time: number, index: number): string {
  const d = new Date(time);
  const ymd = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  switch (rule) {
    case 'keep_last':
      return String(index + 1);
    case 'keep_hourly':
      return `${ymd}T${pad(d.getUTCHours())}`;
    case 'keep_daily':
      return ymd;
    case 'keep_weekly':
      return isoWeek(time);
    case 'keep_monthly':
      return ymd.slice(0, 7);
    case 'keep_yearly':
      return String(d.getUTCFullYear());
  }
}

const RULE_WORD: Record<CountRule, string> = {
  keep_last: 'last',
  keep_hourly: 'hourly',
  keep_daily: 'daily',
  keep_weekly: 'weekly',
  keep_monthly: 'monthly',
  keep_yearly: 'yearly',
};

/**
 * keep_within's span in ms, read by the one duration parser of labels and config
 * (src/config/duration.ts: `30d`, `26h`, `2w`, `90m` = 90 minutes; no months or years), or null
 * when the rules have none. Throws when it is no duration.
 */
export function withinMs(rules: RetentionRules): number | null {
  if (rules.keep_within === undefined) return null;
  const ms = durationMs(rules.keep_within);
  if (ms === undefined) throw new Error(`invalid keep_within: ${durationProblem(rules.keep_within)}`);
  return ms;
}

/** True when no rule keeps anything (all counts absent or zero, no keep_within): such a policy is refused. */
export function isEmptyRules(rules: RetentionRules): boolean {
  return COUNT_RULES.every((r) => (rules[r] ?? 0) <= 0) && rules.keep_within === undefined;
}

/** Newest first; equal times by id, greater first. */
export function newestFirst<T extends GfsItem>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => b.time - a.time || byCodeUnit(b.id, a.id));
}

interface Counter {
  rule: CountRule;
  left: number;
  last: string | null;
}

/** One backup through the count rules: the reasons of those that keep it. */
function countReasons(counters: Counter[], time: number, index: number, oldest: boolean): string[] {
  const reasons: string[] = [];
  for (const c of counters) {
    if (c.left <= 0) continue;
    const bucket = bucketOf(c.rule, time, index);
    if (bucket !== c.last) {
      c.last = bucket;
      c.left -= 1;
      reasons.push(`${RULE_WORD[c.rule]} ${bucket}`);
    } else if (oldest) {
      reasons.push(`${RULE_WORD[c.rule]} ${bucket} (oldest, ${c.left} left)`);
    }
  }
  return reasons;
}

/**
 * Decides every item: kept (with the reasons) or removed. Throws on an empty policy or a bad
 * `keep_within` (the mandate parser refuses both earlier, with the key's location).
 */
export function applyGfs<T extends GfsItem>(items: readonly T[], rules: RetentionRules, options: { keepOldest?: boolean } = {}): GfsDecision<T>[] {
  if (isEmptyRules(rules)) throw new Error('empty retention policy: no rule keeps anything');
  const within = withinMs(rules);
  const sorted = newestFirst(items);
  if (sorted.length === 0) return [];
  // Exclusive: a backup exactly `within` older than the newest is not kept by this rule.
  const cutoff = within === null ? null : sorted[0]!.time - within;
  const counters: Counter[] = COUNT_RULES.filter((r) => (rules[r] ?? 0) > 0).map((rule) => ({ rule, left: rules[rule] ?? 0, last: null }));
  const keepOldest = options.keepOldest ?? true;
  return sorted.map((item, index) => {
    const reasons: string[] = [];
    if (cutoff !== null && item.time > cutoff) reasons.push(`within ${rules.keep_within?.trim() ?? ''}`);
    reasons.push(...countReasons(counters, item.time, index, keepOldest && index === sorted.length - 1));
    return { item, keep: reasons.length > 0, reasons };
  });
}
