import { z } from 'zod';
import { notABoolean, parseBoolean } from '../config/boolean.js';
import { checkCron } from '../config/cron.js';
import { checkNameLength, checkNamePattern, DEFAULT_NAME_PATTERN, DEFAULT_NAME_PATTERN_NO_CONTAINER } from '../config/name-pattern.js';
import type { BackerConfig } from '../config/schema.js';
import { VERIFY_LEVELS, type VerifyLevel } from '../manifests/verification.js';
import { optionalString, optionIssue } from '../sources/options-schema.js';
import { retentionKeySchemas } from '../retention/keys.js';
import { alertKeySchemas } from './alert-keys.js';

/** Default `interval`: every day at midnight. */
export const DEFAULT_INTERVAL = '0 0 * * *';
/** Default `retention`: the newest 10 complete backups per target. */
export const DEFAULT_RETENTION = 10;
/** `priority` words and their numbers (0–9, higher runs first). */
export const PRIORITY_WORDS = { low: 2, normal: 5, high: 8 } as const;
/** Default `priority`: normal. */
export const DEFAULT_PRIORITY = PRIORITY_WORDS.normal;

/** `high` → 8, `7` → 7; undefined for anything else than a word of PRIORITY_WORDS or a whole number 0–9. */
export function parsePriority(raw: string): number | undefined {
  const text = raw.trim().toLowerCase();
  if (Object.hasOwn(PRIORITY_WORDS, text)) return PRIORITY_WORDS[text as keyof typeof PRIORITY_WORDS];
  return /^[0-9]$/.test(text) ? Number(text) : undefined;
}

export interface KeysContext {
  /** The mandate's container (null for host sources): the default name pattern depends on it. */
  container: string | null;
  /** The mandate's name, for the name pattern's length check. */
  name: string;
  /** The config's `verify`: what mandates without their own verify keys take. */
  verifyDefaults: BackerConfig['verify'];
}

/**
 * checkCron's verdicts by expression: a 5- or 6-field cron (no year) is valid or not for good,
 * and every parse of the keys checks `interval` (its default too) with a croner instance; 500
 * containers share a few expressions (issue 11). Bounded: labels are read from any container.
 */
const cronVerdicts = new Map<string, string | null>();
const CRON_VERDICTS_MAX = 1000;

function checkCronOnce(expression: string): string | null {
  const known = cronVerdicts.get(expression);
  if (known !== undefined) return known;
  const verdict = checkCron(expression);
  if (cronVerdicts.size >= CRON_VERDICTS_MAX) cronVerdicts.clear();
  cronVerdicts.set(expression, verdict);
  return verdict;
}

function isVerifyLevel(value: string): value is VerifyLevel {
  return (VERIFY_LEVELS as readonly string[]).includes(value);
}

/**
 * The mandate's own keys (labels `backer.<key>`, or a static mandate's keys) as one schema over
 * their raw strings, with their defaults: labels and `backer.yml` read through it alike. `type`,
 * `target`, `middleware` and the source's options are read elsewhere (they need the registry and
 * the config's names).
 */
function buildMandateKeysSchema(contextNow: () => KeysContext) {
  const context = {
    get container() {
      return contextNow().container;
    },
    get name() {
      return contextNow().name;
    },
    get verifyDefaults() {
      return contextNow().verifyDefaults;
    },
  };
  return z.object({
    enabled: optionalString().transform((raw, ctx) => {
      if (raw === undefined) return undefined;
      const enabled = parseBoolean(raw);
      if (enabled === undefined) optionIssue(ctx, 'enabled', notABoolean(raw));
      return enabled;
    }),
    interval: optionalString().transform((raw, ctx) => {
      const interval = raw?.trim() ?? DEFAULT_INTERVAL;
      const problem = checkCronOnce(interval);
      if (problem !== null) optionIssue(ctx, 'interval', problem);
      return interval;
    }),
    retention: optionalString().transform((raw, ctx) => {
      if (raw === undefined) return DEFAULT_RETENTION;
      const text = raw.trim();
      const retention = /^\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(retention) || retention < 1) {
        optionIssue(ctx, 'retention', `expected a whole number of backups to keep, at least 1, received ${JSON.stringify(raw)}`);
      }
      return retention;
    }),
    // Queue order: higher first; manual runs and restores before scheduled runs of the same priority.
    priority: optionalString().transform((raw, ctx) => {
      if (raw === undefined) return DEFAULT_PRIORITY;
      const priority = parsePriority(raw);
      if (priority !== undefined) return priority;
      optionIssue(ctx, 'priority', `expected high, normal, low or a whole number 0-9 (higher runs first), received ${JSON.stringify(raw)}`);
      return DEFAULT_PRIORITY;
    }),
    name_pattern: optionalString().transform((raw, ctx) => {
      const pattern = raw?.trim() ?? (context.container === null ? DEFAULT_NAME_PATTERN_NO_CONTAINER : DEFAULT_NAME_PATTERN);
      const problem = checkNamePattern(pattern, context.container !== null) ?? checkNameLength(pattern, { container: context.container, mandate: context.name });
      if (problem !== null) optionIssue(ctx, 'name_pattern', problem);
      return pattern;
    }),
    // A cron, or `off` (any false word): no scheduled verification, even when the config sets a default.
    verify: optionalString().transform((raw, ctx) => {
      if (raw === undefined) return context.verifyDefaults.interval ?? null;
      const text = raw.trim();
      if (parseBoolean(text) === false) return null;
      const problem = checkCronOnce(text);
      if (problem !== null) optionIssue(ctx, 'verify', `${problem}; or off for no scheduled verification`);
      return text;
    }),
    verify_level: optionalString().transform((raw, ctx): VerifyLevel => {
      if (raw === undefined) return context.verifyDefaults.level;
      const text = raw.trim();
      if (isVerifyLevel(text)) return text;
      optionIssue(ctx, 'verify_level', `expected one of ${VERIFY_LEVELS.join(', ')}, received ${JSON.stringify(raw)}`);
      return context.verifyDefaults.level;
    }),
    // GFS retention (src/retention/keys.ts): `retention.keep_daily` etc.; combined with `retention` in parse.ts.
    ...retentionKeySchemas(),
    // Status alerts (src/mandates/alert-keys.ts): max_age, min_size, size_change_alert.
    ...alertKeySchemas(),
  });
}

/**
 * Built once: building it costs about as much as a parse, and a host with hundreds of labelled
 * containers parses three key sets per container. Its transforms read the context of the parse
 * under way (parses are synchronous, so one at a time).
 */
let activeContext: KeysContext | null = null;
const MANDATE_KEYS_SCHEMA = buildMandateKeysSchema(() => {
  if (activeContext === null) throw new Error('mandate keys parsed without a context');
  return activeContext;
});

/** Parses `picked` (raw key → string) with `context`'s defaults and checks. */
function parseMandateKeys(picked: Record<string, string>, context: KeysContext) {
  activeContext = context;
  try {
    return MANDATE_KEYS_SCHEMA.safeParse(picked);
  } finally {
    activeContext = null;
  }
}

export type MandateKeys = z.output<typeof MANDATE_KEYS_SCHEMA>;
export type MandateKey = keyof MandateKeys;

/**
 * Reads some of the mandate's own keys (the others take their defaults); every problem goes to
 * `add` at its key, in the order of `keys`. Undefined when any of them has a problem (the mandate
 * is then not run).
 */
export function readMandateKeys(
  raw: Readonly<Record<string, string>>,
  keys: readonly MandateKey[],
  context: KeysContext,
  add: (key: string, message: string) => void,
): MandateKeys | undefined {
  const picked: Record<string, string> = {};
  for (const key of keys) if (raw[key] !== undefined) picked[key] = raw[key];
  const result = parseMandateKeys(picked, context);
  if (result.success) return result.data;
  for (const key of keys) {
    for (const issue of result.error.issues) if (issue.path[0] === key) add(key, issue.message);
  }
  return undefined;
}
