import { Cron } from 'croner';
import { isBackerError } from '../errors.js';
import { notABoolean, parseBoolean } from './boolean.js';
import type { SourceRegistry } from '../sources/registry.js';
import type { OptionOrigin } from '../sources/types.js';
import { concealForConfig } from './expanded.js';
import { hostOnlyProblems } from './host-only.js';
import type { ConfigProblem, MandateSpec } from './mandate-types.js';
import { checkNameLength, checkNamePattern, DEFAULT_NAME_PATTERN, DEFAULT_NAME_PATTERN_NO_CONTAINER } from './name-pattern.js';
import { closest, whereIn, type InvalidRefs } from './problems.js';
import { checkRefs } from './refs.js';
import type { BackerConfig } from './schema.js';

/** Default `interval`: every day at midnight. */
export const DEFAULT_INTERVAL = '0 0 * * *';
/** Default `retention`: the newest 10 complete backups per target. */
export const DEFAULT_RETENTION = 10;
export const LABEL_PREFIX = 'backer.';

/** The mandate's own keys; `<type>.*` keys go to the source, `container` only in static mandates. */
const CORE_KEYS = ['type', 'enabled', 'interval', 'target', 'middleware', 'retention', 'name_pattern'] as const;

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

/** Picks the `backer.*` labels of a container and strips the prefix. */
export function labelsToRaw(labels: Record<string, string>): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(LABEL_PREFIX) && key.length > LABEL_PREFIX.length) raw[key.slice(LABEL_PREFIX.length)] = value;
  }
  return raw;
}

/** `s3, local` → `['s3', 'local']`; empty items are dropped. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Why a cron expression is unusable, or null when it is a valid 5- or 6-field expression. */
export function checkCron(expression: string): string | null {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return `expected a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), received ${JSON.stringify(expression)}`;
  }
  let job: Cron | undefined;
  try {
    // paused and without a function: only the pattern is parsed, nothing is scheduled.
    job = new Cron(expression, { paused: true, mode: '5-or-6-parts' });
    if (job.nextRun() === null) return `${JSON.stringify(expression)} never fires`;
    return null;
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^CronPattern:\s*/, '') : String(err);
    return `invalid cron expression ${JSON.stringify(expression)}: ${reason}`;
  } finally {
    job?.stop();
  }
}

function defaultTarget(config: Pick<BackerConfig, 'targets'>): string | undefined {
  const marked = config.targets.find((t) => t.default);
  if (marked !== undefined) return marked.name;
  return config.targets.length === 1 ? config.targets[0]?.name : undefined;
}

export function parseMandate(input: ParseMandateInput): ParseMandateResult {
  const { raw, origin, config, sources, describe } = input;
  const problems: ConfigProblem[] = [];
  const add = (key: string, message: string): void => {
    problems.push({ where: describe(key), message });
  };
  // How a key is spelled where the user wrote it, for "known keys" lists and hints.
  const shown = (key: string): string => (origin === 'labels' ? `${LABEL_PREFIX}${key}` : key);

  if (raw.enabled !== undefined) {
    const enabled = parseBoolean(raw.enabled);
    if (enabled === undefined) add('enabled', notABoolean(raw.enabled));
    // A mandate is switched off mostly while it is being fixed: don't report what is broken.
    if (enabled === false) return { problems: [], disabled: true };
  }

  const known = [...sources.keys()].sort();
  const type = raw.type?.trim();
  const definition = type === undefined ? undefined : sources.get(type);
  if (type === undefined || type === '') {
    add('type', `required: the source type, one of ${known.join(', ')}`);
  } else if (definition === undefined) {
    const guess = closest(type, known);
    add('type', `unknown source type ${JSON.stringify(type)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; known: ${known.join(', ')}`);
  }

  const container = input.container;
  for (const p of hostOnlyProblems(definition, origin, raw, input.labelKeys)) add(p.key, p.message);
  if (definition?.needsContainer === true && container === null) {
    add('container', `source type ${definition.type} needs a container: set ${shown('container')}`);
  }

  const interval = raw.interval?.trim() ?? DEFAULT_INTERVAL;
  const cronProblem = checkCron(interval);
  if (cronProblem !== null) add('interval', cronProblem);

  const { targets, middleware } = resolveMandateRefs(raw, config, add, input.invalidRefs);

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

  // Everything else must be a `<type>.*` option of this mandate's source.
  const sourceRaw: Record<string, string> = {};
  const allowed: string[] = origin === 'config' ? [...CORE_KEYS, 'container'] : [...CORE_KEYS];
  for (const [key, value] of Object.entries(raw)) {
    if (allowed.includes(key)) continue;
    const dot = key.indexOf('.');
    const prefix = dot > 0 ? key.slice(0, dot) : undefined;
    if (definition !== undefined && prefix === definition.type) {
      sourceRaw[key.slice(dot + 1)] = value;
    } else if (prefix !== undefined && sources.has(prefix)) {
      add(key, `${shown(key)} is an option of source type ${prefix}, but ${shown('type')} is ${JSON.stringify(type ?? '')}`);
    } else if (prefix !== undefined && definition === undefined) {
      // Without a valid type nobody can tell whether `<x>.*` keys are right.
      continue;
    } else {
      const options = definition === undefined ? [] : [`${definition.type}.*`];
      const names = [...allowed, ...options].map(shown);
      const guess = closest(shown(key), names.filter((n) => !n.endsWith('*')));
      const what = origin === 'labels' ? 'label' : 'key';
      add(key, `unknown ${what} ${shown(key)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; known: ${names.join(', ')}`);
    }
  }

  let options: unknown;
  if (definition !== undefined) {
    const sourceOrigin: OptionOrigin = { container, describe: (key) => describe(`${definition.type}.${key}`) };
    try {
      options = definition.parse(sourceRaw, sourceOrigin);
    } catch (err) {
      // Anything but a validation error is a bug in the source and must not pass as bad input.
      if (!isBackerError(err, 'LABEL_INVALID')) throw err;
      const at = err.details.where;
      const key = err.details.key;
      const where = typeof at === 'string' ? at : typeof key === 'string' ? sourceOrigin.describe(key) : describe(definition.type);
      // Sources tend to start their message with the location, which `where` already gives.
      const message = err.message.startsWith(`${where}: `) ? err.message.slice(where.length + 2) : err.message;
      problems.push({ where, message });
    }
  }
  problems.push(...checkRefs(raw, input.containerEnv, { container, describe }));
  // A static mandate's values may come from `${VAR}` (secrets): problems name the variable instead.
  problems.splice(0, problems.length, ...concealForConfig(problems, config));

  if (problems.length > 0 || definition === undefined) return { problems };
  return {
    problems,
    mandate: {
      name: input.name,
      origin,
      source: { type: definition.type, container, options },
      interval,
      targets,
      middleware,
      retention,
      name_pattern: namePattern,
      describe: input.describe,
    },
  };
}

/**
 * The `target` and `middleware` keys of a mandate: each name must exist in the config; without
 * `target` the default target is used. Shared with loadConfig, which checks static mandates
 * before any source is known.
 */
export function resolveMandateRefs(
  raw: Record<string, string>,
  config: Pick<BackerConfig, 'targets' | 'middleware'>,
  add: (key: 'target' | 'middleware', message: string) => void,
  invalid?: InvalidRefs,
): { targets: string[]; middleware: string[] } {
  const targetNames = config.targets.map((t) => t.name);
  let targets: string[] = [];
  if (raw.target === undefined) {
    const fallback = defaultTarget(config);
    if (fallback !== undefined) targets = [fallback];
    // The default may be a target with problems of its own: those are reported, not this.
    else if (invalid?.defaultTarget === true) targets = [];
    else if (targetNames.length === 0) add('target', 'required: no targets are configured (add one under targets: in the config)');
    else add('target', `required: no target is marked default: true; name one of ${targetNames.join(', ')}`);
  } else {
    targets = splitList(raw.target);
    if (targets.length === 0) add('target', `expected a comma-separated list of target names (${targetNames.join(', ')}), received ${JSON.stringify(raw.target)}`);
    checkNames(targets, targetNames, 'target', (message) => add('target', message), invalid?.targets);
  }
  const middlewareNames = config.middleware.map((m) => m.name);
  const middleware = splitList(raw.middleware ?? '');
  checkNames(middleware, middlewareNames, 'middleware', (message) => add('middleware', message), invalid?.middleware);
  return { targets, middleware };
}

function checkNames(
  names: string[],
  configured: string[],
  what: 'target' | 'middleware',
  report: (message: string) => void,
  invalid: InvalidRefs['targets'] = [],
): void {
  const known = [...new Set([...configured, ...(invalid === 'any' ? [] : invalid)])];
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) report(`${what} ${name} is listed twice`);
    seen.add(name);
    // A name the config defines with problems of its own: its own problem is reported instead.
    if (known.includes(name) || invalid === 'any') continue;
    const guess = closest(name, known);
    const plural = what === 'target' ? 'targets' : 'middleware';
    const list = known.length === 0 ? `no ${plural} configured` : `known ${plural}: ${known.join(', ')}`;
    report(`unknown ${what} ${JSON.stringify(name)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; ${list}`);
  }
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
