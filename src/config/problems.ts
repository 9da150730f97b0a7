import { z } from 'zod';
import type { ConfigProblem } from './mandate-types.js';

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

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let current = data;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PathKey, unknown>)[key];
  }
  return current;
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodNullable) {
      current = current._def.innerType as z.ZodTypeAny;
    } else if (current instanceof z.ZodEffects) {
      current = current.innerType() as z.ZodTypeAny;
    } else if (current instanceof z.ZodLazy) {
      current = current.schema as z.ZodTypeAny;
    } else {
      return current;
    }
  }
}

/** For a union of objects told apart by `type`, the member the data claims to be. */
function pickMember(schema: z.ZodTypeAny, data: unknown): z.ZodTypeAny | undefined {
  const options = schema instanceof z.ZodUnion || schema instanceof z.ZodDiscriminatedUnion ? (schema.options as z.ZodTypeAny[]) : [];
  const type = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).type : undefined;
  return options.find((option) => {
    const inner = unwrap(option);
    const literal = inner instanceof z.ZodObject ? unwrap((inner.shape as Record<string, z.ZodTypeAny>).type ?? z.never()) : undefined;
    return literal instanceof z.ZodLiteral && literal.value === type;
  });
}

/** The keys an object at `path` accepts, to list them next to an unknown key. */
function knownKeysAt(root: z.ZodTypeAny, data: unknown, path: readonly PathKey[]): string[] {
  let schema: z.ZodTypeAny | undefined = root;
  for (let i = 0; i <= path.length && schema !== undefined; i++) {
    schema = unwrap(schema);
    const here = valueAt(data, path.slice(0, i));
    if (schema instanceof z.ZodUnion || schema instanceof z.ZodDiscriminatedUnion) {
      schema = pickMember(schema, here);
      if (schema === undefined) return [];
      schema = unwrap(schema);
    }
    if (i === path.length) break;
    const key = path[i];
    if (schema instanceof z.ZodObject && typeof key === 'string') schema = (schema.shape as Record<string, z.ZodTypeAny>)[key];
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodTypeAny;
    else if (schema instanceof z.ZodRecord) schema = schema.valueSchema as z.ZodTypeAny;
    else schema = undefined;
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as Record<string, unknown>) : [];
}

const isDirectLiteralMismatch = (issue: z.ZodIssue, depth: number): boolean =>
  issue.code === z.ZodIssueCode.invalid_literal && issue.path.length === depth + 1;

/**
 * Zod tries every member of a union; the useful errors are those of the member the user meant,
 * i.e. the one whose `type` literal matched. When none matched, the `type` itself is wrong.
 */
function unionIssues(issue: z.ZodInvalidUnionIssue): z.ZodIssue[] {
  const depth = issue.path.length;
  const branches = issue.unionErrors.map((e) => e.issues);
  const matching = branches.filter((issues) => !issues.some((i) => isDirectLiteralMismatch(i, depth)));
  if (matching.length > 0) {
    return matching.reduce((best, issues) => (issues.length < best.length ? issues : best));
  }
  const literals = branches.flatMap((issues) => issues.filter((i) => isDirectLiteralMismatch(i, depth))) as z.ZodInvalidLiteralIssue[];
  const first = literals[0];
  if (first !== undefined && literals.every((l) => l.path[depth] === first.path[depth])) {
    return [{ code: z.ZodIssueCode.invalid_enum_value, path: first.path, options: literals.map((l) => String(l.expected)), received: String(first.received), message: '' }];
  }
  return [{ code: z.ZodIssueCode.custom, path: issue.path, message: 'does not match any accepted form' }];
}

/** Zod's type names in YAML words. */
function typeName(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    number: 'a number',
    integer: 'a whole number',
    float: 'a fraction',
    boolean: 'true or false',
    null: 'null',
  };
  return names[type] ?? type;
}

function oneOf(options: readonly unknown[]): string {
  return options.map((o) => JSON.stringify(o)).join(', ');
}

function sizeMessage(issue: z.ZodTooSmallIssue | z.ZodTooBigIssue): string {
  const small = issue.code === z.ZodIssueCode.too_small;
  const bound = Number(small ? issue.minimum : issue.maximum);
  const op = issue.exact ? 'exactly' : small ? (issue.inclusive ? 'at least' : 'more than') : issue.inclusive ? 'at most' : 'less than';
  if (issue.type === 'string') return small && bound === 1 && !issue.exact ? 'must not be empty' : `expected ${op} ${bound} characters`;
  if (issue.type === 'array') return `expected ${op} ${bound} items`;
  return `expected a number ${op} ${bound}`;
}

function messageFor(issue: z.ZodIssue, received: unknown): string {
  const path = issue.path;
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      if (issue.received === 'undefined') return `required (expected ${typeName(issue.expected)})`;
      return `expected ${typeName(issue.expected)}, received ${show(received)}`;
    case z.ZodIssueCode.invalid_literal:
      return `expected ${JSON.stringify(issue.expected)}, received ${show(received)}`;
    case z.ZodIssueCode.invalid_enum_value:
    case z.ZodIssueCode.invalid_union_discriminator: {
      const options = issue.options;
      return received === undefined ? `required: one of ${oneOf(options)}` : `expected one of ${oneOf(options)}, received ${show(received)}`;
    }
    case z.ZodIssueCode.too_small:
    case z.ZodIssueCode.too_big:
      return sizeMessage(issue);
    case z.ZodIssueCode.invalid_string:
      if (issue.validation === 'url') return `expected a URL such as "http://127.0.0.1:9000", received ${show(received)}`;
      // A record key (a mandate name) fails here while the value at the path is the entry.
      return `${issue.message}, received ${show(typeof received === 'string' || received instanceof Concealed ? received : path.at(-1))}`;
    default:
      return issue.message;
  }
}

/** Turns a ZodError into one ConfigProblem per mistake, with the exact path and a plain message. */
/** `conceal` names the values not to print (expanded from the environment), by path. Default: none. */
export function problemsFromZod(
  error: z.ZodError,
  fileLabel: string,
  root: z.ZodTypeAny,
  data: unknown,
  conceal: (path: readonly PathKey[]) => string | undefined = () => undefined,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const visit = (issues: readonly z.ZodIssue[]): void => {
    for (const issue of issues) {
      if (issue.code === z.ZodIssueCode.invalid_union) {
        visit(unionIssues(issue));
      } else if (issue.code === z.ZodIssueCode.unrecognized_keys) {
        const known = knownKeysAt(root, data, issue.path);
        for (const key of issue.keys) {
          const guess = closest(key, known);
          const hint = guess === undefined ? '' : ` (did you mean ${guess}?)`;
          const list = known.length > 0 ? `; known keys: ${known.join(', ')}` : '';
          problems.push({ where: whereIn(fileLabel, [...issue.path, key]), message: `unknown key ${key}${hint}${list}` });
        }
      } else {
        const where = whereIn(fileLabel, issue.path);
        const label = conceal(issue.path);
        const message = messageFor(issue, label === undefined ? valueAt(data, issue.path) : new Concealed(label));
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
export function invalidRefsFrom(data: unknown, issues: readonly { path: PathKey[] }[]): InvalidRefs {
  const out: InvalidRefs = { targets: [], middleware: [], defaultTarget: false };
  for (const { path } of issues) {
    const [top, index] = path;
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
