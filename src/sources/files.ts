import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { access, constants, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { z } from 'zod';
import { BackerError, describeError } from '../errors.js';
import { childEnv } from '../util/child-env.js';
import { TailBuffer } from './docker-exec.js';
import { checkFiles, planFilesRestore, restoreFiles } from './files-restore.js';
import { TarScanner, TreeHasher } from './tar-scan.js';
import { optionalString, optionIssue, parseOptions, type OptionsSpec } from './options-schema.js';
import { defineSource, type Dump, type DumpContext } from './types.js';

export interface FilesOptions {
  /** Absolute host directory to archive. Required. */
  path: string;
  /**
   * Globs relative to `path` (`**` any depth, `*`, `?`, `[a-z]`, `{a,b}`; dot files match like
   * any other name; a trailing `/` matches directories only). Only matching entries are
   * archived, a matching directory with all its content. Default: none (everything).
   */
  include: string[];
  /** GNU tar `--exclude` patterns (a name at any depth; `*` also matches `/`). Default: none. */
  exclude: string[];
}

const COMPONENT = 'source files';

/** Splits a comma list of globs at the commas outside `{…}` and `[…]` (so `{a,b}` stays whole). */
export function splitPatterns(raw: string): string[] {
  const out: string[] = [];
  let current = '';
  let braces = 0;
  let inClass = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\' && i + 1 < raw.length) {
      current += c + (raw[++i] as string);
      continue;
    }
    if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '{') braces++;
    else if (c === '}' && braces > 0) braces--;
    else if (c === ',' && braces === 0) {
      out.push(current.trim());
      current = '';
      continue;
    }
    current += c;
  }
  out.push(current.trim());
  return out.filter((p) => p !== '');
}

const REGEX_SPECIAL = /[.+^$()|\\/]/;

/**
 * Compiles a glob (see FilesOptions.include) to a RegExp over `/`-separated relative paths.
 * Own implementation because path.matchesGlob is experimental on Node 20 (missing before 20.17)
 * and never matches dot files. Throws an Error describing a malformed pattern.
 */
export function compileGlob(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    const segmentStart = i === 0 || glob[i - 1] === '/';
    if (c === '*' && glob[i + 1] === '*' && segmentStart && glob[i + 2] === '/') {
      re += '(?:[^/]*/)*'; // `**/`: zero or more directories
      i += 2;
    } else if (c === '*' && glob[i + 1] === '*' && segmentStart && i + 2 === glob.length) {
      // A trailing `**`: everything; `dir/**` is dir and everything below it.
      re = i === 0 ? '.*' : `${re.slice(0, -2)}(?:/.*)?`;
      i += 1;
    } else if (c === '*') {
      while (glob[i + 1] === '*') i++;
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) throw new Error(`unclosed "[" in ${JSON.stringify(glob)}`);
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      if (body === '') throw new Error(`empty character class in ${JSON.stringify(glob)}`);
      // `/` never matches inside a class: classes match within one path segment.
      re += `(?!/)[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = close;
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === ',' && braces > 0) {
      re += '|';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === '\\') {
      const next = glob[++i];
      if (next === undefined) throw new Error(`trailing "\\" in ${JSON.stringify(glob)}`);
      re += /[a-zA-Z0-9]/.test(next) ? next : `\\${next}`;
    } else {
      re += REGEX_SPECIAL.test(c) || '[]{}?*'.includes(c) ? `\\${c}` : c;
    }
  }
  if (braces > 0) throw new Error(`unclosed "{" in ${JSON.stringify(glob)}`);
  return new RegExp(`^${re}$`);
}

type IncludeMatcher = (relative: string, isDirectory: boolean) => boolean;

/** One include glob as a matcher of `/`-separated paths relative to files.path; throws on a bad glob. */
export function includeMatcher(pattern: string): IncludeMatcher {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(pattern)) throw new Error('globs may not contain control characters such as newlines');
  const relative = pattern.replace(/^(\.\/)+/, '');
  if (relative.startsWith('/')) throw new Error(`"${pattern}" is absolute: globs are relative to files.path`);
  if (relative.split('/').includes('..')) throw new Error(`"${pattern}" leaves files.path ("..")`);
  const dirOnly = relative.endsWith('/');
  const body = relative.replace(/\/+$/, '');
  if (body === '' || body === '.') throw new Error(`"${pattern}" names files.path itself: name entries below it, e.g. ** for all`);
  const re = compileGlob(body);
  return (rel, isDir) => (!dirOnly || isDir) && re.test(rel);
}

/** A comma list of patterns: every malformed pattern is a problem at `key`. */
function patternList(key: string, empty: string, problemOf: (pattern: string) => string | null): z.ZodType<string[], string | undefined> {
  return optionalString().transform((raw, ctx) => {
    if (raw === undefined) return [];
    const patterns = splitPatterns(raw);
    if (patterns.length === 0) optionIssue(ctx, key, empty);
    for (const pattern of patterns) {
      const problem = problemOf(pattern);
      if (problem !== null) optionIssue(ctx, key, problem);
    }
    return patterns;
  });
}

function includeProblem(pattern: string): string | null {
  try {
    includeMatcher(pattern);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function excludeProblem(pattern: string): string | null {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(pattern) ? 'patterns may not contain control characters such as newlines' : null;
}

/** The host directory to archive: required and absolute. */
const directory = optionalString().transform((raw, ctx) => {
  if (raw === undefined || raw === '') optionIssue(ctx, 'path', 'expected the directory to back up');
  else if (!isAbsolute(raw)) optionIssue(ctx, 'path', `expected an absolute path, got "${raw}"`);
  return raw ?? '';
});

/** `files.*` of a static mandate: the directory (required) and the globs that select and exclude. */
export const filesOptions: OptionsSpec<FilesOptions> = {
  type: 'files',
  keys: ['path', 'include', 'exclude'],
  schema: z.object({
    path: directory,
    include: patternList('include', 'expected a comma list of globs relative to files.path, e.g. **/*.log,uploads', includeProblem),
    exclude: patternList('exclude', 'expected a comma list of tar --exclude patterns, e.g. *.tmp,cache', excludeProblem),
  }),
};

/**
 * The entries that match an include glob, as NUL-terminated `./relative` names for `tar -T -`.
 * A matching directory is listed once and tar recurses into it, so that tar's own --exclude
 * prunes it like everywhere else (listing every file with --no-recursion would not: an excluded
 * directory's listed children would still be archived). Symlinks are never followed.
 */
async function* includedNames(root: string, matchers: IncludeMatcher[], counter: { count: number }): AsyncGenerator<Buffer> {
  async function* walk(relative: string): AsyncGenerator<Buffer> {
    const entries = await readdir(relative === '' ? root : join(root, relative), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const isDir = entry.isDirectory();
      if (matchers.some((matches) => matches(rel, isDir))) {
        counter.count++;
        yield Buffer.from(`./${rel}\0`);
      } else if (isDir) {
        yield* walk(rel);
      }
    }
  }
  yield* walk('');
}

/** The directory to archive must exist and be a directory. */
async function checkDirectory(path: string): Promise<void> {
  const info = await stat(path).catch((err: unknown) => {
    throw new BackerError('DUMP_FAILED', `cannot read ${path}`, { component: COMPONENT, details: { path }, cause: err });
  });
  if (!info.isDirectory()) throw new BackerError('DUMP_FAILED', `${path} is not a directory`, { component: COMPONENT, details: { path } });
}

interface Tar {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  stderr: TailBuffer;
  /** tar's exit code (-1: it could not start or was killed). */
  exited: Promise<number>;
}

/** Starts tar over `options.path`: the whole tree, or the names it reads on stdin (files.include). */
function startTar(options: FilesOptions, selecting: boolean, signal: AbortSignal): Tar {
  // Each pattern is one argv element (no shell); tar applies them while it recurses.
  const args = ['-C', options.path, ...options.exclude.map((p) => `--exclude=${p}`)];
  if (selecting) args.push('--null', '--verbatim-files-from', '-cf', '-', '-T', '-');
  else args.push('-cf', '-', '.');
  // tar gets PATH only: Backer's environment holds cloud and encryption keys (see childEnv).
  const child = spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'], signal, env: childEnv() });
  child.stdin.on('error', () => undefined); // tar gone: its exit code tells why
  const stderr = new TailBuffer(4096);
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<number>((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code ?? -1));
  });
  return { child, stderr, exited };
}

/**
 * Feeds tar the names files.include selects (none: closes its stdin). Returns the listing's
 * failure, once known (tar is stopped then).
 */
function feedNames(tar: Tar, options: FilesOptions, matchers: IncludeMatcher[], context: DumpContext): () => unknown {
  let listError: unknown;
  if (matchers.length === 0) {
    tar.child.stdin.end();
    return () => listError;
  }
  const counter = { count: 0 };
  const list = Readable.from(includedNames(options.path, matchers, counter));
  list.on('error', (err) => {
    listError = err;
    tar.child.kill('SIGTERM');
  });
  list.on('end', () => {
    if (counter.count === 0) context.logger.warn({ path: options.path, include: options.include }, 'no entry matches files.include: the archive is empty');
  });
  list.pipe(tar.child.stdin);
  return () => listError;
}

/** Why the archive failed once tar exited (null: it succeeded). */
function tarVerdict(path: string, code: number, stderr: TailBuffer, listError: unknown): BackerError | null {
  if (listError !== undefined) {
    return new BackerError('DUMP_FAILED', `cannot list the files of ${path} for files.include: ${describeError(listError)}`, { component: COMPONENT, details: { path }, cause: listError });
  }
  if (code === 0) return null;
  return new BackerError('DUMP_FAILED', `tar of ${path} exited with code ${code}: ${stderr.toString().trim()}`, { component: COMPONENT, details: { path, exit_code: code } });
}

/** Archives a host directory as a tar stream (static mandates only: there is no container). */
async function dump(options: FilesOptions, _target: { container: string | null }, context: DumpContext): Promise<Dump> {
  await checkDirectory(options.path);
  const matchers = options.include.map(includeMatcher); // validated by parse
  const tar = startTar(options, matchers.length > 0, context.signal);
  const listError = feedNames(tar, options, matchers, context);
  // The stream ends with tar's verdict: a failed tar fails the backup, never a short archive.
  const verify = new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      void tar.exited.then((code) => callback(tarVerdict(options.path, code, tar.stderr, listError())));
    },
  });
  // The drill's reference (files, bytes, tree_sha256), hashed in process while the archive streams.
  const tree = new TreeHasher();
  const scanner = new TarScanner(undefined, tree);
  tar.child.stdout.on('error', (err) => verify.destroy(err));
  scanner.on('error', (err) => verify.destroy(err));
  verify.on('close', () => {
    if (tar.child.exitCode === null) tar.child.kill('SIGTERM');
  });
  tar.child.stdout.pipe(scanner).pipe(verify);
  const extra = { ...(options.include.length ? { include: options.include } : {}), ...(options.exclude.length ? { exclude: options.exclude } : {}) };
  return {
    stream: verify,
    mime: 'application/x-tar',
    extension: '.tar',
    info: () => ({ type: 'files', container: null, image: null, databases: [], paths: [options.path], ...extra, stats: tree.stats() }),
  };
}

/** `backer mandates test`: the directory exists and Backer may list and enter it (its files are read by tar). */
async function probePath(options: FilesOptions): Promise<string> {
  try {
    const info = await stat(options.path);
    if (!info.isDirectory()) throw new Error('not a directory');
    await access(options.path, constants.R_OK | constants.X_OK);
    const entries = await readdir(options.path);
    return `${options.path} readable (${entries.length} entries at the top)`;
  } catch (err) {
    throw new BackerError('CHECK_FAILED', `cannot read ${options.path}: ${describeError(err)}`, { component: COMPONENT, details: { path: options.path }, cause: err });
  }
}

export const filesSource = defineSource<FilesOptions>({
  type: 'files',
  needsContainer: false,
  hostOnly: true,
  tools: ['tar'],
  databases: false,
  options: filesOptions,
  parse: (raw, origin) => parseOptions(filesOptions, raw, origin),
  dump,
  planRestore: planFilesRestore,
  restore: restoreFiles,
  check: checkFiles,
  probe: { name: 'path readable', run: (options) => probePath(options) },
  toolsIn: 'host',
});
