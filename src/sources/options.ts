import { BackerError } from '../errors.js';
import type { DumpContext, OptionOrigin } from './types.js';

/**
 * Pass-through long options for dump tools (`backer.<type>.options.<name>=value`):
 * `true` → `--name`, `false` → omitted (also removes a Backer default), else `--name=value`.
 * Values travel as one argv element each (no shell), so the only way to break out of an
 * argument is a control character, which is refused.
 */
export type ToolOptions = Map<string, string | true | false>;

const OPTION_NAME = /^[a-z0-9][a-z0-9_-]*$/i;

export function parseToolOptions(
  raw: Record<string, string>,
  refused: ReadonlySet<string>,
  origin: OptionOrigin,
  reason: string,
): ToolOptions {
  const out: ToolOptions = new Map();
  for (const [key, value] of Object.entries(raw)) {
    if (!key.startsWith('options.')) continue;
    const name = key.slice('options.'.length);
    if (!OPTION_NAME.test(name)) {
      throw labelError(origin, key, `"${name}" is not a valid long option name (letters, digits, "-" and "_")`);
    }
    const normalized = name.replace(/_/g, '-').toLowerCase();
    if (refused.has(normalized)) {
      throw new BackerError('LABEL_INVALID', `${origin.describe(key)}: --${normalized} is managed by Backer (${reason}) and cannot be set`, {
        component: 'labels',
        details: { where: origin.describe(key), option: normalized },
        permanent: true,
      });
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      throw labelError(origin, key, 'option values may not contain control characters such as newlines');
    }
    out.set(normalized, value === 'true' ? true : value === 'false' ? false : value);
  }
  return out;
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

export function labelError(origin: OptionOrigin, key: string, expected: string): BackerError {
  return new BackerError('LABEL_INVALID', `${origin.describe(key)}: ${expected}`, {
    component: 'labels',
    details: { where: origin.describe(key) },
    permanent: true,
  });
}

/** Comma list of identifiers (databases, tables); empty string → empty list. */
export function parseNameList(raw: string | undefined, origin: OptionOrigin, key: string, pattern: RegExp): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const names = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const name of names) {
    if (!pattern.test(name)) throw labelError(origin, key, `"${name}" is not a valid name (expected ${pattern.source})`);
  }
  return names;
}
