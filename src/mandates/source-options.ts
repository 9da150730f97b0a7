import { isBackerError, type BackerError } from '../errors.js';
import type { ConfigProblem } from '../config/problems.js';
import type { OptionOrigin, SourceDefinition } from '../sources/types.js';

export interface SourceOptionsResult {
  /** The source's parsed options; undefined when there are problems. */
  options: unknown;
  problems: ConfigProblem[];
}

/** The problem a source's LABEL_INVALID error describes, at the option it names. */
function problemOf(err: BackerError, origin: OptionOrigin, fallbackWhere: string): ConfigProblem {
  const at = err.details.where;
  const key = err.details.key;
  const where = typeof at === 'string' ? at : typeof key === 'string' ? origin.describe(key) : fallbackWhere;
  // Sources tend to start their message with the location, which `where` already gives.
  const message = err.message.startsWith(`${where}: `) ? err.message.slice(where.length + 2) : err.message;
  return { where, message };
}

function schemaProblems(err: BackerError): ConfigProblem[] | null {
  const list = err.details.problems;
  if (!Array.isArray(list)) return null;
  return list.filter((p): p is ConfigProblem => typeof (p as ConfigProblem | null)?.where === 'string' && typeof (p as ConfigProblem).message === 'string');
}

/** The option key of `raw` a problem is about, if it names one. */
function keyOf(err: BackerError, problem: ConfigProblem, raw: Readonly<Record<string, string>>, origin: OptionOrigin): string | undefined {
  const key = err.details.key;
  if (typeof key === 'string' && Object.hasOwn(raw, key)) return key;
  return Object.keys(raw).find((k) => origin.describe(k) === problem.where);
}

/**
 * Runs the source's `parse` on its options (`<type>.*` without the prefix). A source's parse
 * stops at its first problem; to report every problem of a mandate at once, the option at fault
 * is set aside and the rest parsed again, until the rest parses or a problem names no option
 * present (a required one is missing). A later problem at a place already reported (the option
 * set aside is now missing) is not repeated. Anything but LABEL_INVALID is a bug in the source
 * and is rethrown: it must not pass as bad input.
 */
export function parseSourceOptions(
  definition: Pick<SourceDefinition<unknown>, 'parse'>,
  raw: Readonly<Record<string, string>>,
  origin: OptionOrigin,
  fallbackWhere: string,
): SourceOptionsResult {
  const rest: Record<string, string> = { ...raw };
  const problems: ConfigProblem[] = [];
  // Each round sets one option aside: at most one round per option, plus the last.
  for (let round = 0; round <= Object.keys(raw).length; round++) {
    try {
      const options = definition.parse({ ...rest }, origin);
      return { options: problems.length === 0 ? options : undefined, problems };
    } catch (err) {
      if (!isBackerError(err, 'LABEL_INVALID')) throw err;
      // A source whose options are one schema reports every problem at once.
      const all = schemaProblems(err);
      if (all !== null) return { options: undefined, problems: all };
      const problem = problemOf(err, origin, fallbackWhere);
      if (!problems.some((p) => p.where === problem.where)) problems.push(problem);
      const key = keyOf(err, problem, rest, origin);
      if (key === undefined) break;
      delete rest[key];
    }
  }
  return { options: undefined, problems };
}
