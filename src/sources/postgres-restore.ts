import { pipeline, Readable, type Transform } from 'node:stream';
import { BackerError } from '../errors.js';
import { openContainerRun } from './container-run.js';
import { COMPONENT, connect, conninfoDbname, majorVersion, psqlFields, requireTools, sqlIdent, tableCounts, type ConnectionOptions, type PgConnection } from './postgres-conn.js';
import { dropDatabase, plainRestoreTransform } from './postgres-plain.js';
import type { DrillCheck, DumpContext, RestorePlan, RestoreRequest, SourceInfo } from './types.js';

/** NAMEDATALEN - 1 */
const MAX_NAME_BYTES = 63;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** What a restore applies, checked against the manifest before anything is touched. */
interface Restoring {
  conn: PgConnection;
  format: 'plain' | 'custom';
  /** Dumped database → name in the destination, for every database restored. */
  targets: Map<string, string>;
  serverVersion: string;
  serverMajor: number;
}

function refused(message: string, details: Record<string, unknown> = {}): BackerError {
  return new BackerError('RESTORE_REFUSED', message, { component: COMPONENT, details, permanent: true });
}

function destinationContainer(request: RestoreRequest): string {
  if (request.destination.kind !== 'container') {
    throw refused(`a postgres backup restores into a running PostgreSQL container, not into a ${request.destination.kind}`);
  }
  return request.destination.container;
}

function dumpedDatabases(info: SourceInfo): string[] {
  return Array.isArray(info.databases) ? info.databases.filter((d): d is string => typeof d === 'string') : [];
}

/** `--database FROM:TO`: FROM must be dumped, each TO a valid name used once. Empty: every database as it was. */
function restoreTargets(request: RestoreRequest): Map<string, string> {
  const dumped = dumpedDatabases(request.manifest);
  if (request.databases.size === 0) return new Map(dumped.map((d) => [d, d]));
  const seen = new Set<string>();
  for (const [from, to] of request.databases) {
    if (!dumped.includes(from)) {
      throw refused(`--database ${from}:${to}: the backup holds no database ${JSON.stringify(from)} (it holds ${dumped.map((d) => JSON.stringify(d)).join(', ') || 'none'})`, { database: from });
    }
    if (to === '' || CONTROL.test(to) || Buffer.byteLength(to) > MAX_NAME_BYTES) throw refused(`--database ${from}:${to}: ${JSON.stringify(to)} is not a valid database name`, { database: to });
    if (seen.has(to)) throw refused(`--database: two databases would be restored as ${JSON.stringify(to)}`, { database: to });
    seen.add(to);
  }
  return new Map(request.databases);
}

function manifestFormat(info: SourceInfo): 'plain' | 'custom' {
  if (info.format === 'plain' || info.format === 'custom') return info.format;
  throw refused(`the manifest names no postgres format (plain or custom) but ${JSON.stringify(info.format)}`);
}

/** libpq's answers while a server is starting (or not yet listening): worth waiting for. */
const NOT_YET = /No such file or directory|Connection refused|the database system is (starting up|shutting down|in recovery mode)/;
/**
 * A scratch container's server must have run this long: images such as the official one start
 * a temporary server on the same socket for their first initialisation, then restart it.
 */
const SETTLE_SECONDS = 3;

function notYet(conn: PgConnection, why: string): BackerError {
  // Not permanent: the pipeline waits for a fresh scratch container's server until it answers.
  return new BackerError('RESTORE_REFUSED', `the PostgreSQL server in container ${conn.container} does not accept connections yet: ${why}`, {
    component: COMPONENT,
    details: { container: conn.container },
  });
}

/** Connects to the destination (as the mandate's user and exec_user) and reads its server version. */
async function serverVersionOf(conn: PgConnection, scratch: boolean): Promise<string> {
  const result = await psqlFields(conn, 'postgres', ['SHOW server_version', 'SELECT floor(extract(epoch FROM now() - pg_catalog.pg_postmaster_start_time()))::int']);
  if ('failure' in result) {
    if (NOT_YET.test(result.failure)) throw notYet(conn, result.failure);
    throw refused(`psql in container ${conn.container} cannot connect to PostgreSQL as user ${JSON.stringify(conn.user)}: ${result.failure}`, { container: conn.container });
  }
  const [version = '', uptime = '0'] = result.fields;
  if (scratch && Number(uptime) < SETTLE_SECONDS) throw notYet(conn, `it started ${uptime} s ago`);
  return version;
}

/** Everything planRestore checks, also run again by restore and check: nothing is touched here. */
async function prepare(options: ConnectionOptions, request: RestoreRequest, context: DumpContext): Promise<Restoring> {
  const container = destinationContainer(request);
  const format = manifestFormat(request.manifest);
  const targets = restoreTargets(request);
  if (format === 'custom' && [...targets.values()].includes('template1')) {
    throw refused('a custom archive restores by dropping and creating its database, and template1 cannot be dropped: restore it under another name (--database FROM:TO)');
  }
  const run = await openContainerRun(context, container, COMPONENT);
  const conn = await connect(run, options);
  await requireTools(conn, format === 'plain' ? ['psql'] : ['psql', 'pg_restore']);
  const serverVersion = await serverVersionOf(conn, request.destination.kind === 'container' && request.destination.scratch);
  const serverMajor = majorVersion(serverVersion);
  const dumpedVersion = typeof request.manifest.server_version === 'string' ? request.manifest.server_version : '';
  const dumpedMajor = majorVersion(dumpedVersion);
  if (serverMajor === null) throw refused(`container ${container} reports an unknown PostgreSQL version ${JSON.stringify(serverVersion)}`, { container });
  if (dumpedMajor !== null && serverMajor < dumpedMajor) {
    throw refused(`container ${container} runs PostgreSQL ${serverVersion}, older than the backed-up server (${dumpedVersion}): restore into PostgreSQL ${dumpedMajor} or newer`, {
      container,
      server_version: serverVersion,
      dumped_version: dumpedVersion,
    });
  }
  return { conn, format, targets, serverVersion, serverMajor };
}

export async function planRestore(options: ConnectionOptions, request: RestoreRequest, context: DumpContext): Promise<RestorePlan> {
  const r = await prepare(options, request, context);
  const where = `in container ${r.conn.container} (PostgreSQL ${r.serverVersion})`;
  const steps: string[] = [];
  if (r.format === 'plain' && request.manifest.globals === true) steps.push(`create the dump's roles that are missing and reset every dumped role's attributes ${where}`);
  for (const [from, to] of r.targets) {
    const as = from === to ? '' : ` as ${JSON.stringify(to)}`;
    const drop = to === 'template1' ? `apply database "template1" over its content (it cannot be dropped) ${where}` : `drop database ${JSON.stringify(to)} ${where} (ending its sessions) and create it again`;
    steps.push(drop, r.format === 'plain' ? `load database ${JSON.stringify(from)}${as} with psql` : `restore database ${JSON.stringify(from)}${as} with pg_restore`);
  }
  return { steps, stops: [] };
}

/**
 * `input` through `transform`, started by the first read: feed attaches its error listener once
 * the exec runs, so an input that fails at once must not fail before anyone listens.
 */
function lazily(input: Readable, transform: Transform): Readable {
  async function* through(): AsyncGenerator<Buffer> {
    for await (const chunk of pipeline(input, transform, () => undefined)) yield chunk as Buffer;
  }
  return Readable.from(through(), { objectMode: false });
}

function psqlScript(conn: PgConnection, db: string): string[] {
  return ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--output=/dev/null', ...conn.args, `--dbname=${conninfoDbname(db)}`, '--file=-'];
}

export async function restore(options: ConnectionOptions, request: RestoreRequest, input: Readable, context: DumpContext): Promise<void> {
  const r = await prepare(options, request, context);
  const { conn } = r;
  const exec = { env: conn.env, user: conn.execUser };
  if (r.format === 'plain') {
    const rename = request.databases.size === 0 ? new Map<string, string>() : r.targets;
    const transform = plainRestoreTransform({ globals: request.manifest.globals === true, databases: dumpedDatabases(request.manifest), rename, serverMajor: r.serverMajor });
    // The plain dump's framing: it starts in `postgres` and \connects to each database.
    await conn.run.feed(psqlScript(conn, 'postgres'), lazily(input, transform), exec);
    return;
  }
  const [[from, to] = ['', '']] = [...r.targets];
  context.logger.info({ container: conn.container, database: to }, 'dropping the database to restore it');
  // pg_restore --clean cannot end other sessions, so the database is dropped here first.
  const prepareSql = [...dropDatabase(to, r.serverMajor), ...(from === to ? [] : [`CREATE DATABASE ${sqlIdent(to)} TEMPLATE template0;`])];
  await conn.run.feed(psqlScript(conn, 'template1'), Readable.from([`${prepareSql.join('\n')}\n`]), exec);
  // Same name: the archive's CREATE DATABASE (owner, settings, comment); renamed: into the new empty database.
  const target = from === to ? ['--create', `--dbname=${conninfoDbname('template1')}`] : [`--dbname=${conninfoDbname(to)}`];
  await conn.run.feed(['pg_restore', '--exit-on-error', ...conn.args, ...target], input, exec);
}

interface RecordedStats {
  tables: Record<string, number> | null;
}

function recordedStats(info: SourceInfo): RecordedStats {
  const stats = info.stats as { tables?: unknown } | undefined;
  const tables = stats?.tables;
  if (tables === null || typeof tables !== 'object') return { tables: null };
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(tables as Record<string, unknown>)) if (typeof v === 'number') out[k] = v;
  return { tables: out };
}

/** Drill: each restored database exists, and every table recorded at dump time has its row count. */
export async function check(options: ConnectionOptions, request: RestoreRequest, context: DumpContext): Promise<DrillCheck[]> {
  const { conn, targets } = await prepare(options, request, context);
  const checks: DrillCheck[] = [];
  const actual = new Map<string, number>();
  const listed = await psqlFields(conn, 'postgres', ['SELECT datname FROM pg_catalog.pg_database']);
  if ('failure' in listed) {
    throw new BackerError('DRILL_FAILED', `listing the databases in container ${conn.container} failed: ${listed.failure}`, { component: COMPONENT, details: { container: conn.container } });
  }
  const present = listed.fields;
  for (const [from, to] of targets) {
    const exists = present.includes(to);
    checks.push({ check: `database ${to} exists`, ok: exists, expected: to, actual: exists ? to : null });
    if (!exists) continue;
    for (const [table, rows] of await tableCounts(conn, to, 'DRILL_FAILED')) actual.set(`${from}.${table}`, rows);
  }
  const { tables } = recordedStats(request.manifest);
  for (const [key, expected] of Object.entries(tables ?? {})) {
    if (![...targets.keys()].some((db) => key.startsWith(`${db}.`))) continue;
    const rows = actual.get(key);
    checks.push({ check: `table ${key} rows`, ok: rows === expected, expected, actual: rows ?? null });
  }
  return checks;
}
