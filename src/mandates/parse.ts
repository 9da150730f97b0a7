import { notABoolean, parseBoolean } from '../config/boolean.js';
import { checkCron } from '../config/cron.js';
import { concealForConfig } from '../config/expanded.js';
import { resolveMandateRefs } from '../config/mandate-refs.js';
import { checkNameLength, checkNamePattern, DEFAULT_NAME_PATTERN, DEFAULT_NAME_PATTERN_NO_CONTAINER } from '../config/name-pattern.js';
import { closest, whereIn, type ConfigProblem, type InvalidRefs } from '../config/problems.js';
import type { BackerConfig } from '../config/schema.js';
import { VERIFY_LEVELS, type VerifyLevel } from '../manifests/verification.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { SourceDefinition } from '../sources/types.js';
import { hostOnlyProblems } from './host-only.js';
import { parseSourceOptions } from './source-options.js';
import { checkRefs } from './refs.js';
import type { MandateSpec } from './types.js';

export { checkCron } from '../config/cron.js';

/**
 * A mandate is read from a container's `backer.*` labels or from a static mandate of the config
 * (flattened to the same `key → string` shape): one parser for both, so that both read alike.
 * Every problem of a mandate is reported at once, each at the label or config path it is about.
 */

/** Default `interval`: every day at midnight. */
export const DEFAULT_INTERVAL = '0 0 * * *';
/** Default `retention`: the newest 10 complete backups per target. */
export const DEFAULT_RETENTION = 10;
export const LABEL_PREFIX = 'backer.';

/** The mandate's own keys; `<type>.*` keys go to the source, `container` only in static mandates. */
const CORE_KEYS = ['type', 'enabled', 'interval', 'target', 'middleware', 'retention', 'name_pattern', 'verify', 'verify_level'] as const;

export interface ParseMandateInput {
  /** The container name for labels, the YAML key for static mandates. */
  name: string;
  /** Flattened keys without the `backer.` prefix, e.g. `mysql.user`. */
  raw: Record<string, string>;
  origin: 'labels' | 'config';
  container: string | null;
  /** When known, `Env:` references are checked against it. Default: not checked. */
  containerEnv?: Record<string, string>;
  /** Static mandate over a container: the keys of `raw` that came from its labels (host-only sources refuse them). */
  labelKeys?: ReadonlySet<string>;
  /** Location of one key: `container shop-db label backer.${key}` or `backer.yml: mandates.shop.${key}`. */
  describe: (key: string) => string;
  config: BackerConfig;
  sources: SourceRegistry;
  /** Targets and middleware the config defines but that have problems of their own (config check). */
  invalidRefs?: InvalidRefs;
}

export interface ParseMandateResult {
  /** Present when there are no problems and the mandate is enabled. */
  mandate?: MandateSpec;
  problems: ConfigProblem[];
  /** True when `enabled` is false: the rest is then neither validated nor returned. */
  disabled?: boolean;
}

type Add = (key: string, message: string) => void;
type Definition = SourceDefinition<unknown>;

/** Picks the `backer.*` labels of a container and strips the prefix. */
export function labelsToRaw(labels: Record<string, string>): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(LABEL_PREFIX) && key.length > LABEL_PREFIX.length) raw[key.slice(LABEL_PREFIX.length)] = value;
  }
  return raw;
}

/** How a key is spelled where the user wrote it, for "known keys" lists and hints. */
function shownAs(origin: ParseMandateInput['origin']): (key: string) => string {
  return (key) => (origin === 'labels' ? `${LABEL_PREFIX}${key}` : key);
}

/** Step 1: `enabled`. False: the mandate is switched off, mostly while it is being fixed. */
function readEnabled(raw: Record<string, string>, add: Add): boolean | undefined {
  if (raw.enabled === undefined) return undefined;
  const enabled = parseBoolean(raw.enabled);
  if (enabled === undefined) add('enabled', notABoolean(raw.enabled));
  return enabled;
}

/** Step 2: `type`, the source definition, and whether it may be used here (host-only, container). */
function readSource(input: ParseMandateInput, add: Add): Definition | undefined {
  const { raw, sources } = input;
  const known = [...sources.keys()].sort();
  const type = raw.type?.trim();
  const definition = type === undefined ? undefined : sources.get(type);
  if (type === undefined || type === '') {
    add('type', `required: the source type, one of ${known.join(', ')}`);
  } else if (definition === undefined) {
    const guess = closest(type, known);
    add('type', `unknown source type ${JSON.stringify(type)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; known: ${known.join(', ')}`);
  }
  for (const p of hostOnlyProblems(definition, input.origin, raw, input.labelKeys)) add(p.key, p.message);
  if (definition?.needsContainer === true && input.container === null) {
    add('container', `source type ${definition.type} needs a container: set ${shownAs(input.origin)('container')}`);
  }
  return definition;
}

/** Step 3: the schedule, targets, middleware, retention and name pattern. */
function readCore(input: ParseMandateInput, add: Add): Omit<MandateSpec, 'name' | 'origin' | 'source' | 'describe'> {
  const { raw, container } = input;
  const interval = raw.interval?.trim() ?? DEFAULT_INTERVAL;
  const cronProblem = checkCron(interval);
  if (cronProblem !== null) add('interval', cronProblem);

  const { targets, middleware } = resolveMandateRefs(raw, input.config, add, input.invalidRefs);

  let retention = DEFAULT_RETENTION;
  if (raw.retention !== undefined) {
    const text = raw.retention.trim();
    retention = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(retention) || retention < 1) {
      add('retention', `expected a whole number of backups to keep, at least 1, received ${JSON.stringify(raw.retention)}`);
    }
  }

  const namePattern = raw.name_pattern?.trim() ?? (container === null ? DEFAULT_NAME_PATTERN_NO_CONTAINER : DEFAULT_NAME_PATTERN);
  const patternProblem = checkNamePattern(namePattern, container !== null) ?? checkNameLength(namePattern, { container, mandate: input.name });
  if (patternProblem !== null) add('name_pattern', patternProblem);
  return { interval, targets, middleware, retention, name_pattern: namePattern, verify: readVerify(raw, input.config.verify, add) };
}

function isVerifyLevel(value: string): value is VerifyLevel {
  return (VERIFY_LEVELS as readonly string[]).includes(value);
}

/**
 * Step 3b: the scheduled verification. `verify` is a cron (or `off`: none, even when the config
 * sets a default); `verify_level` one of VERIFY_LEVELS. Unset keys take the config's `verify`.
 */
function readVerify(raw: Record<string, string>, defaults: BackerConfig['verify'], add: Add): MandateSpec['verify'] {
  let interval = defaults.interval ?? null;
  if (raw.verify !== undefined) {
    const text = raw.verify.trim();
    const problem = parseBoolean(text) === false ? null : checkCron(text);
    if (problem !== null) add('verify', `${problem}; or off for no scheduled verification`);
    interval = parseBoolean(text) === false ? null : text;
  }
  let level = defaults.level;
  if (raw.verify_level !== undefined) {
    const text = raw.verify_level.trim();
    if (isVerifyLevel(text)) level = text;
    else add('verify_level', `expected one of ${VERIFY_LEVELS.join(', ')}, received ${JSON.stringify(raw.verify_level)}`);
  }
  return { interval, level };
}

/** Step 4: every other key must be a `<type>.*` option of this mandate's source; those, without the prefix. */
function sourceKeys(input: ParseMandateInput, definition: Definition | undefined, add: Add): Record<string, string> {
  const { raw, origin, sources } = input;
  const shown = shownAs(origin);
  const sourceRaw: Record<string, string> = {};
  const allowed: string[] = origin === 'config' ? [...CORE_KEYS, 'container'] : [...CORE_KEYS];
  for (const [key, value] of Object.entries(raw)) {
    if (allowed.includes(key)) continue;
    const dot = key.indexOf('.');
    const prefix = dot > 0 ? key.slice(0, dot) : undefined;
    if (definition !== undefined && prefix === definition.type) {
      sourceRaw[key.slice(dot + 1)] = value;
    } else if (prefix !== undefined && sources.has(prefix)) {
      add(key, `${shown(key)} is an option of source type ${prefix}, but ${shown('type')} is ${JSON.stringify(raw.type?.trim() ?? '')}`);
    } else if (prefix === undefined || definition !== undefined) {
      // Without a valid type nobody can tell whether `<x>.*` keys are right.
      const names = [...allowed, ...(definition === undefined ? [] : [`${definition.type}.*`])].map(shown);
      const guess = closest(shown(key), names.filter((n) => !n.endsWith('*')));
      const what = origin === 'labels' ? 'label' : 'key';
      add(key, `unknown ${what} ${shown(key)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; known: ${names.join(', ')}`);
    }
  }
  return sourceRaw;
}

export function parseMandate(input: ParseMandateInput): ParseMandateResult {
  const { raw, config, describe, container } = input;
  const found: ConfigProblem[] = [];
  const add: Add = (key, message) => {
    found.push({ where: describe(key), message });
  };
  if (readEnabled(raw, add) === false) return { problems: [], disabled: true };
  const definition = readSource(input, add);
  const core = readCore(input, add);
  const sourceRaw = sourceKeys(input, definition, add);
  let options: unknown;
  if (definition !== undefined) {
    const parsed = parseSourceOptions(definition, sourceRaw, { container, describe: (key) => describe(`${definition.type}.${key}`) }, describe(definition.type));
    options = parsed.options;
    found.push(...parsed.problems);
  }
  found.push(...checkRefs(raw, input.containerEnv, { container, describe }));
  // A static mandate's values may come from `${VAR}` (secrets): problems name the variable instead.
  const problems = concealForConfig(found, config);
  if (problems.length > 0 || definition === undefined) return { problems };
  return {
    problems,
    mandate: { name: input.name, origin: input.origin, source: { type: definition.type, container, options }, ...core, describe },
  };
}

/**
 * Parses the static mandates of a loaded config with the same parser as labels. Problems about
 * target and middleware names are also reported by loadConfig, with the same `where`.
 */
export function parseStaticMandates(
  config: BackerConfig,
  sources: SourceRegistry,
  fileLabel: string,
): { mandates: MandateSpec[]; problems: ConfigProblem[] } {
  const mandates: MandateSpec[] = [];
  const problems: ConfigProblem[] = [];
  for (const [name, raw] of Object.entries(config.mandates)) {
    const container = raw.container?.trim();
    const result = parseMandate({
      name,
      raw,
      origin: 'config',
      container: container === undefined || container === '' ? null : container,
      describe: (key) => whereIn(fileLabel, ['mandates', name, ...key.split('.')]),
      config,
      sources,
    });
    problems.push(...result.problems);
    if (result.mandate !== undefined) mandates.push(result.mandate);
  }
  return { mandates, problems };
}
