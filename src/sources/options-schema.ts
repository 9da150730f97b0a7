import { z } from 'zod';
import { BackerError } from '../errors.js';
import type { OptionOrigin } from './types.js';

/**
 * A source's options are one zod schema over the raw option strings: `backer.<type>.*` labels
 * without the prefix, or the same keys of a static mandate (flattened, `options.x` included).
 * Labels and `backer.yml` go through the very same schema, so their problems read alike, and
 * every problem is reported at once. Each issue's path starts with the option key it is about;
 * its message reads after "<where the key was written>: ".
 */
export type RawOptions = Record<string, string>;
export type OptionsSchema<Options> = z.ZodType<Options>;

export interface OptionProblem {
  /** The option key (`database`, `options.single-transaction`), or '' for the options as a whole. */
  key: string;
  where: string;
  message: string;
}

/** The problems of one failed parse, each at the option it names. */
export function optionProblems(error: z.ZodError, origin: OptionOrigin, fallbackWhere: string): OptionProblem[] {
  const problems: OptionProblem[] = [];
  for (const issue of error.issues) {
    const key = typeof issue.path[0] === 'string' ? issue.path[0] : '';
    const where = key === '' ? fallbackWhere : origin.describe(key);
    if (!problems.some((p) => p.where === where && p.message === issue.message)) problems.push({ key, where, message: issue.message });
  }
  return problems;
}

/** What a source declares about its options: their keys and one schema over them. */
export interface OptionsSpec<Options> {
  /** The source type, for messages (`unknown mysql option`). */
  type: string;
  /** Every option key the schema reads. */
  keys: readonly string[];
  /** When set, `options.*` keys pass to the schema too; the text names them in "known:" lists. */
  passThrough?: string;
  schema: OptionsSchema<Options>;
}

/** Unknown keys are problems of their own, reported next to the schema's (zod skips refinements after a field failed). */
function unknownKeys(spec: OptionsSpec<unknown>, raw: RawOptions, origin: OptionOrigin): { known: RawOptions; problems: OptionProblem[] } {
  const known: RawOptions = {};
  const problems: OptionProblem[] = [];
  const list = [...spec.keys, ...(spec.passThrough === undefined ? [] : [spec.passThrough])].join(', ');
  for (const [key, value] of Object.entries(raw)) {
    if (spec.keys.includes(key) || (spec.passThrough !== undefined && key.startsWith('options.'))) known[key] = value;
    else problems.push({ key, where: origin.describe(key), message: `unknown ${spec.type} option; known: ${list}` });
  }
  return { known, problems };
}

/**
 * Parses raw options with a source's schema. On failure throws one LABEL_INVALID whose
 * `details.problems` lists every problem (the mandate parser reports each at its place); its
 * message names the first, like the hand-written checks before.
 */
export function parseOptions<Options>(spec: OptionsSpec<Options>, raw: RawOptions, origin: OptionOrigin): Options {
  const { known, problems } = unknownKeys(spec, raw, origin);
  const result = spec.schema.safeParse(known);
  if (!result.success) problems.push(...optionProblems(result.error, origin, origin.describe(spec.type)));
  if (result.success && problems.length === 0) return result.data;
  const first = problems[0] ?? { key: '', where: origin.describe(spec.type), message: 'invalid options' };
  throw new BackerError('LABEL_INVALID', `${first.where}: ${first.message}`, {
    component: 'labels',
    details: { where: first.where, key: first.key, problems: problems.map(({ where, message }) => ({ where, message })) },
    permanent: true,
  });
}

/** Adds an issue at option `key` (in superRefine / transform checks). */
export function optionIssue(ctx: z.RefinementCtx, key: string, message: string): void {
  ctx.addIssue({ code: 'custom', path: [key], message });
}

/**
 * An optional string option: `error` words a value of another type (never for labels, which are
 * strings, but a static mandate's YAML may hold a list or a map).
 */
export function optionalString(): z.ZodOptional<z.ZodString> {
  return z.string({ error: (issue) => `expected a string, received ${JSON.stringify(issue.input)}` }).optional();
}
