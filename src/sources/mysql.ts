import { pipeline } from 'node:stream';
import { BackerError } from '../errors.js';
import { openContainerRun, type ContainerRun } from './container-run.js';
import { CLIENT_TOOLS, COMPONENT, DUMP_TOOLS, openSession, query, sessionFor, type MysqlSession } from './mysql-client.js';
import { destinationOf, planMysqlRestore, prepareMysqlRestore, runMysqlRestore } from './mysql-restore.js';
import { collectStats, drillChecks, dumpScanner, type MysqlStats } from './mysql-stats.js';
import { mysqlOptions, parseDatabaseList, type MysqlOptions } from './mysql-options.js';
import { optionWhere, toolArgs, type ToolOptions } from './options.js';
import { parseOptions } from './options-schema.js';
import { defineSource, type Dump, type DumpContext, type SourceInfo, type SourceTarget } from './types.js';

export type { MysqlOptions } from './mysql-options.js';

/** Consistent, complete dumps by default; each can be turned off with `options.<name>=false`. */
const DEFAULTS: ToolOptions = new Map<string, string | true | false>([
  ['single-transaction', true],
  ['routines', true],
  ['events', true],
  ['triggers', true],
  ['hex-blob', true],
]);

const TRAILER = /-- Dump completed( on [^\n]*)?\s*$/;

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

/**
 * `backer mandates test`: logs in as the dump would (the password in MYSQL_PWD, never argv),
 * lists the databases, and requires the named ones to exist. Reads nothing else.
 */
async function probeLogin(options: MysqlOptions, target: SourceTarget, context: DumpContext): Promise<string> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const session = await openSession(run, options);
  const databases = parseDatabaseList(await run.resolve(options.database), (msg) =>
    new BackerError('LABEL_INVALID', `${optionWhere(context, run.name, 'mysql.database')}: ${msg}`, { component: COMPONENT, permanent: true }),
  );
  const what = `${session.tool} login as user ${JSON.stringify(session.user)}`;
  const names = (await query(session, 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA', 'CHECK_FAILED', what)).map((r) => r[0] ?? '');
  const missing = databases === '*' ? [] : databases.filter((d) => !names.includes(d));
  if (missing.length > 0) {
    throw new BackerError('CHECK_FAILED', `container ${run.name} has no database ${missing.map((d) => JSON.stringify(d)).join(', ')}`, {
      component: COMPONENT,
      details: { container: run.name, missing },
    });
  }
  return `${what} accepted; ${databases === '*' ? `${names.length} databases` : `database ${databases.join(', ')} present`}`;
}

export const mysqlSource = defineSource<MysqlOptions>({
  type: 'mysql',
  needsContainer: true,
  tools: ['mariadb-dump|mysqldump', 'mariadb|mysql'],
  databases: true,
  options: mysqlOptions,
  parse: (raw, origin) => parseOptions(mysqlOptions, raw, origin),
  dump,
  planRestore: (options, request, context) => planMysqlRestore(options, request, context),
  restore: (options, request, input, context) => runMysqlRestore(options, request, input, context),
  prepareRestore: (options, request, context) => prepareMysqlRestore(options, request, context),
  async check(options, request, context) {
    const run = await openContainerRun(context, destinationOf(request), COMPONENT);
    return drillChecks(await openSession(run, options), request);
  },
  probe: { name: 'credentials accepted', run: probeLogin },
});
