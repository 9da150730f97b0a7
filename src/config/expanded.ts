import { z } from 'zod';
import type { Expansion } from './env.js';
import { formatPath, issuePath, valueAt, type ConfigProblem, type PathKey } from './problems.js';

/**
 * Values expanded from the environment are often secrets (`key: ${CCRYPT_KEY}`), so no config
 * problem may print them: problems name the variable instead (`received the value of ${KEY}`).
 * This file keeps their string type where the schema takes a string and conceals them in messages.
 */

/** The words a message shows instead of an expanded value. */
export function concealedLabel(expansion: Pick<Expansion, 'variables'>): string {
  return `the value of ${expansion.variables.map((name) => `\${${name}}`).join(', ')}`;
}

function samePath(a: readonly PathKey[], b: readonly PathKey[]): boolean {
  return a.length === b.length && a.every((key, i) => key === b[i]);
}

/** A number or boolean written as text, else undefined. */
function retype(text: string): number | boolean | undefined {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return undefined;
}

/** The invalid_type issues, also those inside the members of unions. */
function typeIssues(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssueInvalidType[] {
  return issues.flatMap((issue) => {
    // A union member's issues have paths inside the member.
    if (issue.code === 'invalid_union') return issue.errors.flatMap((branch) => typeIssues(branch.map((i) => ({ ...i, path: [...issue.path, ...i.path] }))));
    return issue.code === 'invalid_type' ? [issue] : [];
  });
}

function setAt(data: unknown, path: readonly PathKey[], value: unknown): void {
  let parent: unknown = data;
  for (const key of path.slice(0, -1)) {
    if (typeof parent !== 'object' || parent === null) return;
    parent = (parent as Record<PathKey, unknown>)[key];
  }
  const last = path.at(-1);
  if (typeof parent === 'object' && parent !== null && last !== undefined) (parent as Record<PathKey, unknown>)[last] = value;
}

/**
 * Parses `data` (in which every expanded value is a string). Where the schema wants a number or
 * a boolean and finds an unquoted whole `${VAR}` that reads as one, the value is retyped and the
 * parse repeated; everywhere else, also where a string or anything is accepted, it stays the text
 * of the variable (`0123`, `8675309123`). Mutates `data`, which the caller uses for messages.
 */
export function parseWithExpansions<T extends z.ZodType>(schema: T, data: unknown, expansions: readonly Expansion[]): z.ZodSafeParseResult<z.output<T>> {
  let result = schema.safeParse(data);
  const done = new Set<Expansion>();
  // Each round retypes at least one value, each value once: the loop ends.
  while (!result.success) {
    let changed = false;
    for (const issue of typeIssues(result.error.issues)) {
      const path = issuePath(issue);
      if (typeof valueAt(data, path) !== 'string' || (issue.expected !== 'number' && issue.expected !== 'boolean')) continue;
      const expansion = expansions.find((e) => e.retypable && !done.has(e) && samePath(e.path, path));
      const typed = expansion === undefined ? undefined : retype(expansion.text);
      if (expansion === undefined || typeof typed !== issue.expected) continue;
      done.add(expansion);
      setAt(data, path, typed);
      changed = true;
    }
    if (!changed) break;
    result = schema.safeParse(data);
  }
  return result;
}

/** For problemsFromZod: what to show instead of the value at `path`, when it was expanded. */
export function concealerFor(expansions: readonly Expansion[]): (path: readonly PathKey[]) => string | undefined {
  return (path) => {
    const expansion = expansions.find((e) => samePath(e.path, path));
    return expansion === undefined ? undefined : concealedLabel(expansion);
  };
}

/** Values this long are replaced in every problem, wherever they appear (they may be copied by aliases or rules). */
const CONCEAL_EVERYWHERE_LENGTH = 6;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function concealIn(message: string, text: string, label: string): string {
  if (text === '') return message;
  let out = message.split(JSON.stringify(text)).join(label);
  // The bare text only as a whole word, so that a short value does not eat parts of other words.
  out = out.replace(new RegExp(`(?<![A-Za-z0-9_])${escapeRegExp(text)}(?![A-Za-z0-9_])`, 'g'), label);
  return out;
}

/** Whether a problem at `where` is about the value at `path` (or one containing it, or inside it). */
function concerns(where: string, path: readonly PathKey[]): boolean {
  const at = `: ${formatPath(path)}`;
  const index = where.indexOf(': ');
  const own = index < 0 ? '' : where.slice(index);
  return own === at || own.startsWith(`${at}.`) || own.startsWith(`${at}[`) || (own !== '' && at.startsWith(own));
}

/**
 * Replaces every expanded value in the problems' messages by the names of its variables: the
 * problems at (or around) its path, and long values in every problem. Also the value of each
 * variable alone, for values made of a variable and text (`${USER}:${PASS}`).
 */
export function concealExpansions(problems: readonly ConfigProblem[], expansions: readonly Expansion[], env: Readonly<Record<string, string | undefined>>): ConfigProblem[] {
  return problems.map((problem) => {
    let message = problem.message;
    for (const expansion of expansions) {
      const label = concealedLabel(expansion);
      const near = concerns(problem.where, expansion.path);
      if (near || expansion.text.length >= CONCEAL_EVERYWHERE_LENGTH) message = concealIn(message, expansion.text, label);
      for (const name of expansion.variables) {
        const value = env[name] ?? '';
        if (near || value.length >= CONCEAL_EVERYWHERE_LENGTH) message = concealIn(message, value, concealedLabel({ variables: [name] }));
      }
    }
    return message === problem.message ? problem : { ...problem, message };
  });
}

interface Recorded {
  expansions: readonly Expansion[];
  env: Readonly<Record<string, string | undefined>>;
}

/** The expansions behind a loaded config, for problems found later (static mandates, discovery). */
const byConfig = new WeakMap<object, Recorded>();

export function recordExpansions(config: object, expansions: readonly Expansion[], env: Readonly<Record<string, string | undefined>>): void {
  byConfig.set(config, { expansions, env });
}

/** concealExpansions with the expansions recorded for `config` (none for a config built otherwise). */
export function concealForConfig(problems: ConfigProblem[], config: object): ConfigProblem[] {
  const recorded = byConfig.get(config);
  return recorded === undefined ? problems : concealExpansions(problems, recorded.expansions, recorded.env);
}
