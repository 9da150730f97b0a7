import { inject } from 'vitest';
import { docker, HOST_IMAGE } from '../setup/services.js';

/**
 * SQLite "apps" for the daemon tests (as in test/sources/sqlite-restore.test.ts): a container of
 * the host image with the host's sqlite3 through /usr, a volume at /data, stopping at once on SIGTERM.
 */

const host = (): string => inject('dockerHost');

/** `path` replaces the container's PATH (e.g. one without sqlite3, for a missing tool). */
export async function startSqliteApp(name: string, labels: Record<string, string> = {}, options: { path?: string } = {}): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', '/data'];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  if (options.path !== undefined) args.push('-e', `PATH=${options.path}`);
  await docker(host(), [...args, HOST_IMAGE, '/usr/bin/bash', '-c', 'trap "exit 0" TERM; /usr/bin/sleep infinity & wait']);
}

export async function sqlite(container: string, sql: string, db = '/data/app.db'): Promise<string> {
  return docker(host(), ['exec', '-i', container, 'sqlite3', '-batch', '-bail', '-cmd', '.timeout 10000', db], sql);
}

/** A WAL database with `rows` items (random blobs) and a table with an odd name. */
export async function seedSqlite(container: string, rows: number, db = '/data/app.db'): Promise<void> {
  await sqlite(
    container,
    `PRAGMA journal_mode=WAL;
     CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body BLOB);
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows})
       INSERT INTO items SELECT i, 'item-' || i, randomblob(100 + i % 200) FROM s;
     CREATE TABLE "odd ""name"" table" (v TEXT);
     INSERT INTO "odd ""name"" table" VALUES ('a'), ('b'), ('c');`,
    db,
  );
}

/** Table names and a hash of every item row: equal exactly when the data is. */
export async function sqliteFingerprint(container: string, db = '/data/app.db'): Promise<string> {
  const tables = await sqlite(container, "SELECT group_concat(name, '|') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name);", db);
  const items = await sqlite(container, "SELECT hex(sha3_query('SELECT * FROM items ORDER BY id'));", db);
  return `${tables}\n${items}`;
}

/** Renames every 7th item, deletes the items after the first `keep` (300 unless given), adds a table. */
export async function changeSqlite(container: string, options: { db?: string; keep?: number } = {}): Promise<void> {
  const sql = `UPDATE items SET name = 'changed' WHERE id % 7 = 0; DELETE FROM items WHERE id > ${options.keep ?? 300}; CREATE TABLE added (x); INSERT INTO added VALUES (1);`;
  await sqlite(container, sql, options.db);
}
