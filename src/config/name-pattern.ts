/** Placeholders a `name_pattern` may use. */
export const NAME_PLACEHOLDERS = ['<DATE>', '<CONTAINER_NAME>', '<MANDATE>', '<UUID>'] as const;

export const DEFAULT_NAME_PATTERN = '<DATE>-<CONTAINER_NAME>';
export const DEFAULT_NAME_PATTERN_NO_CONTAINER = '<DATE>-<MANDATE>';

/**
 * Longest rendered backup name, in UTF-8 bytes. File systems allow 255 bytes per file name; the
 * rest is left for the artifact's extensions (`.sql.gz.age`), a `-2` collision suffix and the
 * manifest's suffix.
 */
export const MAX_NAME_BYTES = 200;

/** Characters that are safe in file names and object keys everywhere (no `/`, no spaces, no `:`). */
const SAFE_LITERAL = /^[A-Za-z0-9_.-]*$/;

export interface NameValues {
  date: Date;
  /** Null for mandates without a container; <CONTAINER_NAME> then renders the mandate name. */
  container: string | null;
  mandate: string;
  uuid: string;
}

/** `2026-11-24T22:30:05.123Z` → `2026-11-24T22-30-05Z`: UTC, no colons, whole seconds. */
export function formatNameDate(date: Date): string {
  return `${date.toISOString().slice(0, 19).replaceAll(':', '-')}Z`;
}

/** Renders a name pattern; the pattern is expected to have passed checkNamePattern. */
export function renderName(pattern: string, values: NameValues): string {
  return pattern
    .replaceAll('<DATE>', formatNameDate(values.date))
    .replaceAll('<CONTAINER_NAME>', values.container ?? values.mandate)
    .replaceAll('<MANDATE>', values.mandate)
    .replaceAll('<UUID>', values.uuid);
}

/**
 * Why a pattern is unusable, or null when it is fine. It must name each backup uniquely
 * (<DATE> or <UUID>), otherwise every run overwrites the previous backup.
 */
export function checkNamePattern(pattern: string, hasContainer: boolean): string | null {
  const placeholders: string[] = pattern.match(/<[^<>]*>/g) ?? [];
  const unknown = placeholders.filter((p) => !(NAME_PLACEHOLDERS as readonly string[]).includes(p));
  if (unknown.length > 0) {
    return `unknown placeholder ${unknown.join(', ')}; known: ${NAME_PLACEHOLDERS.join(', ')}`;
  }
  const literal = pattern.replace(/<[^<>]*>/g, '');
  if (!SAFE_LITERAL.test(literal)) {
    return `expected only letters, digits, "_", "." and "-" besides the placeholders ${NAME_PLACEHOLDERS.join(', ')}; received ${JSON.stringify(pattern)}`;
  }
  if (pattern.startsWith('.') || pattern.startsWith('-')) {
    return 'must not start with "." or "-" (hidden files, command-line options)';
  }
  if (!placeholders.includes('<DATE>') && !placeholders.includes('<UUID>')) {
    return 'must contain <DATE> or <UUID>, otherwise every backup gets the same name';
  }
  if (!hasContainer && placeholders.includes('<CONTAINER_NAME>')) {
    return 'uses <CONTAINER_NAME> but this mandate has no container; use <MANDATE>';
  }
  return null;
}

/**
 * Why the names a valid pattern renders would be too long, or null. Rendered with this mandate's
 * container and mandate names, a date and a UUID (both of fixed length).
 */
export function checkNameLength(pattern: string, values: Pick<NameValues, 'container' | 'mandate'>): string | null {
  const name = renderName(pattern, { ...values, date: new Date(0), uuid: '00000000-0000-0000-0000-000000000000' });
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes <= MAX_NAME_BYTES) return null;
  return `renders names of ${bytes} bytes (e.g. ${JSON.stringify(name.length > 40 ? `${name.slice(0, 37)}...` : name)}); at most ${MAX_NAME_BYTES} bytes are allowed, file names are limited to 255`;
}
