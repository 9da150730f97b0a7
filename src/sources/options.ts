import type { z } from 'zod';
import { optionIssue } from './options-schema.js';
import type { DumpContext } from './types.js';

/**
 * Pass-through long options for dump tools (`backer.<type>.options.<name>=value`):
 * `true` → `--name`, `false` → omitted (also removes a Backer default), else `--name=value`.
 * Values travel as one argv element each (no shell), so the only way to break out of an
 * argument is a control character, which is refused.
 */
export type ToolOptions = Map<string, string | true | false>;

const OPTION_NAME = /^[a-z0-9][a-z0-9_-]*$/i;

/**
 * Why pass-through option `options.<name>` with `value` cannot be set, or null. `extra` is a
 * source's own check of an allowed, normalized name (postgres: abbreviations of refused ones).
 */
function toolOptionProblem(
  name: string,
  value: unknown,
  refused: ReadonlySet<string>,
  reason: string,
  extra?: (normalized: string) => string | null,
): string | null {
  if (!OPTION_NAME.test(name)) return `"${name}" is not a valid long option name (letters, digits, "-" and "_")`;
  const normalized = normalize(name);
  if (refused.has(normalized)) return `--${normalized} is managed by Backer (${reason}) and cannot be set`;
  const own = extra?.(normalized) ?? null;
  if (own !== null) return own;
  if (typeof value !== 'string') return `expected a string, received ${JSON.stringify(value)}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'option values may not contain control characters such as newlines';
  return null;
}

/** Checks the `options.*` keys of a schema's input (in its superRefine): each problem is an issue at its key. */
export function checkToolOptions(
  raw: Readonly<Record<string, unknown>>,
  refused: ReadonlySet<string>,
  reason: string,
  ctx: z.RefinementCtx,
  extra?: (normalized: string) => string | null,
): void {
  for (const [key, value] of Object.entries(raw)) {
    if (!key.startsWith('options.')) continue;
    const problem = toolOptionProblem(key.slice('options.'.length), value, refused, reason, extra);
    if (problem !== null) optionIssue(ctx, key, problem);
  }
}

/** The `options.*` keys of a checked schema input as tool options. */
export function toolOptionsOf(raw: Readonly<Record<string, unknown>>): ToolOptions {
  const out: ToolOptions = new Map();
  for (const [key, value] of Object.entries(raw)) {
    if (!key.startsWith('options.') || typeof value !== 'string') continue;
    out.set(normalize(key.slice('options.'.length)), value === 'true' ? true : value === 'false' ? false : value);
  }
  return out;
}

function normalize(name: string): string {
  return name.replace(/_/g, '-').toLowerCase();
}

/** Backer's defaults first, then the user's options, which may override or remove (false) them. */
export function toolArgs(defaults: ToolOptions, user: ToolOptions): string[] {
  const merged = new Map([...defaults, ...user]);
  const args: string[] = [];
  for (const [name, value] of merged) {
    if (value === true) args.push(`--${name}`);
    else if (value !== false) args.push(`--${name}=${value}`);
  }
  return args;
}

/** Where option `key` (`mysql.database`) of the running mandate was written, for run-time problems. */
export function optionWhere(context: Pick<DumpContext, 'describe'>, container: string | null, key: string): string {
  return context.describe?.(key) ?? `container ${container ?? '(none)'} label backer.${key}`;
}
