import { z } from 'zod';
import { parseRef, type Ref } from '../config/refs.js';
import { checkToolOptions, toolOptionsOf, type ToolOptions } from './options.js';
import { optionalString, optionIssue, type OptionsSpec } from './options-schema.js';

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
const REFUSED_REASON = 'set it with the backer.mysql.* labels instead, or it would break verification';

function splitNames(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Why a database value (one name, a comma list or `*`) is not valid, or null. */
function databaseListProblem(value: string): string | null {
  const trimmed = value.trim();
  if (trimmed === '*') return null;
  const names = splitNames(trimmed);
  if (names.length === 0) return 'expected a database name, a comma list or *';
  const bad = names.find((n) => !DATABASE_NAME.test(n));
  return bad === undefined ? null : `"${bad}" is not a valid database name`;
}

export function parseDatabaseList(value: string, fail: (message: string) => Error): string[] | '*' {
  const problem = databaseListProblem(value);
  if (problem !== null) throw fail(problem);
  return value.trim() === '*' ? '*' : splitNames(value);
}

/** `database`: a ref; written out (not `Env:`/`File:`), it is checked now. */
const database = optionalString().superRefine((raw, ctx) => {
  const ref = parseRef(raw ?? '*');
  const problem = ref.kind === 'text' || ref.kind === 'literal' ? databaseListProblem(ref.value) : null;
  if (problem !== null) optionIssue(ctx, 'database', problem);
});

/** A comma list of table names (`t1` or `db.t1`); empty → none. */
function tableList(key: string) {
  return optionalString().superRefine((raw, ctx) => {
    const bad = splitNames(raw ?? '').find((name) => !TABLE_NAME.test(name));
    if (bad !== undefined) optionIssue(ctx, key, `"${bad}" is not a valid name (expected ${TABLE_NAME.source})`);
  });
}

/** include_tables names the tables of one database. */
function checkIncludeTables(o: { database?: string | undefined; include_tables?: string | undefined }, ctx: z.RefinementCtx): void {
  if (splitNames(o.include_tables ?? '').length === 0) return;
  const ref = parseRef(o.database ?? '*');
  if (ref.kind === 'env' || ref.kind === 'file') return;
  if (ref.value === '*' || ref.value.includes(',')) optionIssue(ctx, 'include_tables', 'include_tables needs exactly one database in backer.mysql.database');
}

/** `backer.mysql.*`: credentials, the databases, table filters and `options.*` for mysqldump. */
export const mysqlOptions: OptionsSpec<MysqlOptions> = {
  type: 'mysql',
  keys: ['user', 'password', 'database', 'ignore_tables', 'include_tables', 'ignore_data'],
  passThrough: 'options.<mysqldump option>',
  schema: z
    .looseObject({
      user: optionalString(),
      password: optionalString(),
      database,
      ignore_tables: tableList('ignore_tables'),
      include_tables: tableList('include_tables'),
      ignore_data: tableList('ignore_data'),
    })
    .superRefine((o, ctx) => {
      checkIncludeTables(o, ctx);
      checkToolOptions(o, REFUSED, REFUSED_REASON, ctx);
    })
    .transform((o) => ({
      user: parseRef(o.user ?? 'Text:root'),
      password: o.password === undefined ? null : parseRef(o.password),
      database: parseRef(o.database ?? '*'),
      ignoreTables: splitNames(o.ignore_tables ?? ''),
      includeTables: splitNames(o.include_tables ?? ''),
      ignoreData: splitNames(o.ignore_data ?? ''),
      options: toolOptionsOf(o),
    })),
};
