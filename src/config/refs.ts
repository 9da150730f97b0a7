import { BackerError } from '../errors.js';

/**
 * A value in a label or static mandate that may point somewhere else, so that secrets need not
 * be written into labels:
 * - `Text:literal` — the text after the prefix, verbatim (to write a value that starts with `Env:`);
 * - `Env:NAME` — variable NAME of the container's environment;
 * - `File:/path` — a file inside the container (e.g. a Docker secret), one trailing newline trimmed;
 * - anything else — the literal value.
 */
export type Ref =
  | { kind: 'literal'; value: string }
  | { kind: 'text'; value: string }
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string };

export interface RefContext {
  /** The container's environment. */
  env: Record<string, string>;
  /** Reads a file inside the container. */
  readFile(path: string): Promise<string>;
}

/** What an `Env:` reference may name. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseRef(value: string): Ref {
  if (value.startsWith('Text:')) return { kind: 'text', value: value.slice('Text:'.length) };
  if (value.startsWith('Env:')) return { kind: 'env', name: value.slice('Env:'.length) };
  if (value.startsWith('File:')) return { kind: 'file', path: value.slice('File:'.length) };
  return { kind: 'literal', value };
}

/** How a ref is named in messages; never its resolved value. */
export function describeRef(ref: Ref): string {
  switch (ref.kind) {
    case 'env':
      return `Env:${ref.name}`;
    case 'file':
      return `File:${ref.path}`;
    default:
      return 'literal value';
  }
}

/** Resolves a ref. Throws SECRET_UNRESOLVED naming the variable or file, never a value. */
export async function resolveRef(ref: Ref, context: RefContext): Promise<string> {
  switch (ref.kind) {
    case 'literal':
    case 'text':
      return ref.value;
    case 'env': {
      const value = Object.hasOwn(context.env, ref.name) ? context.env[ref.name] : undefined;
      if (value === undefined) {
        throw new BackerError('SECRET_UNRESOLVED', `environment variable ${ref.name} is not set in the container`, {
          component: 'config',
          details: { ref: describeRef(ref), variable: ref.name },
          permanent: true,
        });
      }
      return value;
    }
    case 'file': {
      let content: string;
      try {
        content = await context.readFile(ref.path);
      } catch (err) {
        throw new BackerError('SECRET_UNRESOLVED', `cannot read ${ref.path} in the container`, {
          component: 'config',
          details: { ref: describeRef(ref), path: ref.path },
          cause: err,
        });
      }
      // Files written with `echo` end in a newline that is not part of the secret.
      return content.replace(/\r?\n$/, '');
    }
  }
}
