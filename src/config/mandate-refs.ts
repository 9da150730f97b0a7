import { closest, type InvalidRefs } from './problems.js';
import type { BackerConfig } from './schema.js';

/**
 * The names a mandate (labels or static) gives in `target` and `middleware` must be defined by
 * the config. A rule of the config's own (loadConfig checks its static mandates with it before
 * any source is known), used by the mandate parser (src/mandates/parse.ts) as well.
 */

/** `s3, local` → `['s3', 'local']`; empty items are dropped. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function defaultTarget(config: Pick<BackerConfig, 'targets'>): string | undefined {
  const marked = config.targets.find((t) => t.default);
  if (marked !== undefined) return marked.name;
  return config.targets.length === 1 ? config.targets[0]?.name : undefined;
}

/**
 * The `target` and `middleware` keys of a mandate: each name must exist in the config; without
 * `target` the default target is used.
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
