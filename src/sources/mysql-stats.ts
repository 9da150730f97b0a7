import type { DrillCheck, RestoreRequest, SourceInfo } from './types.js';
import { COMPONENT, countRows, listTables, qualifiedName, query, type MysqlSession } from './mysql-client.js';
import { CREATE_DATABASE, CREATE_TABLE, CURRENT_DATABASE, SqlLineFilter, SYSTEM_DATABASES, unquote, USE_DATABASE } from './mysql-lines.js';

/** What a mysql backup holds, recorded in the manifest's `source.stats` for drills. */
export interface MysqlStats {
  /** The user databases in the dump (never mysql, sys, …). */
  databases: string[];
  /** `db.table` → rows (base tables only; tables dumped without data count 0). */
  tables: Record<string, number>;
}

export interface DumpedObjects {
  databases: string[];
  tables: string[];
}

/**
 * Reads the dump's structure lines as they stream past (`-- Current Database:`, `USE`,
 * `CREATE TABLE`), so the stats name exactly what the dump holds, whatever the mandate's
 * include/ignore options. `database`: the one database of a dump without `USE` lines (tables mode).
 */
export function dumpScanner(database: string | null, end: (objects: DumpedObjects) => Promise<void>): SqlLineFilter {
  let current = database;
  let routine = false;
  const databases = new Set<string>(database === null ? [] : [database]);
  const tables = new Set<string>();
  const enter = (name: string): void => {
    current = unquote(name);
    if (!SYSTEM_DATABASES.has(current)) databases.add(current);
  };
  return new SqlLineFilter(
    {
      prefixes: ['-- Current Database: ', 'CREATE DATABASE ', 'USE ', 'CREATE TABLE ', 'DELIMITER '],
      line(text) {
        if (text.startsWith('DELIMITER ')) routine = text.trim() !== 'DELIMITER ;';
        if (routine) return text;
        const db = CURRENT_DATABASE.exec(text)?.[1] ?? CREATE_DATABASE.exec(text)?.[2] ?? USE_DATABASE.exec(text)?.[1];
        if (db !== undefined) enter(db);
        const table = CREATE_TABLE.exec(text)?.[1];
        if (table !== undefined && current !== null && !SYSTEM_DATABASES.has(current)) tables.add(`${current}.${unquote(table)}`);
        return text;
      },
      dropping: () => false,
      end: () => end({ databases: [...databases], tables: [...tables] }),
    },
    'DUMP_FAILED',
    COMPONENT,
  );
}

/**
 * Exact row counts of the dumped tables. mysqldump's consistent view (--single-transaction) is
 * not reachable from outside it, so the counts are taken right after the dump ended, before its
 * stream ends: rows written during the dump can make a drill of a busy database differ.
 */
export async function collectStats(session: MysqlSession, objects: DumpedObjects, withoutData: readonly string[]): Promise<MysqlStats> {
  const empty = new Set(withoutData);
  const counts = await countRows(session, objects.tables.filter((t) => !empty.has(t)), 'DUMP_FAILED');
  const tables: Record<string, number> = {};
  for (const t of [...objects.tables].sort()) tables[t] = empty.has(t) ? 0 : (counts.get(t) ?? 0);
  return { databases: objects.databases, tables };
}

/** The manifest's stats, when it has them (manifests of version 1 do not). */
export function readStats(manifest: SourceInfo): MysqlStats | null {
  const stats = manifest.stats as Partial<MysqlStats> | undefined;
  if (!stats || !Array.isArray(stats.databases) || typeof stats.tables !== 'object' || stats.tables === null) return null;
  return { databases: stats.databases.map(String), tables: stats.tables };
}

/** The databases a backup holds: its stats, else the manifest's list (null when it was `*`). */
export function dumpedDatabases(manifest: SourceInfo): string[] | null {
  const stats = readStats(manifest);
  if (stats) return stats.databases;
  return manifest.databases.includes('*') ? null : manifest.databases;
}

/** Drill checks: CHECK TABLE of every table, and row counts against the stats (renamed by FROM:TO). */
export async function drillChecks(session: MysqlSession, request: RestoreRequest): Promise<DrillCheck[]> {
  const stats = readStats(request.manifest);
  const selected = (db: string): boolean => request.databases.size === 0 || request.databases.has(db);
  const rename = (key: string): string => {
    const dot = key.indexOf('.');
    const db = key.slice(0, dot);
    return `${request.databases.get(db) ?? db}${key.slice(dot)}`;
  };
  const dumped = dumpedDatabases(request.manifest) ?? (await userDatabases(session));
  const databases = dumped.filter(selected).map((db) => request.databases.get(db) ?? db);
  const tables = await listTables(session, databases, 'DRILL_FAILED');
  const checks = await checkTables(session, tables);
  if (stats === null) return checks;
  const expected = new Map<string, number>();
  for (const [key, rows] of Object.entries(stats.tables)) if (selected(key.slice(0, key.indexOf('.')))) expected.set(rename(key), rows);
  const present = new Set(tables);
  const counts = await countRows(session, tables, 'DRILL_FAILED');
  for (const [table, rows] of expected) {
    const actual = present.has(table) ? (counts.get(table) ?? null) : null;
    checks.push({ check: `table ${table} rows`, ok: actual === rows, expected: rows, actual });
  }
  for (const table of tables) {
    if (!expected.has(table)) checks.push({ check: `table ${table} rows`, ok: false, expected: null, actual: counts.get(table) ?? null });
  }
  return checks;
}

async function userDatabases(session: MysqlSession): Promise<string[]> {
  const rows = await query(session, 'SHOW DATABASES', 'DRILL_FAILED', `database list in ${session.run.name}`);
  return rows.map((r) => r[0] ?? '').filter((d) => d !== '' && !SYSTEM_DATABASES.has(d));
}

/** `CHECK TABLE`: a table passes when its status rows all say OK and no row is an error. */
async function checkTables(session: MysqlSession, tables: readonly string[]): Promise<DrillCheck[]> {
  const results = new Map<string, string[]>();
  for (let i = 0; i < tables.length; i += 200) {
    const batch = tables.slice(i, i + 200);
    const rows = await query(session, `CHECK TABLE ${batch.map(qualifiedName).join(', ')}`, 'DRILL_FAILED', `CHECK TABLE in ${session.run.name}`);
    for (const [table = '', , type = '', text = ''] of rows) {
      if (type !== 'status' && type !== 'error') continue;
      results.set(table, [...(results.get(table) ?? []), type === 'status' ? text : `error: ${text}`]);
    }
  }
  return tables.map((table) => {
    const messages = results.get(table) ?? [];
    const ok = messages.length > 0 && messages.every((m) => m === 'OK');
    return { check: `CHECK TABLE ${table}`, ok, expected: 'OK', actual: messages.length > 0 ? messages.join('; ') : 'no status' };
  });
}
