import type { Ref } from '../config/refs.js';
import { BackerError } from '../errors.js';
import type { ContainerRun } from './container-run.js';
import { lastLines } from './docker-exec.js';

export const COMPONENT = 'source postgres';

/** What the postgres source needs to reach the server of one container (dump, restore, drill check). */
export interface ConnectionOptions {
  user: Ref;
  password: Ref | null;
  execUser: string | null;
  socketDir: string | null;
}

/** A server reached through the tools inside one container; the password only in `env`. */
export interface PgConnection {
  run: ContainerRun;
  container: string;
  execUser: string;
  user: string;
  /** `--username`, `--no-password` and `--host`. */
  args: string[];
  /** PGPASSWORD, and the container's PGHOST/PGHOSTADDR cleared so that only the unix socket is used. */
  env: string[];
}

/** Resolves user and password against the container and builds the tools' connection arguments. */
export async function connect(run: ContainerRun, options: ConnectionOptions): Promise<PgConnection> {
  const execUser = options.execUser ?? run.info.user;
  const user = await run.resolve(options.user, { execUser });
  const password = options.password === null ? null : await run.resolve(options.password, { execUser, secret: true });
  const args = [`--username=${user}`, '--no-password', ...(options.socketDir === null ? [] : [`--host=${options.socketDir}`])];
  // Only the unix socket: a PGHOST/PGHOSTADDR in the container's environment could point elsewhere.
  const env = ['PGHOST=', 'PGHOSTADDR=', ...(password === null ? [] : [`PGPASSWORD=${password}`])];
  return { run, container: run.name, execUser, user, args, env };
}

/** A libpq connection string naming only the database, so that no name is ever read as `key=value` options. */
export function conninfoDbname(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Every tool of `tools` must answer `--version` as the exec user; TOOL_MISSING names all that do not. */
export async function requireTools(conn: Pick<PgConnection, 'run' | 'execUser'>, tools: string[]): Promise<Map<string, string>> {
  const missing: string[] = [];
  const versions = new Map<string, string>();
  for (const tool of tools) {
    const found = await conn.run.probe([tool], { user: conn.execUser }).catch((err: unknown) => {
      if (err instanceof BackerError && err.code === 'TOOL_MISSING') return null;
      throw err;
    });
    if (found === null) missing.push(tool);
    else versions.set(tool, found.version);
  }
  if (missing.length > 0) {
    throw new BackerError('TOOL_MISSING', `container ${conn.run.name} has no ${missing.join(', ')} on its PATH (needed: ${tools.join(', ')}; they come with the PostgreSQL client of the server's image)`, {
      component: COMPONENT,
      details: { container: conn.run.name, missing },
      permanent: true,
    });
  }
  return versions;
}

/** psql for queries: no psqlrc, unaligned, tuples only, fields and records separated by NUL. */
export function psqlQueryCmd(conn: PgConnection, db: string, statements: string[]): string[] {
  return ['psql', '-X', '-A', '-t', '-z', '-0', '-v', 'ON_ERROR_STOP=1', ...conn.args, `--dbname=${conninfoDbname(db)}`, ...statements.flatMap((s) => ['-c', s])];
}

/** Runs queries; resolves with every non-empty NUL-separated field, or null and the error when psql failed. */
export async function psqlFields(conn: PgConnection, db: string, statements: string[]): Promise<{ fields: string[] } | { failure: string }> {
  const { exitCode, stdout, stderr } = await conn.run.capture(psqlQueryCmd(conn, db, statements), { env: conn.env, user: conn.execUser });
  if (exitCode !== 0) return { failure: lastLines(stderr || stdout) };
  return { fields: stdout.split('\0').filter((s) => s.length > 0) };
}

/**
 * Exact row count of every table (`schema.table`) of one database, skipping system schemas and
 * tables that belong to extensions (their rows are the extension's, not the dump's).
 */
const COUNT_ROWS = `SELECT n.nspname || '.' || c.relname,
  (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1`;

/** `schema.table` → rows of database `db`; rejects with `code` naming the database when psql fails. */
export async function tableCounts(conn: PgConnection, db: string, code: 'DUMP_FAILED' | 'DRILL_FAILED'): Promise<Map<string, number>> {
  const result = await psqlFields(conn, db, [COUNT_ROWS]);
  if ('failure' in result) {
    throw new BackerError(code, `counting the rows of database ${JSON.stringify(db)} in container ${conn.container} failed: ${result.failure}`, {
      component: COMPONENT,
      details: { container: conn.container, database: db },
    });
  }
  const counts = new Map<string, number>();
  for (let i = 0; i + 1 < result.fields.length; i += 2) counts.set(result.fields[i] ?? '', Number(result.fields[i + 1]));
  return counts;
}

/** `15.18 (Debian …)` → 15; `9.6.24` → 9.6 (before 10, the first two numbers are the major version). */
export function majorVersion(version: string): number | null {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (m === null) return null;
  const first = Number(m[1]);
  return first >= 10 ? first : Number(`${first}.${m[2] ?? '0'}`);
}

/** How psql and pg_restore name a database in a SQL literal and as an identifier. */
export function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function sqlIdent(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}
