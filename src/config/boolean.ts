/** The spellings of a boolean every label and static-mandate key accepts (case-insensitive). */
export const TRUE_WORDS = ['true', 'yes', 'on', '1'] as const;
export const FALSE_WORDS = ['false', 'no', 'off', '0'] as const;

/** `true`/`yes`/`on`/`1` → true, `false`/`no`/`off`/`0` → false (any case, trimmed), else undefined. */
export function parseBoolean(value: string): boolean | undefined {
  const word = value.trim().toLowerCase();
  if ((TRUE_WORDS as readonly string[]).includes(word)) return true;
  if ((FALSE_WORDS as readonly string[]).includes(word)) return false;
  return undefined;
}

/** The message for a value that is not a boolean. */
export function notABoolean(value: string): string {
  return `expected true or false (also yes/no, on/off, 1/0), received ${JSON.stringify(value)}`;
}
