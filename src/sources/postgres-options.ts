import { z } from 'zod';
import { notABoolean, parseBoolean } from '../config/boolean.js';
import { parseRef, type Ref } from '../config/refs.js';
import { checkToolOptions, toolOptionsOf, type ToolOptions } from './options.js';
import { optionalString, optionIssue, type OptionsSpec } from './options-schema.js';

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
const REFUSED_REASON = 'set it with the backer.postgres.* labels instead, or it would break the dump or its verification';

export const CUSTOM_ONE_DATABASE =
  'format custom holds exactly one database (pg_restore reads one archive): name one database, or use format plain for several or *';

function splitNames(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Why a database value (one name, a comma list or `*`) is not valid, or null. */
function databaseListProblem(value: string): string | null {
  const trimmed = value.trim();
  if (trimmed === '*') return null;
  const names = splitNames(trimmed);
  if (names.length === 0) return 'expected a database name, a comma list or *';
  const bad = names.find((n) => CONTROL.test(n) || Buffer.byteLength(n) > MAX_NAME_BYTES);
  return bad === undefined ? null : `${JSON.stringify(bad)} is not a valid database name`;
}

function databaseNames(value: string): string[] | '*' {
  return value.trim() === '*' ? '*' : [...new Set(splitNames(value))];
}

export function parseDatabaseList(value: string, fail: (message: string) => Error): string[] | '*' {
  const problem = databaseListProblem(value);
  if (problem !== null) throw fail(problem);
  return databaseNames(value);
}

/** The databases a valid written-out `database` names (undefined for `Env:`/`File:` refs, read at dump time). */
function writtenDatabases(raw: string | undefined): string[] | '*' | undefined {
  const ref = parseRef(raw ?? '*');
  if (ref.kind !== 'text' && ref.kind !== 'literal') return undefined;
  return databaseListProblem(ref.value) === null ? databaseNames(ref.value) : undefined;
}

/** pg_dump (getopt_long) accepts any unambiguous prefix of a long option: `--fil=x` is `--file=x`. */
function abbreviation(refused: ReadonlySet<string>): (name: string) => string | null {
  return (name) => {
    const full = name === '' ? undefined : [...refused].find((r) => r.startsWith(name));
    return full === undefined ? null : `--${name} abbreviates --${full}, which is managed by Backer and cannot be set`;
  };
}

const fields = {
  user: optionalString(),
  password: optionalString(),
  database: optionalString().superRefine((raw, ctx) => {
    const ref = parseRef(raw ?? '*');
    const problem = ref.kind === 'text' || ref.kind === 'literal' ? databaseListProblem(ref.value) : null;
    if (problem !== null) optionIssue(ctx, 'database', problem);
  }),
  format: optionalString().superRefine((raw, ctx) => {
    const format = raw?.trim() ?? 'plain';
    if (format !== 'plain' && format !== 'custom') optionIssue(ctx, 'format', `expected plain or custom, received ${JSON.stringify(raw)}`);
  }),
  globals: optionalString().superRefine((raw, ctx) => {
    if (raw !== undefined && parseBoolean(raw) === undefined) optionIssue(ctx, 'globals', notABoolean(raw));
  }),
  exec_user: optionalString().superRefine((raw, ctx) => {
    if (raw !== undefined && !EXEC_USER.test(raw.trim())) {
      optionIssue(ctx, 'exec_user', `expected a user name or id, optionally with :group, received ${JSON.stringify(raw)}`);
    }
  }),
  socket_dir: optionalString().superRefine((raw, ctx) => {
    const dir = raw?.trim();
    if (dir !== undefined && (!dir.startsWith('/') || dir.includes(',') || CONTROL.test(dir))) {
      optionIssue(ctx, 'socket_dir', `expected the absolute path of the directory of the server's unix socket, received ${JSON.stringify(raw)}`);
    }
  }),
};

type Fields = z.output<z.ZodObject<typeof fields>> & Record<string, unknown>;

/** The format, or undefined when `format` names none. */
function formatOf(o: Fields): PostgresFormat | undefined {
  const format = o.format?.trim() ?? 'plain';
  return format === 'plain' || format === 'custom' ? format : undefined;
}

/** What only the options together tell: custom holds one database and no globals; the refused pass-through options depend on the format. */
function crossChecks(o: Fields, ctx: z.RefinementCtx): void {
  const format = formatOf(o);
  if (format === 'custom' && o.globals !== undefined && parseBoolean(o.globals) === true) {
    optionIssue(ctx, 'globals', 'globals are SQL and cannot go into a custom-format archive: use format plain, or a separate plain mandate for the globals');
  }
  const databases = writtenDatabases(o.database);
  if (format === 'custom' && databases !== undefined && (databases === '*' || databases.length > 1)) optionIssue(ctx, 'database', CUSTOM_ONE_DATABASE);
  // Without a valid format (reported at `format`), only what every format refuses is checked.
  const refused = REFUSED[format ?? 'custom'];
  checkToolOptions(o, refused, REFUSED_REASON, ctx, abbreviation(refused));
}

/** `backer.postgres.*`: connection, databases, format, globals and `options.*` for pg_dump. */
export const postgresOptions: OptionsSpec<PostgresOptions> = {
  type: 'postgres',
  keys: ['user', 'password', 'database', 'format', 'globals', 'exec_user', 'socket_dir'],
  passThrough: 'options.<pg_dump option>',
  schema: z
    .looseObject(fields)
    .superRefine(crossChecks)
    .transform((o) => ({
      user: parseRef(o.user ?? 'Text:postgres'),
      password: o.password === undefined ? null : parseRef(o.password),
      database: parseRef(o.database ?? '*'),
      format: formatOf(o) ?? 'plain',
      globals: o.globals === undefined ? false : parseBoolean(o.globals) === true,
      execUser: o.exec_user?.trim() ?? null,
      socketDir: o.socket_dir?.trim() ?? null,
      options: toolOptionsOf(o),
    })),
};
