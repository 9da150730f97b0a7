import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { NO_INVALID_REFS, whereIn, type ConfigProblem, type InvalidRefs } from '../config/problems.js';
import type { BackerConfig } from '../config/schema.js';
import { childEnv } from '../util/child-env.js';
import { middlewarePlugins } from '../middleware/index.js';
import { targetPlugins } from '../targets/index.js';

/**
 * The absolute path `program` runs from, looked up like a shell does (executable files on PATH);
 * undefined when none. Default PATH: the one Backer's child processes get (childEnv).
 */
export async function findProgram(program: string, pathVariable: string | undefined = childEnv().PATH): Promise<string | undefined> {
  const dirs = (pathVariable ?? '').split(delimiter).filter((dir) => dir !== '' && isAbsolute(dir));
  for (const dir of dirs) {
    const candidate = join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // Not here (or not executable): the next directory may have it.
    }
  }
  return undefined;
}

interface PluginEntry {
  type: string;
  name: string;
}

/** The programs each plugin type needs, by list (`targets`, `middleware`) and type. */
const TOOLS: Record<'targets' | 'middleware', ReadonlyMap<string, readonly string[]>> = {
  targets: new Map(targetPlugins.map((p) => [p.type, p.tools])),
  middleware: new Map(middlewarePlugins.map((p) => [p.type, p.tools])),
};

/**
 * One problem per configured target or middleware whose program is not on PATH, e.g.
 * `backer.yml: middleware[1] (secret): the program ccrypt is not installed (not found on PATH)`.
 * `config check` reports them (exit 1); the daemon logs them as warnings and runs: only the
 * backups that use such an entry fail, with the plugin's own error. When entries of a list were
 * dropped for problems of their own (`invalidRefs`), the positions of the rest are not those of
 * the file: the entry is named without its index then.
 */
export async function missingTools(
  config: Pick<BackerConfig, 'targets' | 'middleware'>,
  fileLabel: string,
  invalidRefs: InvalidRefs = NO_INVALID_REFS,
  pathVariable: string | undefined = childEnv().PATH,
): Promise<ConfigProblem[]> {
  const found = new Map<string, boolean>();
  const installed = async (program: string): Promise<boolean> => {
    const known = found.get(program);
    if (known !== undefined) return known;
    const here = (await findProgram(program, pathVariable)) !== undefined;
    found.set(program, here);
    return here;
  };
  const shifted = (list: 'targets' | 'middleware'): boolean => invalidRefs[list] === 'any' || invalidRefs[list].length > 0;
  const problems: ConfigProblem[] = [];
  const lists: ['targets' | 'middleware', readonly PluginEntry[]][] = [
    ['targets', config.targets],
    ['middleware', config.middleware],
  ];
  for (const [list, entries] of lists) {
    for (const [index, entry] of entries.entries()) {
      for (const program of TOOLS[list].get(entry.type) ?? []) {
        if (await installed(program)) continue;
        problems.push({
          where: `${whereIn(fileLabel, shifted(list) ? [list] : [list, index])} (${entry.name})`,
          message: `the program ${program} is not installed (not found on PATH)`,
        });
      }
    }
  }
  return problems;
}
