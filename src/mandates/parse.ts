import { concealForConfig } from '../config/expanded.js';
import { resolveMandateRefs } from '../config/mandate-refs.js';
import { closest, whereIn, type ConfigProblem, type InvalidRefs } from '../config/problems.js';
import type { BackerConfig } from '../config/schema.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { SourceDefinition } from '../sources/types.js';
import { combineRetention, RETENTION_KEYS, unknownRetentionKey } from '../retention/keys.js';
import { ALERT_KEYS } from './alert-keys.js';
import { hostOnlyProblems } from './host-only.js';
import { DEFAULT_INTERVAL, DEFAULT_PRIORITY, DEFAULT_RETENTION, readMandateKeys, type KeysContext } from './keys.js';
import { settingsSources } from './provenance.js';
import { parseSourceOptions } from './source-options.js';
import { checkRefs } from './refs.js';
import type { MandateSpec } from './types.js';

export { checkCron } from '../config/cron.js';

/**
 * A mandate is read from a container's `backer.*` labels or from a static mandate of the config
 * (flattened to the same `key → string` shape): one parser for both, so that both read alike.
 * Every problem of a mandate is reported at once, each at the label or config path it is about.
 */

export { DEFAULT_INTERVAL, DEFAULT_RETENTION } from './keys.js';
export const LABEL_PREFIX = 'backer.';

/** The mandate's own keys; `<type>.*` keys go to the source, `container` only in static mandates. */
const CORE_KEYS = ['type', 'enabled', 'interval', 'target', 'middleware', 'retention', 'priority', 'name_pattern', 'verify', 'verify_level', ...ALERT_KEYS] as const;

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
function readEnabled(input: ParseMandateInput, add: Add): boolean | undefined {
  return readMandateKeys(input.raw, ['enabled'], keysContext(input), add)?.enabled;
}

function keysContext(input: ParseMandateInput): KeysContext {
  return { container: input.container, name: input.name, verifyDefaults: input.config.verify };
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

/** Step 3: the schedule, targets, middleware, retention, name pattern and scheduled verification. */
function readCore(input: ParseMandateInput, add: Add): Omit<MandateSpec, 'name' | 'origin' | 'source' | 'describe'> {
  const context = keysContext(input);
  const schedule = readMandateKeys(input.raw, ['interval'], context, add);
  const { targets, middleware } = resolveMandateRefs(input.raw, input.config, add, input.invalidRefs);
  const rest = readMandateKeys(input.raw, ['retention', 'priority', 'name_pattern', 'verify', 'verify_level', ...RETENTION_KEYS, ...ALERT_KEYS], context, add);
  const legacy = input.raw.retention === undefined ? undefined : rest?.retention;
  const retention = combineRetention(rest ?? {}, legacy, rest?.retention ?? DEFAULT_RETENTION, add);
  // With a problem the mandate is not run: the values below are then never used.
  return {
    interval: schedule?.interval ?? DEFAULT_INTERVAL,
    targets,
    middleware,
    ...retention,
    priority: rest?.priority ?? DEFAULT_PRIORITY,
    name_pattern: rest?.name_pattern ?? '',
    verify: { interval: rest?.verify ?? null, level: rest?.verify_level ?? input.config.verify.level },
    alerts: { max_age_ms: rest?.max_age ?? null, min_size_bytes: rest?.min_size ?? null, size_change_percent: rest?.size_change_alert ?? null },
  };
}

/** Step 4: every other key must be a `<type>.*` option of this mandate's source; those, without the prefix. */
function sourceKeys(input: ParseMandateInput, definition: Definition | undefined, add: Add): Record<string, string> {
  const { raw, origin, sources } = input;
  const shown = shownAs(origin);
  const sourceRaw: Record<string, string> = {};
  const allowed: string[] = origin === 'config' ? [...CORE_KEYS, 'container'] : [...CORE_KEYS];
  for (const [key, value] of Object.entries(raw)) {
    if (allowed.includes(key)) continue;
    const retentionProblem = unknownRetentionKey(key, shown, origin === 'labels' ? 'label' : 'key');
    if ((RETENTION_KEYS as readonly string[]).includes(key)) continue;
    if (retentionProblem !== null) {
      add(key, retentionProblem);
      continue;
    }
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
  if (readEnabled(input, add) === false) return { problems: [], disabled: true };
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
    mandate: { name: input.name, origin: input.origin, source: { type: definition.type, container, options }, ...core, describe, settings_sources: settingsSources(input) },
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
