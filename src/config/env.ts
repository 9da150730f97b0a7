import { isMap, isPair, isScalar, isSeq, type Document } from 'yaml';
import type { ConfigProblem } from './mandate-types.js';
import { whereIn, type PathKey } from './problems.js';

/** The environment references are read from; `process.env` fits. */
export type Env = Readonly<Record<string, string | undefined>>;

export interface ExpandResult {
  value: string;
  /** One message per reference that could not be expanded (the value then keeps its text). */
  errors: string[];
}

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/**
 * Expands `${VAR}` and `${VAR:-default}` (the default applies when VAR is unset or empty, as
 * in sh and docker compose); `$${` stands for a literal `${`. Any other `$` is kept as is.
 */
export function expandString(text: string, env: Env): ExpandResult {
  let value = '';
  const errors: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      value += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      value += text[i] ?? '';
      i += 1;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      errors.push('unterminated ${ (write $${ for a literal ${)');
      value += text.slice(i);
      break;
    }
    const inner = text.slice(i + 2, close);
    const match = REFERENCE.exec(inner);
    const name = match?.[1];
    if (match === null || name === undefined) {
      errors.push(`invalid reference \${${inner}}: expected \${NAME} or \${NAME:-default} (write $\${ for a literal \${)`);
      value += text.slice(i, close + 1);
    } else {
      const fallback = match[2];
      const found = Object.hasOwn(env, name) ? env[name] : undefined;
      if (fallback !== undefined && (found === undefined || found === '')) {
        value += fallback;
      } else if (found === undefined) {
        errors.push(`environment variable ${name} is not set`);
        value += text.slice(i, close + 1);
      } else {
        value += found;
      }
    }
    i = close + 1;
  }
  return { value, errors };
}

const WHOLE_REFERENCE = /^\$\{[^}]*\}$/;

/**
 * An unquoted value that is exactly one reference (`concurrency: ${BACKER_CONCURRENCY:-2}`) is
 * typed as if its expansion had been written there, so numbers and booleans can come from the
 * environment. Quote it (`"${VAR}"`) to keep a string.
 */
function retype(text: string): string | number | boolean {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

/**
 * Expands references in every string value of a parsed YAML document, in place. Keys are left
 * alone. Returns one problem per reference that could not be expanded, at the value's path.
 */
export function expandEnvInDocument(doc: Document, env: Env, fileLabel: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const visit = (node: unknown, path: PathKey[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
        visit(pair.value, [...path, String(key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, [...path, index]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const original = node.value;
      const { value, errors } = expandString(original, env);
      for (const message of errors) problems.push({ where: whereIn(fileLabel, path), message });
      if (errors.length > 0) return;
      node.value = node.type === 'PLAIN' && WHOLE_REFERENCE.test(original) ? retype(value) : value;
    }
  };
  visit(doc.contents, []);
  return problems;
}
