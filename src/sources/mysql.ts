import { Transform, type TransformCallback } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import { parseRef, type Ref } from '../config/refs.js';
import { resolveInContainer } from './resolve.js';
import { execCapture, execStream, lastLines, runningContainer, TailBuffer, type ContainerInfo } from './docker-exec.js';
import { labelError, optionWhere, parseNameList, parseToolOptions, toolArgs, type ToolOptions } from './options.js';
import type { Dump, DumpContext, OptionOrigin, SourceDefinition, SourceInfo } from './types.js';

export interface MysqlOptions {
  /** Default `Text:root`. */
  user: Ref;
  /** Default: none (socket authentication). */
  password: Ref | null;
  /** One name, a comma list or `*` (every database). Default `*`. */
  database: Ref;
  ignoreTables: string[];
  includeTables: string[];
  ignoreData: string[];
  options: ToolOptions;
}

const COMPONENT = 'source mysql';
const KNOWN_KEYS = new Set(['user', 'password', 'database', 'ignore_tables', 'include_tables', 'ignore_data']);
const TABLE_NAME = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)?$/;
const DATABASE_NAME = /^[A-Za-z0-9_$-]+$/;

/**
 * Options Backer sets itself, and options that would change the output so that completeness can
 * no longer be verified (no trailer) or would write elsewhere than stdout.
 */
const REFUSED = new Set([
  'all-databases', 'databases', 'ignore-table', 'ignore-table-data', 'host', 'user', 'password', 'result-file',
  'defaults-file', 'defaults-extra-file', 'defaults-group-suffix', 'login-path', 'no-defaults', 'print-defaults',
  'tab', 'xml', 'compact', 'skip-comments', 'comments', 'help', 'version', 'tables',
]);

/** Consistent, complete dumps by default; each can be turned off with `options.<name>=false`. */
const DEFAULTS: ToolOptions = new Map<string, string | true | false>([
  ['single-transaction', true],
  ['routines', true],
  ['events', true],
  ['triggers', true],
  ['hex-blob', true],
]);

const TRAILER = /-- Dump completed( on [^\n]*)?\s*$/;

function parse(raw: Record<string, string>, origin: OptionOrigin): MysqlOptions {
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key) && !key.startsWith('options.')) {
      throw labelError(origin, key, `unknown mysql option; known: ${[...KNOWN_KEYS].join(', ')}, options.<mysqldump option>`);
    }
  }
  const includeTables = parseNameList(raw.include_tables, origin, 'include_tables', TABLE_NAME);
  const database = parseRef(raw.database ?? '*');
  if (includeTables.length > 0 && database.kind !== 'env' && database.kind !== 'file') {
    const value = database.value;
    if (value === '*' || value.includes(',')) throw labelError(origin, 'include_tables', 'include_tables needs exactly one database in backer.mysql.database');
  }
  if (database.kind === 'text' || database.kind === 'literal') {
    parseDatabaseList(database.value, (msg) => labelError(origin, 'database', msg));
  }
  return {
    user: parseRef(raw.user ?? 'Text:root'),
    password: raw.password === undefined ? null : parseRef(raw.password),
    database,
    ignoreTables: parseNameList(raw.ignore_tables, origin, 'ignore_tables', TABLE_NAME),
    includeTables,
    ignoreData: parseNameList(raw.ignore_data, origin, 'ignore_data', TABLE_NAME),
    options: parseToolOptions(raw, REFUSED, origin, 'set it with the backer.mysql.* labels instead, or it would break verification'),
  };
}

function parseDatabaseList(value: string, fail: (message: string) => Error): string[] | '*' {
  const trimmed = value.trim();
  if (trimmed === '*') return '*';
  const names = trimmed.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw fail('expected a database name, a comma list or *');
  for (const n of names) if (!DATABASE_NAME.test(n)) throw fail(`"${n}" is not a valid database name`);
  return names;
}

/** `t1` is qualified with every dumped database; `db.t1` is taken as is. */
function qualify(tables: string[], databases: string[]): string[] {
  return tables.flatMap((t) => (t.includes('.') ? [t] : databases.map((d) => `${d}.${t}`)));
}

async function findTool(docker: Docker, container: string, user: string): Promise<string> {
  for (const tool of ['mariadb-dump', 'mysqldump']) {
    try {
      const { exitCode } = await execCapture(docker, container, { cmd: [tool, '--version'], user }, COMPONENT);
      if (exitCode === 0) return tool;
    } catch (err) {
      if (err instanceof BackerError && err.code !== 'DOCKER_UNAVAILABLE') throw err;
    }
  }
  throw new BackerError('TOOL_MISSING', `container ${container} has neither mariadb-dump nor mysqldump on its PATH`, {
    component: COMPONENT,
    details: { container },
    permanent: true,
  });
}

function resolve(ref: Ref, info: ContainerInfo, context: DumpContext, secret = false): Promise<string> {
  return resolveInContainer(ref, info, context, COMPONENT, { secret });
}

/**
 * Checks the end of the dump while it streams: the stream ends only if the tool exited 0 and
 * the dump ends with mysqldump's completion trailer; otherwise it errors, so the targets abort.
 */
function verifier(
  result: () => Promise<{ exitCode: number; stderr: string }>,
  container: string,
  tool: string,
  onHeader: (header: string) => void,
): Transform {
  const tail = new TailBuffer(256);
  let head = '';
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      tail.push(chunk);
      if (head.length < 2048) {
        head += chunk.subarray(0, 2048 - head.length).toString('utf8');
        if (head.length >= 2048 || head.includes('\n\n')) onHeader(head);
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      result().then(
        ({ exitCode, stderr }) => {
          const reason = lastLines(stderr);
          if (exitCode !== 0) {
            callback(new BackerError('DUMP_FAILED', `${tool} in container ${container} exited with code ${exitCode}${reason ? `: ${reason}` : ''}`, {
              component: COMPONENT,
              details: { container, exit_code: exitCode },
            }));
          } else if (!TRAILER.test(tail.toString())) {
            callback(new BackerError('DUMP_TRUNCATED', `${tool} output from container ${container} ends without "-- Dump completed": the dump is incomplete`, {
              component: COMPONENT,
              details: { container },
            }));
          } else {
            callback();
          }
        },
        (err: unknown) => callback(err as Error),
      );
    },
  });
}

async function dump(options: MysqlOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'mysql mandates need a container', { component: COMPONENT, permanent: true });
  const info = await runningContainer(context.docker, container, COMPONENT);
  const user = await resolve(options.user, info, context);
  const password = options.password === null ? null : await resolve(options.password, info, context, true);
  const databaseValue = await resolve(options.database, info, context);
  const databases = parseDatabaseList(databaseValue, (msg) =>
    new BackerError('LABEL_INVALID', `${optionWhere(context, container, 'mysql.database')}: ${msg}`, { component: COMPONENT, permanent: true }),
  );
  const tool = await findTool(context.docker, container, info.user);

  const args = [`--user=${user}`, ...toolArgs(DEFAULTS, options.options)];
  const named = databases === '*' ? [] : databases;
  for (const t of qualify(options.ignoreTables, named)) args.push(`--ignore-table=${t}`);
  for (const t of qualify(options.ignoreData, named)) args.push(`--ignore-table-data=${t}`);
  if (databases === '*') args.push('--all-databases');
  else if (options.includeTables.length > 0) args.push(named[0] ?? '', ...options.includeTables);
  else args.push('--databases', ...named);

  context.logger.debug({ container, tool, args }, 'starting dump');
  // MYSQL_PWD: the documented environment variable for the password, so it never shows in argv.
  const handle = await execStream(
    context.docker,
    container,
    { cmd: [tool, ...args], env: password === null ? [] : [`MYSQL_PWD=${password}`], signal: context.signal },
    COMPONENT,
  );
  let serverVersion: string | null = null;
  // mysqldump's header names the server: "-- Server version\t10.11.6-MariaDB-0+deb12u1".
  const stream = handle.stdout.pipe(
    verifier(() => handle.result(), container, tool, (header) => {
      serverVersion ??= /^-- Server version\s+(.+)$/m.exec(header)?.[1]?.trim() ?? null;
    }),
  );
  handle.stdout.on('error', (err) => stream.destroy(err));
  stream.on('close', () => {
    if (!handle.stdout.destroyed) handle.stdout.destroy();
  });
  const sourceInfo = (): SourceInfo => ({
    type: 'mysql',
    container,
    image: info.image,
    databases: databases === '*' ? ['*'] : named,
    tool,
    server_version: serverVersion,
  });
  return { stream, mime: 'application/sql', extension: '.sql', info: sourceInfo };
}

export const mysqlSource: SourceDefinition<MysqlOptions> = { type: 'mysql', needsContainer: true, parse, dump };
