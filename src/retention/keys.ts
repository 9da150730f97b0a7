import { durationMs, durationProblem } from '../config/duration.js';
import { closest } from '../config/problems.js';
import { optionalString, optionIssue } from '../sources/options-schema.js';
import { COUNT_RULES, isEmptyRules, RULE_KEYS, type RetentionRules, type RuleKey } from './gfs.js';

/**
 * The GFS retention keys of a mandate: labels `backer.retention.keep_daily=7`, or in a static
 * mandate `retention: { keep_daily: 7 }` (flattened to the same `retention.keep_daily`). The old
 * `retention: N` stays: it is `keep_last: N`.
 */
export const RETENTION_KEYS = RULE_KEYS.map((k) => `retention.${k}` as const);
export type RetentionKey = (typeof RETENTION_KEYS)[number];

/**
 * keep_within's problem: the shared duration parser's message, plus a hint when the text looks
 * like months or years (`6mo`, `1y`), which Backer's durations do not have.
 */
export function withinProblem(raw: string): string {
  const hint = /\d\s*(y|mo)/i.test(raw) ? '; months and years are not units: write days (180d, 365d)' : '';
  return `${durationProblem(raw)}${hint}`;
}

function countSchema(key: RetentionKey) {
  return optionalString().transform((raw, ctx): number | undefined => {
    if (raw === undefined) return undefined;
    const text = raw.trim();
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n)) optionIssue(ctx, key, `expected a whole number of buckets to keep (0 or more), received ${JSON.stringify(raw)}`);
    return n;
  });
}

function withinSchema(key: RetentionKey) {
  return optionalString().transform((raw, ctx): string | undefined => {
    if (raw === undefined) return undefined;
    // The one duration parser (src/config/duration.ts): `6m` is six minutes here too.
    if (durationMs(raw) === undefined) optionIssue(ctx, key, withinProblem(raw));
    return raw.trim();
  });
}

/** The zod entries of the retention keys, spread into mandateKeysSchema (src/mandates/keys.ts). */
export function retentionKeySchemas() {
  return {
    'retention.keep_last': countSchema('retention.keep_last'),
    'retention.keep_hourly': countSchema('retention.keep_hourly'),
    'retention.keep_daily': countSchema('retention.keep_daily'),
    'retention.keep_weekly': countSchema('retention.keep_weekly'),
    'retention.keep_monthly': countSchema('retention.keep_monthly'),
    'retention.keep_yearly': countSchema('retention.keep_yearly'),
    'retention.keep_within': withinSchema('retention.keep_within'),
  };
}

export type RetentionValues = Partial<Record<RetentionKey, number | string | undefined>>;

/**
 * The mandate's retention from its read keys. `legacy`: the `retention` key's value when it was
 * written. Without any `retention.*` key: keep the newest `legacy ?? fallback` (no rules).
 * Problems (both `retention` and `retention.keep_last`; an empty policy) go to `add`.
 */
export function combineRetention(
  values: RetentionValues,
  legacy: number | undefined,
  fallback: number,
  add: (key: string, message: string) => void,
): { retention: number; retention_rules?: RetentionRules } {
  const given = RETENTION_KEYS.filter((k) => values[k] !== undefined);
  if (given.length === 0) return { retention: legacy ?? fallback };
  const rules: RetentionRules = {};
  for (const rule of COUNT_RULES) {
    const n = values[`retention.${rule}`];
    if (typeof n === 'number' && n > 0) rules[rule] = n;
  }
  const within = values['retention.keep_within'];
  if (typeof within === 'string') rules.keep_within = within;
  if (legacy !== undefined && values['retention.keep_last'] !== undefined) {
    add('retention', 'retention (the newest N) and retention.keep_last say the same thing: set only one of them');
  } else if (legacy !== undefined) {
    rules.keep_last = legacy;
  }
  if (isEmptyRules(rules)) {
    add(given[0] ?? 'retention', `empty retention policy: ${given.join(', ')} ${given.length === 1 ? 'is' : 'are all'} 0, so nothing would be kept; set at least one retention.keep_* above 0 (e.g. retention.keep_daily: 7)`);
  }
  return { retention: rules.keep_last ?? 0, retention_rules: rules };
}

/** A `retention.*` key that is not one of ours: the problem's message, or null when it is ours. */
export function unknownRetentionKey(key: string, shown: (key: string) => string, what: string): string | null {
  if (!key.startsWith('retention.') || (RETENTION_KEYS as readonly string[]).includes(key)) return null;
  const names = RETENTION_KEYS.map(shown);
  const guess = closest(shown(key), names);
  return `unknown ${what} ${shown(key)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; known: ${names.join(', ')}`;
}

export type { RuleKey };
