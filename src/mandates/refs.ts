import { ENV_NAME, parseRef } from '../config/refs.js';
import type { ConfigProblem } from '../config/problems.js';
import type { OptionOrigin } from '../sources/types.js';

/**
 * Checks the refs among raw option values without resolving them: malformed refs always, and
 * `Env:` names missing from the container's environment when that environment is known.
 */
export function checkRefs(
  raw: Record<string, string>,
  containerEnv: Record<string, string> | undefined,
  origin: OptionOrigin,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const ref = parseRef(value);
    const where = origin.describe(key);
    if (ref.kind === 'env') {
      if (!ENV_NAME.test(ref.name)) {
        problems.push({ where, message: `expected Env:NAME with a variable name of letters, digits and "_", received ${JSON.stringify(value)}` });
      } else if (containerEnv !== undefined && !Object.hasOwn(containerEnv, ref.name)) {
        const container = origin.container === null ? 'the container' : `container ${origin.container}`;
        problems.push({ where, message: `environment variable ${ref.name} (from Env:${ref.name}) is not set in ${container}` });
      }
    } else if (ref.kind === 'file' && !ref.path.startsWith('/')) {
      problems.push({ where, message: `expected File:/absolute/path, received ${JSON.stringify(value)}` });
    }
  }
  return problems;
}
