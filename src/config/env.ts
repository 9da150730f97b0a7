import { isMap, isPair, isScalar, isSeq, type Document } from 'yaml';
import { whereIn, type ConfigProblem, type PathKey } from './problems.js';

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
 * The names referenced (expanded or defaulted) are added to `variables`, once each.
 */
export function expandString(text: string, env: Env, variables: string[] = []): ExpandResult {
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
      if (!variables.includes(name)) variables.push(name);
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

/** A value of the config that came (in whole or in part) from the environment. */
export interface Expansion {
  /** Where it is in the document, e.g. `['middleware', 0, 'key']`. */
  path: PathKey[];
  /** The variables it references, e.g. `['CCRYPT_KEY']`: errors name them instead of the value. */
  variables: string[];
  /** The expanded text. */
  text: string;
  /**
   * An unquoted value that is exactly one reference (`concurrency: ${BACKER_CONCURRENCY:-2}`) may
   * become a number or boolean, as if its expansion had been written there, but only where the
   * schema does not take a string (see retypeExpansions). Quote it (`"${VAR}"`) to keep a string.
   */
  retypable: boolean;
}

export interface ExpandDocumentResult {
  /** One problem per reference that could not be expanded, at the value's path. */
  problems: ConfigProblem[];
  expansions: Expansion[];
}

/**
 * Expands references in every string value of a parsed YAML document, in place; every expanded
 * value stays a string (a secret of digits must not become a number). Keys are left alone.
 */
export function expandEnvInDocument(doc: Document, env: Env, fileLabel: string): ExpandDocumentResult {
  const problems: ConfigProblem[] = [];
  const expansions: Expansion[] = [];
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
      const variables: string[] = [];
      const { value, errors } = expandString(original, env, variables);
      for (const message of errors) problems.push({ where: whereIn(fileLabel, path), message });
      if (errors.length > 0) return;
      node.value = value;
      if (variables.length > 0) {
        expansions.push({ path, variables, text: value, retypable: node.type === 'PLAIN' && WHOLE_REFERENCE.test(original) });
      }
    }
  };
  visit(doc.contents, []);
  return { problems, expansions };
}
