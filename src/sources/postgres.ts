import { Readable } from 'node:stream';
import { BackerError } from '../errors.js';
import { openContainerRun, type CompletenessCheck } from './container-run.js';
import { optionWhere, toolArgs } from './options.js';
import { parseOptions } from './options-schema.js';
import { COMPONENT, connect, conninfoDbname, psqlFields, requireTools, tableCounts, type PgConnection } from './postgres-conn.js';
import { PREEXISTING } from './postgres-plain.js';
import { check, planRestore, restore } from './postgres-restore.js';
import { CUSTOM_ONE_DATABASE, parseDatabaseList, postgresOptions, type PostgresOptions } from './postgres-options.js';
import { defineSource, type Dump, type DumpContext, type SourceDefinition, type SourceInfo, type SourceTarget } from './types.js';

export type { PostgresFormat, PostgresOptions } from './postgres-options.js';

/** pg_dump writes this last on success; 15.14+ adds `\unrestrict <key>` after it. */
const DUMP_TRAILER = /\n-- PostgreSQL database dump complete\n--\n\s*(\\unrestrict [^\n]*\s*)?$/;
const GLOBALS_TRAILER = /\n-- PostgreSQL database cluster dump complete\n--\s*$/;
const CUSTOM_MAGIC = 'PGDMP';
const LIST_DATABASES = 'SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1';

/** Server version and, for `*`, the databases; also fails fast (before any byte is stored) on a bad password. */
async function probe(conn: PgConnection, databases: string[] | '*', databaseWhere: string): Promise<{ serverVersion: string; databases: string[] }> {
  // pg_dumpall's choice for `*`: the `postgres` database, else template1.
  const candidates = databases === '*' ? ['postgres', 'template1'] : [databases[0] ?? 'postgres'];
  let failure = '';
  for (const [i, db] of candidates.entries()) {
    const list = databases === '*' ? LIST_DATABASES : 'SELECT datname FROM pg_database';
    const result = await psqlFields(conn, db, ['SHOW server_version', list]);
    if ('fields' in result) {
      const [serverVersion = '', ...names] = result.fields;
      if (databases === '*') return { serverVersion, databases: names };
      // Checked up front, so that a typo fails before any byte is stored rather than after the first databases.
      const missing = databases.filter((d) => !names.includes(d));
      if (missing.length > 0) {
        throw new BackerError('DUMP_FAILED', `container ${conn.container} has no database ${missing.map((d) => JSON.stringify(d)).join(', ')} (from ${databaseWhere})`, {
          component: COMPONENT,
          details: { container: conn.container, missing },
        });
      }
      return { serverVersion, databases };
    }
    failure = result.failure;
    if (!(i + 1 < candidates.length && /database ".*" does not exist/.test(failure))) break;
  }
  throw new BackerError('DUMP_FAILED', `psql in container ${conn.container} cannot connect to PostgreSQL as user ${JSON.stringify(conn.user)}: ${failure}`, {
    component: COMPONENT,
    details: { container: conn.container, user: conn.user },
  });
}

interface Part {
  /** `database shop` or `globals`, for messages. */
  what: string;
  cmd: string[];
  /** Written before the tool's output. */
  prefix: string;
  check: 'plain' | 'globals' | 'custom';
}

/** The completion check of one part: the trailer of plain SQL, the magic of a custom archive. */
function completeness(check: Part['check']): CompletenessCheck {
  if (check === 'custom') {
    let head = '';
    return {
      onHead: (h) => (head = h),
      check: () => (head.startsWith(CUSTOM_MAGIC) ? null : `was expected to start with "${CUSTOM_MAGIC}"`),
    };
  }
  const trailer = check === 'plain' ? DUMP_TRAILER : GLOBALS_TRAILER;
  const name = check === 'plain' ? 'database' : 'database cluster';
  return { tailBytes: 512, check: (tail) => (trailer.test(tail.toString('utf8')) ? null : `was expected to end with "-- PostgreSQL ${name} dump complete"`) };
}

/**
 * Runs the parts one after another into one stream. Each tool must exit 0 (checked before the
 * next starts) and its output must end with its completion trailer (plain) or start with the
 * archive magic (custom); otherwise the stream errors and the targets abort.
 */
async function* produce(conn: PgConnection, parts: Part[], context: DumpContext): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (part.prefix !== '') yield Buffer.from(part.prefix);
    context.logger.debug({ container: conn.container, cmd: part.cmd }, `dumping ${part.what}`);
    const label = `${part.cmd[0] ?? 'pg_dump'} of ${part.what}`;
    const handle = await conn.run.exec(part.cmd, { env: conn.env, user: conn.execUser });
    try {
      for await (const chunk of conn.run.verified(handle, label, completeness(part.check))) yield chunk as Buffer;
    } catch (err) {
      if (context.signal.aborted || (err instanceof BackerError && err.message.startsWith(label))) throw err;
      throw new BackerError('DUMP_FAILED', `${label} in container ${conn.container} did not finish: the container or its exec went away during the dump`, {
        component: COMPONENT,
        details: { container: conn.container },
        cause: err,
      });
    }
  }
}

/**
 * pg_dump options that choose what is dumped: with one of them the tables counted at dump time
 * are not the tables the dump holds, so no row counts are recorded for drills.
 */
const SELECTING = ['schema', 'exclude-schema', 'table', 'exclude-table', 'exclude-table-data', 'schema-only', 'extension', 'exclude-extension'];

/**
 * Exact row counts (`db.schema.table`), taken just before each database is dumped. pg_dump reads
 * its own snapshot a moment later, so rows written in between make a drill report a difference:
 * drills compare against backups of quiet databases, or of ones where that is what they should see.
 */
async function countTables(conn: PgConnection, databases: string[], options: PostgresOptions): Promise<Record<string, number> | undefined> {
  if ([...options.options.keys()].some((name) => SELECTING.some((s) => s.startsWith(name)))) return undefined;
  const tables: Record<string, number> = {};
  for (const db of databases) {
    for (const [table, rows] of await tableCounts(conn, db, 'DUMP_FAILED')) tables[`${db}.${table}`] = rows;
  }
  return tables;
}

function dumpParts(options: PostgresOptions, databases: string[], args: string[]): Part[] {
  const parts: Part[] = [];
  if (options.globals) parts.push({ what: 'globals', cmd: ['pg_dumpall', ...args, '--globals-only'], prefix: '', check: 'globals' });
  const userArgs = toolArgs(new Map(), options.options);
  for (const db of databases) {
    const plain = options.format === 'plain';
    // Plain dumps recreate and \connect to each database, so one artifact restores with `psql -f`.
    const create = plain && !PREEXISTING.has(db);
    parts.push({
      what: `database ${JSON.stringify(db)}`,
      cmd: ['pg_dump', ...args, `--format=${options.format}`, ...(create ? ['--create'] : []), ...userArgs, `--dbname=${conninfoDbname(db)}`],
      prefix: plain && !create ? `\n\\connect ${db}\n\n` : '',
      check: plain ? 'plain' : 'custom',
    });
  }
  return parts;
}

async function dump(options: PostgresOptions, target: SourceTarget, context: DumpContext): Promise<Dump> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const conn = await connect(run, options);
  const databaseWhere = optionWhere(context, run.name, 'postgres.database');
  const labelFail = (msg: string): BackerError => new BackerError('LABEL_INVALID', `${databaseWhere}: ${msg}`, { component: COMPONENT, permanent: true });
  const requested = parseDatabaseList(await run.resolve(options.database, { execUser: conn.execUser }), labelFail);
  if (options.format === 'custom' && (requested === '*' || requested.length > 1)) throw labelFail(CUSTOM_ONE_DATABASE);

  const toolVersion = (await requireTools(conn, ['pg_dump', 'psql', ...(options.globals ? ['pg_dumpall'] : [])])).get('pg_dump') ?? '';
  const { serverVersion, databases } = await probe(conn, requested, databaseWhere);
  if (databases.length === 0) {
    throw new BackerError('DUMP_FAILED', `container ${run.name} has no database to dump (none is both non-template and open for connections)`, {
      component: COMPONENT,
      details: { container: run.name },
    });
  }
  const tables = await countTables(conn, databases, options);
  const stream = Readable.from(produce(conn, dumpParts(options, databases, conn.args), context), { objectMode: false });
  const sourceInfo: SourceInfo = {
    type: 'postgres',
    container: run.name,
    image: run.info.image,
    databases,
    format: options.format,
    globals: options.globals,
    server_version: serverVersion,
    tool: 'pg_dump',
    tool_version: toolVersion,
    stats: tables === undefined ? { databases } : { databases, tables },
  };
  return options.format === 'plain'
    ? { stream, mime: 'application/sql', extension: '.sql', info: () => sourceInfo }
    : { stream, mime: 'application/vnd.postgresql.custom', extension: '.dump', info: () => sourceInfo };
}

/**
 * `backer mandates test`: connects as the dump would (PGPASSWORD, never argv), reads the server
 * version and requires the named databases to exist. Dumps nothing.
 */
async function probeLogin(options: PostgresOptions, target: SourceTarget, context: DumpContext): Promise<string> {
  const run = await openContainerRun(context, target.container, COMPONENT);
  const conn = await connect(run, options);
  const databaseWhere = optionWhere(context, run.name, 'postgres.database');
  const labelFail = (msg: string): BackerError => new BackerError('LABEL_INVALID', `${databaseWhere}: ${msg}`, { component: COMPONENT, permanent: true });
  const requested = parseDatabaseList(await run.resolve(options.database, { execUser: conn.execUser }), labelFail);
  try {
    const { serverVersion, databases } = await probe(conn, requested, databaseWhere);
    return `psql login as user ${JSON.stringify(conn.user)} accepted (PostgreSQL ${serverVersion}); ${databases.length} database(s): ${databases.join(', ')}`;
  } catch (err) {
    if (!(err instanceof BackerError && err.code === 'DUMP_FAILED')) throw err;
    throw new BackerError('CHECK_FAILED', err.message, { component: COMPONENT, details: err.details });
  }
}

export const postgresSource: SourceDefinition<PostgresOptions> = defineSource<PostgresOptions>({
  type: 'postgres',
  needsContainer: true,
  options: postgresOptions,
  parse: (raw, origin) => parseOptions(postgresOptions, raw, origin),
  tools: ['pg_dump', 'psql', 'pg_restore'],
  databases: true,
  dump,
  planRestore,
  restore,
  check,
  probe: { name: 'credentials accepted', run: probeLogin },
});
