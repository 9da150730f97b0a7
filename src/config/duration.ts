import { z } from 'zod';
import { withJsonSchema } from './schema-kit.js';

/**
 * One way to write a duration, in labels and in backer.yml alike: a positive whole number with a
 * unit, `s` (seconds), `m` (minutes), `h` (hours), `d` (days, 24 h) or `w` (weeks, 7 d), several
 * of them in a row from the largest unit down (`1h30m`, `1d12h`). Bare numbers are refused: `30`
 * could mean seconds or minutes. Milliseconds are not offered: nothing in Backer is that precise.
 * Code reads durations as milliseconds (numbers).
 */

const UNIT_MS = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;
type Unit = keyof typeof UNIT_MS;
const UNITS = Object.keys(UNIT_MS) as Unit[];

/** The shape, for `backer config schema` (JSON Schema) and docs: units in descending order, each once. */
export const DURATION_PATTERN = '^\\s*(\\d+w)?(\\d+d)?(\\d+h)?(\\d+m)?(\\d+s)?\\s*$';
const DURATION_RE = new RegExp(DURATION_PATTERN);

/** The problem every refused duration reads as. */
export function durationProblem(text: unknown): string {
  const shown = typeof text === 'string' ? JSON.stringify(text) : String(text);
  return `expected a duration like 30s, 5m, 26h or 7d, got ${shown}`;
}

/**
 * Milliseconds of `text` (`30s` → 30000, `1h30m` → 5400000), or undefined when it is no duration:
 * empty, a bare number, an unknown unit, units out of order or twice, zero in total, or too large
 * to be exact in a number. Surrounding white space is ignored.
 */
export function durationMs(text: string): number | undefined {
  const match = DURATION_RE.exec(text);
  if (match === null || match.slice(1).every((part) => part === undefined)) return undefined;
  let total = 0;
  for (const [i, unit] of UNITS.entries()) {
    const part = match[i + 1];
    if (part !== undefined) total += Number(part.slice(0, -1)) * UNIT_MS[unit];
  }
  return total > 0 && Number.isSafeInteger(total) ? total : undefined;
}

/** Like durationMs, but throws an Error with durationProblem's message. */
export function parseDuration(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new Error(durationProblem(text));
  return ms;
}

/** `5400000` → `1h30m`: the shortest text parseDuration reads back as `ms` (whole seconds; 0 → `0s`). */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms / 1000) * 1000;
  if (rest <= 0) return '0s';
  let text = '';
  for (const unit of UNITS) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * UNIT_MS[unit];
  }
  return text;
}

/**
 * A duration in backer.yml: its input is the string (`retry_delay: 30s`), its output milliseconds.
 * Use `.prefault('30s')` for a default (it goes through the parser, so the output stays in ms).
 * A YAML number (`30`) is refused with the same message as a bad string.
 */
export const durationSchema: z.ZodType<number, string> = withJsonSchema(
  z
    .custom<string>((value) => typeof value === 'string' && durationMs(value) !== undefined, { error: (issue) => durationProblem(issue.input) })
    .transform((text) => parseDuration(text)),
  // A z.custom has no JSON Schema of its own: editors see the pattern.
  { type: 'string', pattern: DURATION_PATTERN, description: 'a duration: 30s, 5m, 26h, 7d, 2w or combined (1h30m)' },
);
