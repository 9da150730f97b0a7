import { pipeline } from 'node:stream';
import { BackerError } from '../errors.js';
import { parseRef, type Ref } from '../config/refs.js';
import { openContainerRun, type ContainerRun } from './container-run.js';
import { CLIENT_TOOLS, COMPONENT, DUMP_TOOLS, openSession, sessionFor, type MysqlSession } from './mysql-client.js';
import { destinationOf, planMysqlRestore, runMysqlRestore } from './mysql-restore.js';
import { collectStats, drillChecks, dumpScanner, type MysqlStats } from './mysql-stats.js';
import { labelError, optionWhere, parseNameList, parseToolOptions, toolArgs, type ToolOptions } from './options.js';
import { defineSource, type Dump, type DumpContext, type OptionOrigin, type SourceInfo, type SourceTarget } from './types.js';

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

async function dump(options: MysqlOptions, target: SourceTarget, context: DumpContext): Promise<Dump> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const container = run.name;
  const user = await run.resolve(options.user);
  const password = options.password === null ? null : await run.resolve(options.password, { secret: true });
  const databases = parseDatabaseList(await run.resolve(options.database), (msg) =>
    new BackerError('LABEL_INVALID', `${optionWhere(context, container, 'mysql.database')}: ${msg}`, { component: COMPONENT, permanent: true }),
  );
  const { tool } = await run.probe(DUMP_TOOLS, { user: run.info.user });
  const client = await statsClient(run, user, password);

  const named = databases === '*' ? [] : databases;
  const args = dumpArgs(options, user, databases);
  context.logger.debug({ container, tool, args }, 'starting dump');
  // MYSQL_PWD (sessionFor): the documented environment variable for the password, so it never shows in argv.
  const handle = await run.exec([tool, ...args], { env: sessionFor(run, tool, user, password).env });
  let serverVersion: string | null = null;
  let stats: MysqlStats | null = null;
  const verified = run.verified(handle, tool, {
    // mysqldump's header names the server: "-- Server version\t10.11.6-MariaDB-0+deb12u1".
    onHead: (head) => (serverVersion = /^-- Server version\s+(.+)$/m.exec(head)?.[1]?.trim() ?? null),
    check: (tail) => (TRAILER.test(tail.toString('utf8')) ? null : 'ends without "-- Dump completed"'),
  });
  const scanner = dumpScanner(options.includeTables.length > 0 ? (named[0] ?? null) : null, async (objects) => {
    if (client !== null) stats = await collectStats(client, objects, qualify(options.ignoreData, named));
  });
  const stream = pipeline(verified, scanner, () => undefined);
  const sourceInfo = (): SourceInfo => ({
    type: 'mysql',
    container,
    image: run.info.image,
    databases: databases === '*' ? ['*'] : named,
    tool,
    server_version: serverVersion,
    ...(options.includeTables.length > 0 ? { include_tables: options.includeTables } : {}),
    ...(stats === null ? {} : { stats }),
  });
  return { stream, mime: 'application/sql', extension: '.sql', info: sourceInfo };
}

function dumpArgs(options: MysqlOptions, user: string, databases: string[] | '*'): string[] {
  const args = [`--user=${user}`, ...toolArgs(DEFAULTS, options.options)];
  const named = databases === '*' ? [] : databases;
  for (const t of qualify(options.ignoreTables, named)) args.push(`--ignore-table=${t}`);
  for (const t of qualify(options.ignoreData, named)) args.push(`--ignore-table-data=${t}`);
  if (databases === '*') args.push('--all-databases');
  else if (options.includeTables.length > 0) args.push(named[0] ?? '', ...options.includeTables);
  else args.push('--databases', ...named);
  return args;
}

/** The client for the row counts of `stats`; without one the backup records none (drills then only CHECK TABLE). */
async function statsClient(run: ContainerRun, user: string, password: string | null): Promise<MysqlSession | null> {
  try {
    const { tool } = await run.probe(CLIENT_TOOLS, { user: run.info.user });
    return sessionFor(run, tool, user, password);
  } catch (err) {
    if (!(err instanceof BackerError) || err.code !== 'TOOL_MISSING') throw err;
    run.context.logger.warn({ container: run.name }, `${err.message}: the backup records no row counts`);
    return null;
  }
}

export const mysqlSource = defineSource<MysqlOptions>({
  type: 'mysql',
  needsContainer: true,
  tools: ['mariadb-dump|mysqldump', 'mariadb|mysql'],
  databases: true,
  parse,
  dump,
  planRestore: (options, request, context) => planMysqlRestore(options, request, context),
  restore: (options, request, input, context) => runMysqlRestore(options, request, input, context),
  async check(options, request, context) {
    const run = await openContainerRun(context, destinationOf(request), COMPONENT);
    return drillChecks(await openSession(run, options), request);
  },
});
