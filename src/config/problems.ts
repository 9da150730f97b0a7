import { z } from 'zod';
/** A problem found while reading the config or a mandate (a container's labels, a static mandate). */
export interface ConfigProblem {
  /** e.g. `backer.yml: targets[1].bucket` or `container shop-db label backer.interval` */
  where: string;
  message: string;
}

export type PathKey = string | number;

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `['targets', 1, 'bucket']` → `targets[1].bucket`; odd keys are quoted: `mandates["a b"]`. */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (PLAIN_KEY.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

/** `backer.yml: targets[1].bucket`, or just `backer.yml` for the whole document. */
export function whereIn(fileLabel: string, path: readonly PathKey[]): string {
  return path.length === 0 ? fileLabel : `${fileLabel}: ${formatPath(path)}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The candidate a typo most likely meant, if any is close enough to be worth suggesting. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Stands for a value that came from `${VAR}` (maybe a secret): show() prints its label, never the value. */
export class Concealed {
  constructor(readonly label: string) {}
}

/** Shows a user's value in a message without flooding it (values here are config, not secrets). */
export function show(value: unknown): string {
  if (value instanceof Concealed) return value.label;
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The value at `path` in parsed YAML, undefined where there is none. */
export function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let current = data;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PathKey, unknown>)[key];
  }
  return current;
}

/** A zod issue's path in config terms (zod allows symbols, which no YAML key is). */
export function issuePath(issue: { readonly path: readonly PropertyKey[] }): PathKey[] {
  return issue.path.map((key) => (typeof key === 'number' ? key : String(key)));
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodDefault || current instanceof z.ZodPrefault || current instanceof z.ZodOptional || current instanceof z.ZodNullable) {
      current = current.unwrap() as z.ZodType;
    } else if (current instanceof z.ZodPipe) {
      current = current.in as z.ZodType;
    } else if (current instanceof z.ZodLazy) {
      current = current.unwrap() as z.ZodType;
    } else {
      return current;
    }
  }
}

/** For a union of objects told apart by `type`, the member the data claims to be. */
function pickMember(schema: z.ZodType, data: unknown): z.ZodType | undefined {
  const options = schema instanceof z.ZodUnion ? (schema.options as readonly z.ZodType[]) : [];
  const type = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).type : undefined;
  return options.find((option) => {
    const inner = unwrap(option);
    const literal = inner instanceof z.ZodObject ? unwrap((inner.shape as Record<string, z.ZodType>).type ?? z.never()) : undefined;
    return literal instanceof z.ZodLiteral && (literal.values as ReadonlySet<unknown>).has(type);
  });
}

/** The keys an object at `path` accepts, to list them next to an unknown key. */
function knownKeysAt(root: z.ZodType, data: unknown, path: readonly PathKey[]): string[] {
  let schema: z.ZodType | undefined = root;
  for (let i = 0; i <= path.length && schema !== undefined; i++) {
    schema = unwrap(schema);
    const here = valueAt(data, path.slice(0, i));
    if (schema instanceof z.ZodUnion) {
      schema = pickMember(schema, here);
      if (schema === undefined) return [];
      schema = unwrap(schema);
    }
    if (i === path.length) break;
    const key = path[i];
    if (schema instanceof z.ZodObject && typeof key === 'string') schema = (schema.shape as Record<string, z.ZodType>)[key];
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
    else if (schema instanceof z.ZodRecord) schema = schema.valueType as z.ZodType;
    else schema = undefined;
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

type Issue = z.core.$ZodIssue;

/** A literal (the `type` of a union member) that the value one level down did not match. */
const isDirectLiteralMismatch = (issue: Issue, depth: number): issue is z.core.$ZodIssueInvalidValue =>
  issue.code === 'invalid_value' && issue.path.length === depth + 1;

/**
 * Zod tries every member of a union; the useful errors are those of the member the user meant,
 * i.e. the one whose `type` literal matched. When none matched, the `type` itself is wrong. A
 * discriminated union reports that directly: no member (`errors` empty), the accepted `options`.
 */
function unionIssues(issue: z.core.$ZodIssueInvalidUnion): Issue[] {
  const depth = issue.path.length;
  if (issue.errors.length === 0 && 'options' in issue && issue.options !== undefined) {
    return [{ code: 'invalid_value', path: issue.path, values: issue.options, input: issue.input, message: '' }];
  }
  // The members' issues have paths inside the member: from the config's root, like the others.
  const branches = issue.errors.map((issues) => issues.map((i) => ({ ...i, path: [...issue.path, ...i.path] })));
  const matching = branches.filter((issues) => !issues.some((i) => isDirectLiteralMismatch(i, depth)));
  if (matching.length > 0) {
    return matching.reduce((best, issues) => (issues.length < best.length ? issues : best));
  }
  const literals = branches.flatMap((issues) => issues.filter((i) => isDirectLiteralMismatch(i, depth)));
  const first = literals[0];
  if (first !== undefined && literals.every((l) => l.path[depth] === first.path[depth])) {
    return [{ code: 'invalid_value', path: first.path, values: literals.flatMap((l) => l.values), input: first.input, message: '' }];
  }
  return [{ code: 'custom', path: issue.path, message: 'does not match any accepted form' }];
}

/** Zod's type names in YAML words. */
function typeName(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    record: 'a mapping',
    array: 'a list',
    string: 'a string',
    number: 'a number',
    int: 'a whole number',
    boolean: 'true or false',
    null: 'null',
  };
  return names[type] ?? type;
}

function oneOf(options: readonly unknown[]): string {
  return options.map((o) => JSON.stringify(o)).join(', ');
}

function sizeMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig): string {
  const small = issue.code === 'too_small';
  const bound = Number(small ? issue.minimum : issue.maximum);
  const op = issue.exact === true ? 'exactly' : small ? (issue.inclusive === true ? 'at least' : 'more than') : issue.inclusive === true ? 'at most' : 'less than';
  if (issue.origin === 'string') return small && bound === 1 && issue.exact !== true ? 'must not be empty' : `expected ${op} ${bound} characters`;
  if (issue.origin === 'array') return `expected ${op} ${bound} items`;
  return `expected a number ${op} ${bound}`;
}

/**
 * The one place that words zod's issues for users: the path is given by the caller, the
 * message says what was expected and what was received (`received` is the value at the path, or
 * the Concealed label of a value from the environment).
 */
function messageFor(issue: Issue, received: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (received === undefined) return `required (expected ${typeName(issue.expected)})`;
      return `expected ${typeName(issue.expected)}, received ${show(received)}`;
    case 'invalid_value': {
      const options = issue.values;
      if (options.length === 1) return `expected ${JSON.stringify(options[0])}, received ${show(received)}`;
      return received === undefined ? `required: one of ${oneOf(options)}` : `expected one of ${oneOf(options)}, received ${show(received)}`;
    }
    case 'too_small':
    case 'too_big':
      return sizeMessage(issue);
    case 'invalid_format':
      if (issue.format === 'url') return `expected a URL such as "http://127.0.0.1:9000", received ${show(received)}`;
      return `${issue.message}, received ${show(received)}`;
    case 'invalid_key':
      // A record key (a mandate name): the value at the path is the entry, the key is the path's end.
      return issue.issues.map((inner) => `${inner.message}, received ${show(issue.path.at(-1))}`).join('; ');
    default:
      return issue.message;
  }
}

/** Turns a ZodError into one ConfigProblem per mistake, with the exact path and a plain message. */
/** `conceal` names the values not to print (expanded from the environment), by path. Default: none. */
export function problemsFromZod(
  error: z.ZodError,
  fileLabel: string,
  root: z.ZodType,
  data: unknown,
  conceal: (path: readonly PathKey[]) => string | undefined = () => undefined,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const visit = (issues: readonly Issue[]): void => {
    for (const issue of issues) {
      const path = issuePath(issue);
      if (issue.code === 'invalid_union') {
        visit(unionIssues(issue));
      } else if (issue.code === 'unrecognized_keys') {
        const known = knownKeysAt(root, data, path);
        for (const key of issue.keys) {
          const guess = closest(key, known);
          const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
          const list = known.length > 0 ? `; known keys: ${known.join(', ')}` : '';
          problems.push({ where: whereIn(fileLabel, [...path, key]), message: `unknown key ${key}${hint}${list}` });
        }
      } else {
        const where = whereIn(fileLabel, path);
        const label = conceal(path);
        const message = messageFor(issue, label === undefined ? valueAt(data, path) : new Concealed(label));
        if (!problems.some((p) => p.where === where && p.message === message)) problems.push({ where, message });
      }
    }
  };
  visit(error.issues);
  return problems;
}

/**
 * Targets and middleware the config defines but that have problems of their own. Mandates that
 * name them are not reported again (no false "unknown target" or "no targets are configured").
 */
export interface InvalidRefs {
  /** Their names, or `any` when the whole list is unusable (any name may be meant). */
  targets: string[] | 'any';
  middleware: string[] | 'any';
  /** The default target may be among them. */
  defaultTarget: boolean;
}

export const NO_INVALID_REFS: InvalidRefs = { targets: [], middleware: [], defaultTarget: false };
export const UNKNOWN_REFS: InvalidRefs = { targets: 'any', middleware: 'any', defaultTarget: true };

/** The entries of `targets:` and `middleware:` that schema issues point into. */
export function invalidRefsFrom(data: unknown, issues: readonly { path: readonly PropertyKey[] }[]): InvalidRefs {
  const out: InvalidRefs = { targets: [], middleware: [], defaultTarget: false };
  for (const issue of issues) {
    const [top, index] = issuePath(issue);
    if (top !== 'targets' && top !== 'middleware') continue;
    const list = valueAt(data, [top]);
    const entry = typeof index === 'number' ? valueAt(data, [top, index]) : undefined;
    const name = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>).name : undefined;
    if (typeof index !== 'number' || !Array.isArray(list) || typeof name !== 'string') {
      out[top] = 'any';
      if (top === 'targets') out.defaultTarget = true;
      continue;
    }
    const names = out[top];
    if (names !== 'any' && !names.includes(name)) names.push(name);
    const marked = (entry as Record<string, unknown>).default;
    if (top === 'targets' && (marked === true || list.length === 1)) out.defaultTarget = true;
  }
  return out;
}
