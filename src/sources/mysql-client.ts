import type { Ref } from '../config/refs.js';
import type { ErrorCode } from '../errors.js';
import type { ContainerRun } from './container-run.js';
import { quote } from './mysql-lines.js';

export const COMPONENT = 'source mysql';
export const DUMP_TOOLS = ['mariadb-dump', 'mysqldump'] as const;
export const CLIENT_TOOLS = ['mariadb', 'mysql'] as const;

/** The mariadb/mysql client inside one container, logged in as the mandate's user. */
export interface MysqlSession {
  run: ContainerRun;
  tool: string;
  user: string;
  /** `MYSQL_PWD=…`: the client's documented password variable, so the password is never in argv. */
  env: string[];
  /** Client options that keep its errors short (see quietOption). */
  quiet: string[];
}

export interface Credentials {
  user: Ref;
  password: Ref | null;
}

/** Resolves the credentials against `run`'s container and finds its client (TOOL_MISSING otherwise). */
export async function openSession(run: ContainerRun, credentials: Credentials): Promise<MysqlSession> {
  const { tool } = await run.probe(CLIENT_TOOLS, { user: run.info.user });
  const user = await run.resolve(credentials.user);
  const password = credentials.password === null ? null : await run.resolve(credentials.password, { secret: true });
  return { ...sessionFor(run, tool, user, password), quiet: await quietOption(run, tool) };
}

/**
 * MariaDB's client prints the whole failing statement before its error (a data row of a
 * restore, megabytes long); `--skip-print-query-on-error` keeps the error line alone. MySQL's
 * client and older MariaDB ones do not know the option: it is used only when accepted.
 */
async function quietOption(run: ContainerRun, tool: string): Promise<string[]> {
  const option = '--skip-print-query-on-error';
  const { exitCode } = await run.capture([tool, option, '--version'], { user: run.info.user });
  return exitCode === 0 ? [option] : [];
}

export function sessionFor(run: ContainerRun, tool: string, user: string, password: string | null): MysqlSession {
  return { run, tool, user, env: password === null ? [] : [`MYSQL_PWD=${password}`], quiet: [] };
}

/** The client's command line; `database` makes it the default database of the session. */
export function clientCommand(session: MysqlSession, extra: string[] = [], database?: string): string[] {
  return [session.tool, `--user=${session.user}`, ...session.quiet, ...extra, ...(database === undefined ? [] : [database])];
}

/** Runs SQL (no secrets in it) and returns the rows, tab-separated fields, no header. */
export async function query(session: MysqlSession, sql: string, code: ErrorCode, what: string): Promise<string[][]> {
  const out = await session.run.run(clientCommand(session, ['--batch', '--skip-column-names', '-e', sql]), { env: session.env, code, what });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

/** `db.table` → the quoted `` `db`.`table` ``. */
export function qualifiedName(key: string): string {
  const dot = key.indexOf('.');
  return `${quote(key.slice(0, dot))}.${quote(key.slice(dot + 1))}`;
}

/** Exact row counts (`SELECT COUNT(*)`), a few hundred tables per client call. */
export async function countRows(session: MysqlSession, tables: readonly string[], code: ErrorCode): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < tables.length; i += 200) {
    const batch = tables.slice(i, i + 200);
    const sql = batch.map((t) => `SELECT COUNT(*) FROM ${qualifiedName(t)};`).join('\n');
    const rows = await query(session, sql, code, `row count in ${session.run.name}`);
    batch.forEach((t, j) => counts.set(t, Number(rows[j]?.[0] ?? NaN)));
  }
  return counts;
}

/** The base tables (`db.table`) of `databases` as the server lists them now. */
export async function listTables(session: MysqlSession, databases: readonly string[], code: ErrorCode): Promise<string[]> {
  if (databases.length === 0) return [];
  const names = databases.map((d) => `'${d.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`).join(',');
  const rows = await query(
    session,
    `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN (${names}) ORDER BY 1, 2`,
    code,
    `table list in ${session.run.name}`,
  );
  return rows.map(([db, table]) => `${db ?? ''}.${table ?? ''}`);
}
