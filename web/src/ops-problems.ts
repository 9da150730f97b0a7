// Configuration problems screen logic, pure: every problem once, where it is, which mandate it skips.
import type { ConfigProblem, ProblemList } from './api-ops';

export interface ProblemRow {
  where: string;
  message: string;
  /** The container named by `where` ("container NAME label backer.KEY"), or the skipped mandate's container. */
  container: string | null;
  /** The label (`backer.interval`) or the config path (`mandates.db.interval`). */
  key: string | null;
  /** The config file of a config path problem. */
  file: string | null;
  /** The mandate the problem keeps from running, if any. */
  skips: string | null;
}

const LABEL = /^container (.+) label (backer\.\S+)$/;
const CONTAINER = /^container (.+)$/;

/** Splits `where`: "container C label backer.K", "FILE: path.to.key", or anything else as is. */
export function locate(where: string): Pick<ProblemRow, 'container' | 'key' | 'file'> {
  const label = LABEL.exec(where);
  if (label) return { container: label[1] ?? null, key: label[2] ?? null, file: null };
  const colon = where.lastIndexOf(': ');
  if (colon > 0) return { container: null, key: where.slice(colon + 2), file: where.slice(0, colon) };
  const container = CONTAINER.exec(where);
  if (container) return { container: container[1] ?? null, key: null, file: null };
  return { container: null, key: null, file: where };
}

/** The problems of `GET /v1/mandates` and of its skipped mandates, each once, with the mandate it skips. */
export function problemRows(list: ProblemList): ProblemRow[] {
  const rows = new Map<string, ProblemRow>();
  const id = (p: ConfigProblem): string => `${p.where}\u0000${p.message}`;
  const add = (p: ConfigProblem, skips: string | null, container: string | null): void => {
    const known = rows.get(id(p));
    if (known !== undefined) {
      known.skips ??= skips;
      known.container ??= container;
      return;
    }
    const at = locate(p.where);
    rows.set(id(p), { where: p.where, message: p.message, ...at, container: at.container ?? container, skips });
  };
  for (const s of list.skipped) for (const p of s.problems) add(p, s.name, s.container);
  for (const p of list.problems) add(p, null, null);
  return [...rows.values()].sort((a, b) => a.where.localeCompare(b.where) || a.message.localeCompare(b.message));
}
