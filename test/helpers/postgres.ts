import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { inject } from 'vitest';
import { HOST_IMAGE } from '../setup/services.js';
import { runCommand } from './compose.js';

/**
 * Real PostgreSQL servers for the daemon tests: the host's server binaries in a container of the
 * host image, data in the container's own /tmp, password auth on the unix socket in /tmp. The
 * password reaches docker through its environment, never argv.
 */

const host = (): string => inject('dockerHost');
export const PG_PASSWORD = 'Pg-new-s3cret!';

/** The newest PostgreSQL on this machine, e.g. /usr/lib/postgresql/15/bin. */
export const PG_BIN = ((): string => {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  const best = versions.sort((a, b) => Number(b) - Number(a)).find((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_dump`));
  if (best === undefined) throw new Error('postgres tests need PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin');
  return `/usr/lib/postgresql/${best}/bin`;
})();

/** uid:gid of the host's postgres user (the server runs as it; the tools of a custom restore too). */
export const PG_USER = ((): string => {
  const [, , uid = '', gid = ''] = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).trim().split(':');
  return `${uid}:${gid}`;
})();

/**
 * Like the official image: the container runs as root, the server as postgres (setpriv plays gosu),
 * so `docker exec` defaults to root. `chmod 755 /` because the test image's root directory is 0700,
 * which would keep every other user from reaching any file. Password authentication for local
 * connections, so that a wrong password really fails.
 */
const START = [
  'chmod 755 /',
  `exec setpriv --reuid=${PG_USER.split(':')[0] ?? ''} --regid=${PG_USER.split(':')[1] ?? ''} --clear-groups bash -c '${[
    'printf %s "$POSTGRES_PASSWORD" > /tmp/pwfile',
    'initdb -D /tmp/pgdata -U postgres --pwfile=/tmp/pwfile --auth-local=scram-sha-256 --auth-host=scram-sha-256 >/tmp/initdb.log 2>&1',
    'rm -f /tmp/pwfile',
    'exec postgres -D /tmp/pgdata -k /tmp -c listen_addresses= -c shared_buffers=16MB -c fsync=off',
  ].join(' && ')}'`,
].join(' && ');

export interface PgRun {
  stdout: Buffer;
  stderr: string;
}

/**
 * The docker CLI against the private engine, `input` (bytes or text) on its stdin; rejects on a
 * non-zero exit. PGPASSWORD and POSTGRES_PASSWORD (`password`) are in its environment, so that
 * `-e NAME` passes them on without argv.
 */
export async function pgDocker(args: string[], input: Buffer | string = '', password = PG_PASSWORD): Promise<PgRun> {
  const run = await runCommand('docker', args, { DOCKER_HOST: host(), PGPASSWORD: password, POSTGRES_PASSWORD: password }, input);
  if (run.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${run.code}: ${run.stderr.trim()}`);
  return { stdout: run.stdout, stderr: run.stderr };
}

export interface PsqlOptions {
  /** postgres unless given. */
  user?: string;
  /** PG_PASSWORD unless given. */
  password?: string;
  /** ON_ERROR_STOP=1 unless false. */
  stopOnError?: boolean;
}

/** psql in the container over the socket in /tmp, `-A -t` output; both outputs. */
export async function psql(container: string, sql: string, db = 'postgres', options: PsqlOptions = {}): Promise<PgRun> {
  const args = ['exec', '-i', '-e', 'PGPASSWORD', container, 'psql', '-X', '-q', '-A', '-t', '-v', `ON_ERROR_STOP=${options.stopOnError === false ? 0 : 1}`,
    '-h', '/tmp', '-U', options.user ?? 'postgres', '-d', db, '-f', '-'];
  return pgDocker(args, sql, options.password);
}

/** psql as postgres; its output, trimmed. */
export async function pgQuery(container: string, sql: string, db = 'postgres'): Promise<string> {
  return (await psql(container, sql, db)).stdout.toString().trim();
}

export async function waitForPostgres(name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await pgQuery(name, 'SELECT 1').then((r) => r === '1', () => false))) {
    if (Date.now() > deadline) throw new Error(`postgres in ${name} did not start`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A (labelled) server container, pg_dump on PATH as in official images; not waited for (see startPostgres). */
export async function runPostgres(name: string, labels: Record<string, string> = {}): Promise<void> {
  await pgDocker(['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-u', '0:0',
    '-e', `PATH=${PG_BIN}:/usr/bin:/bin`, '-e', 'POSTGRES_PASSWORD', ...labelArgs(labels), HOST_IMAGE, 'bash', '-c', START]);
}

/** A labelled server, started and answering. */
export async function startPostgres(name: string, labels: Record<string, string> = {}): Promise<void> {
  await runPostgres(name, labels);
  await waitForPostgres(name);
}

/** A labelled container without any PostgreSQL (label checks, missing tools), POSTGRES_PASSWORD in its environment. */
export async function startPgIdle(name: string, labels: Record<string, string>, path = '/usr/bin:/bin'): Promise<void> {
  await pgDocker(['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-e', `PATH=${path}`, '-e', 'POSTGRES_PASSWORD',
    ...labelArgs(labels), HOST_IMAGE, '/usr/bin/sleep', 'infinity']);
}

const labelArgs = (labels: Record<string, string>): string[] => Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);

/** Database `shop` with products (2000 rows) and orders (5000 rows). */
export async function seedPgShop(container: string): Promise<void> {
  await pgQuery(container, 'CREATE DATABASE shop;');
  await pgQuery(container, `
    CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text);
    CREATE TABLE orders (id serial PRIMARY KEY, product_id int REFERENCES products(id), qty int);
    INSERT INTO products SELECT g, 'product-' || g, g * 1.25, repeat(E'x\\'"\\t', g % 7) FROM generate_series(1, 2000) g;
    INSERT INTO orders (product_id, qty) SELECT (g % 2000) + 1, g % 7 FROM generate_series(1, 5000) g;`, 'shop');
}

/** Every public table of `db` with its row count and the md5 of its rows: equal exactly when the data is. */
export async function pgTables(container: string, db: string): Promise<string> {
  return pgQuery(container, `SELECT coalesce(string_agg(c.relname || ':' || (xpath('/row/m/text()', query_to_xml(format(
    'SELECT count(*) || ''/'' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') AS m FROM %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text, ' ' ORDER BY c.relname), '')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'`, db);
}

/** pgTables of every database in `dbs`, one line each. */
export async function pgFingerprint(container: string, dbs: string[]): Promise<string> {
  return (await Promise.all(dbs.map(async (db) => `${db}=${await pgTables(container, db)}`))).join('\n');
}
