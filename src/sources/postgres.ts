import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { BackerError } from '../errors.js';
import { notABoolean, parseBoolean } from '../config/boolean.js';
import { parseRef, type Ref } from '../config/refs.js';
import { resolveInContainer } from './resolve.js';
import { execCapture, execStream, lastLines, runningContainer, TailBuffer, type ContainerInfo } from './docker-exec.js';
import { labelError, optionWhere, parseToolOptions, toolArgs, type ToolOptions } from './options.js';
import type { Dump, DumpContext, OptionOrigin, SourceDefinition, SourceInfo } from './types.js';

export type PostgresFormat = 'plain' | 'custom';

export interface PostgresOptions {
  /** Role to connect as. Default `Text:postgres`. */
  user: Ref;
  /** Reaches the tools only as `PGPASSWORD` in the exec's environment. Default: none (the server's local auth decides). */
  password: Ref | null;
  /** One name, a comma list, or `*` (every non-template database that allows connections). Default `*`. */
  database: Ref;
  /** `plain` SQL for psql, or `custom` for pg_restore (exactly one database). Default `plain`. */
  format: PostgresFormat;
  /** Prepend `pg_dumpall --globals-only` (roles, tablespaces); plain format only. Default false. */
  globals: boolean;
  /** User the tools run as inside the container. Default null: the container's configured user. */
  execUser: string | null;
  /** Socket directory, passed as `--host`. Default null: libpq's compiled-in directory. */
  socketDir: string | null;
  /** Pass-through `pg_dump` long options. */
  options: ToolOptions;
}

const COMPONENT = 'source postgres';
const KNOWN_KEYS = new Set(['user', 'password', 'database', 'format', 'globals', 'exec_user', 'socket_dir']);
const EXEC_USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** NAMEDATALEN - 1 */
const MAX_NAME_BYTES = 63;

/**
 * pg_dump options Backer sets itself (connection, database, output format and file, `--create`
 * framing of plain dumps) or that would break the artifact or its verification: `jobs` needs the
 * directory format, `binary-upgrade` is for pg_upgrade only, `password` would wait for a prompt,
 * `compress` would gzip a plain dump so that its trailer cannot be checked (compression is
 * middleware's job; it stays allowed for `custom`, which compresses by default).
 */
const REFUSED_ALWAYS = [
  'dbname', 'host', 'username', 'password', 'no-password', 'file', 'format', 'create', 'jobs', 'binary-upgrade', 'help', 'version',
];
const REFUSED: Record<PostgresFormat, ReadonlySet<string>> = {
  plain: new Set([...REFUSED_ALWAYS, 'compress']),
  custom: new Set(REFUSED_ALWAYS),
};

/** pg_dump writes this last on success; 15.14+ adds `\unrestrict <key>` after it. */
const DUMP_TRAILER = /\n-- PostgreSQL database dump complete\n--\n\s*(\\unrestrict [^\n]*\s*)?$/;
const GLOBALS_TRAILER = /\n-- PostgreSQL database cluster dump complete\n--\s*$/;
const CUSTOM_MAGIC = 'PGDMP';
const LIST_DATABASES = 'SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1';
/** Databases every cluster has: `--create` would fail on restore, so they get a `\connect` instead (like pg_dumpall). */
const PREEXISTING = new Set(['postgres', 'template1']);

function parse(raw: Record<string, string>, origin: OptionOrigin): PostgresOptions {
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key) && !key.startsWith('options.')) {
      throw labelError(origin, key, `unknown postgres option; known: ${[...KNOWN_KEYS].join(', ')}, options.<pg_dump option>`);
    }
  }
  const format = raw.format?.trim() ?? 'plain';
  if (format !== 'plain' && format !== 'custom') throw labelError(origin, 'format', `expected plain or custom, received ${JSON.stringify(raw.format)}`);
  const globals = raw.globals === undefined ? false : parseBoolean(raw.globals);
  if (globals === undefined) throw labelError(origin, 'globals', notABoolean(raw.globals ?? ''));
  if (globals && format === 'custom') {
    throw labelError(origin, 'globals', 'globals are SQL and cannot go into a custom-format archive: use format plain, or a separate plain mandate for the globals');
  }

  const database = parseRef(raw.database ?? '*');
  if (database.kind === 'text' || database.kind === 'literal') {
    const list = parseDatabaseList(database.value, (msg) => labelError(origin, 'database', msg));
    if (format === 'custom' && (list === '*' || list.length > 1)) throw labelError(origin, 'database', CUSTOM_ONE_DATABASE);
  }

  const execUser = raw.exec_user?.trim();
  if (execUser !== undefined && !EXEC_USER.test(execUser)) {
    throw labelError(origin, 'exec_user', `expected a user name or id, optionally with :group, received ${JSON.stringify(raw.exec_user)}`);
  }
  const socketDir = raw.socket_dir?.trim();
  if (socketDir !== undefined && (!socketDir.startsWith('/') || socketDir.includes(',') || CONTROL.test(socketDir))) {
    throw labelError(origin, 'socket_dir', `expected the absolute path of the directory of the server's unix socket, received ${JSON.stringify(raw.socket_dir)}`);
  }

  refuseAbbreviations(raw, REFUSED[format], origin);
  return {
    user: parseRef(raw.user ?? 'Text:postgres'),
    password: raw.password === undefined ? null : parseRef(raw.password),
    database,
    format,
    globals,
    execUser: execUser ?? null,
    socketDir: socketDir ?? null,
    options: parseToolOptions(raw, REFUSED[format], origin, 'set it with the backer.postgres.* labels instead, or it would break the dump or its verification'),
  };
}

const CUSTOM_ONE_DATABASE =
  'format custom holds exactly one database (pg_restore reads one archive): name one database, or use format plain for several or *';

/** pg_dump (getopt_long) accepts any unambiguous prefix of a long option: `--fil=x` is `--file=x`. */
function refuseAbbreviations(raw: Record<string, string>, refused: ReadonlySet<string>, origin: OptionOrigin): void {
  for (const key of Object.keys(raw)) {
    if (!key.startsWith('options.')) continue;
    const name = key.slice('options.'.length).replace(/_/g, '-').toLowerCase();
    if (name === '' || refused.has(name)) continue;
    const full = [...refused].find((r) => r.startsWith(name));
    if (full !== undefined) {
      throw new BackerError('LABEL_INVALID', `${origin.describe(key)}: --${name} abbreviates --${full}, which is managed by Backer and cannot be set`, {
        component: 'labels',
        details: { where: origin.describe(key), option: full },
        permanent: true,
      });
    }
  }
}

function parseDatabaseList(value: string, fail: (message: string) => Error): string[] | '*' {
  const trimmed = value.trim();
  if (trimmed === '*') return '*';
  const names = trimmed.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw fail('expected a database name, a comma list or *');
  for (const n of names) {
    if (CONTROL.test(n) || Buffer.byteLength(n) > MAX_NAME_BYTES) throw fail(`${JSON.stringify(n)} is not a valid database name`);
  }
  return [...new Set(names)];
}

/** A libpq connection string naming only the database, so that no name is ever read as `key=value` options. */
function conninfoDbname(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

interface Connection {
  container: string;
  docker: Docker;
  execUser: string;
  user: string;
  /** `--username`, `--host` and `--no-password`. */
  args: string[];
  /** PGPASSWORD, and the container's PGHOST/PGHOSTADDR cleared so that only the unix socket is used. */
  env: string[];
  signal: AbortSignal;
  /** Where `postgres.database` was written, for "no such database". */
  databaseWhere: string;
}

function resolve(ref: Ref, info: ContainerInfo, execUser: string, context: DumpContext, secret = false): Promise<string> {
  return resolveInContainer(ref, info, context, COMPONENT, { secret, execUser });
}

/** Runs `<tool> --version` for every tool needed; returns pg_dump's version line. */
async function checkTools(docker: Docker, container: string, execUser: string, tools: string[]): Promise<string> {
  const missing: string[] = [];
  let version = '';
  for (const tool of tools) {
    const { exitCode, stdout } = await execCapture(docker, container, { cmd: [tool, '--version'], user: execUser }, COMPONENT);
    if (exitCode !== 0) missing.push(tool);
    else if (tool === 'pg_dump') version = stdout.trim();
  }
  if (missing.length > 0) {
    throw new BackerError('TOOL_MISSING', `container ${container} has no ${missing.join(', ')} on its PATH (needed: ${tools.join(', ')}; they come with the PostgreSQL client of the server's image)`, {
      component: COMPONENT,
      details: { container, missing },
      permanent: true,
    });
  }
  return version;
}

/** Server version and, for `*`, the databases; also fails fast (before any byte is stored) on a bad password. */
async function probe(conn: Connection, databases: string[] | '*'): Promise<{ serverVersion: string; databases: string[] }> {
  // pg_dumpall's choice for `*`: the `postgres` database, else template1.
  const candidates = databases === '*' ? ['postgres', 'template1'] : [databases[0] ?? 'postgres'];
  let failure = '';
  for (const [i, db] of candidates.entries()) {
    const list = databases === '*' ? LIST_DATABASES : 'SELECT datname FROM pg_database';
    const cmd = ['psql', '-X', '-A', '-t', '-0', '-v', 'ON_ERROR_STOP=1', ...conn.args, `--dbname=${conninfoDbname(db)}`, '-c', 'SHOW server_version', '-c', list];
    const { exitCode, stdout, stderr } = await execCapture(conn.docker, conn.container, { cmd, env: conn.env, user: conn.execUser, signal: conn.signal }, COMPONENT);
    if (exitCode === 0) {
      const [serverVersion = '', ...names] = stdout.split('\0').filter((s) => s.length > 0);
      if (databases === '*') return { serverVersion, databases: names };
      // Checked up front, so that a typo fails before any byte is stored rather than after the first databases.
      const missing = databases.filter((d) => !names.includes(d));
      if (missing.length > 0) {
        throw new BackerError('DUMP_FAILED', `container ${conn.container} has no database ${missing.map((d) => JSON.stringify(d)).join(', ')} (from ${conn.databaseWhere})`, {
          component: COMPONENT,
          details: { container: conn.container, missing },
        });
      }
      return { serverVersion, databases };
    }
    failure = lastLines(stderr || stdout);
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

/**
 * Runs the parts one after another into one stream. Each tool must exit 0 (checked before the
 * next starts) and its output must end with its completion trailer (plain) or start with the
 * archive magic (custom); otherwise the stream errors and the targets abort.
 */
async function* produce(conn: Connection, parts: Part[], logger: DumpContext['logger']): AsyncGenerator<Buffer> {
  for (const part of parts) {
    if (part.prefix !== '') yield Buffer.from(part.prefix);
    logger.debug({ container: conn.container, cmd: part.cmd }, `dumping ${part.what}`);
    const handle = await execStream(conn.docker, conn.container, { cmd: part.cmd, env: conn.env, user: conn.execUser, signal: conn.signal }, COMPONENT);
    const tail = new TailBuffer(512);
    let head = Buffer.alloc(0);
    try {
      for await (const chunk of handle.stdout) {
        const buf = chunk as Buffer;
        tail.push(buf);
        if (head.length < CUSTOM_MAGIC.length) head = Buffer.concat([head, buf.subarray(0, CUSTOM_MAGIC.length - head.length)]);
        yield buf;
      }
    } catch (err) {
      if (err instanceof BackerError || conn.signal.aborted) throw err;
      throw new BackerError('DUMP_FAILED', `reading the output of ${part.cmd[0] ?? 'pg_dump'} (${part.what}) from container ${conn.container} failed`, {
        component: COMPONENT,
        details: { container: conn.container },
        cause: err,
      });
    } finally {
      // Reached early when the consumer stops: closing the exec's stream ends the tool (SIGPIPE).
      if (!handle.stdout.destroyed) handle.stdout.destroy();
    }
    const tool = part.cmd[0] ?? 'pg_dump';
    let result: { exitCode: number; stderr: string };
    try {
      result = await handle.result();
    } catch (err) {
      throw new BackerError('DUMP_FAILED', `${tool} of ${part.what} in container ${conn.container} did not finish: the container or its exec went away during the dump`, {
        component: COMPONENT,
        details: { container: conn.container },
        cause: err,
      });
    }
    if (result.exitCode !== 0) {
      const reason = lastLines(result.stderr);
      const killed = result.exitCode > 128 ? ` (killed by signal ${result.exitCode - 128}: was the container stopped or removed during the dump?)` : '';
      throw new BackerError('DUMP_FAILED', `${tool} of ${part.what} in container ${conn.container} exited with code ${result.exitCode}${killed}${reason ? `: ${reason}` : ''}`, {
        component: COMPONENT,
        details: { container: conn.container, exit_code: result.exitCode },
      });
    }
    const ok =
      part.check === 'custom'
        ? head.toString('latin1') === CUSTOM_MAGIC
        : (part.check === 'plain' ? DUMP_TRAILER : GLOBALS_TRAILER).test(tail.toString());
    if (!ok) {
      const expected = part.check === 'custom' ? `to start with "${CUSTOM_MAGIC}"` : `to end with "-- PostgreSQL ${part.check === 'plain' ? 'database' : 'database cluster'} dump complete"`;
      throw new BackerError('DUMP_TRUNCATED', `${tool} output of ${part.what} from container ${conn.container} was expected ${expected}: the dump is incomplete`, {
        component: COMPONENT,
        details: { container: conn.container },
      });
    }
  }
}

async function dump(options: PostgresOptions, target: { container: string | null }, context: DumpContext): Promise<Dump> {
  const container = target.container;
  if (container === null) throw new BackerError('LABEL_INVALID', 'postgres mandates need a container', { component: COMPONENT, permanent: true });
  const info = await runningContainer(context.docker, container, COMPONENT);
  const execUser = options.execUser ?? info.user;
  const user = await resolve(options.user, info, execUser, context);
  const password = options.password === null ? null : await resolve(options.password, info, execUser, context, true);
  const labelFail = (msg: string): BackerError =>
    new BackerError('LABEL_INVALID', `${optionWhere(context, container, 'postgres.database')}: ${msg}`, { component: COMPONENT, permanent: true });
  const requested = parseDatabaseList(await resolve(options.database, info, execUser, context), labelFail);
  if (options.format === 'custom' && (requested === '*' || requested.length > 1)) throw labelFail(CUSTOM_ONE_DATABASE);

  const tools = ['pg_dump', 'psql', ...(options.globals ? ['pg_dumpall'] : [])];
  const toolVersion = await checkTools(context.docker, container, execUser, tools);

  const args = [`--username=${user}`, '--no-password', ...(options.socketDir === null ? [] : [`--host=${options.socketDir}`])];
  // Only the unix socket: a PGHOST/PGHOSTADDR in the container's environment could point elsewhere.
  const env = ['PGHOST=', 'PGHOSTADDR=', ...(password === null ? [] : [`PGPASSWORD=${password}`])];
  const conn: Connection = { container, docker: context.docker, execUser, user, args, env, signal: context.signal, databaseWhere: optionWhere(context, container, 'postgres.database') };
  const { serverVersion, databases } = await probe(conn, requested);
  if (databases.length === 0) {
    throw new BackerError('DUMP_FAILED', `container ${container} has no database to dump (none is both non-template and open for connections)`, {
      component: COMPONENT,
      details: { container },
    });
  }

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

  const stream = Readable.from(produce(conn, parts, context.logger), { objectMode: false });
  const sourceInfo: SourceInfo = {
    type: 'postgres',
    container,
    image: info.image,
    databases,
    format: options.format,
    globals: options.globals,
    server_version: serverVersion,
    tool: 'pg_dump',
    tool_version: toolVersion,
  };
  return options.format === 'plain'
    ? { stream, mime: 'application/sql', extension: '.sql', info: () => sourceInfo }
    : { stream, mime: 'application/vnd.postgresql.custom', extension: '.dump', info: () => sourceInfo };
}

export const postgresSource: SourceDefinition<PostgresOptions> = { type: 'postgres', needsContainer: true, parse, dump };
