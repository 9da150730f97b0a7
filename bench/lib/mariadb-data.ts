/** The bench's MariaDB databases: generated rows whose dump is about the asked size. */
import { docker } from '../../test/setup/services.js';
import { ROOT_PASSWORD, sql, startMariaDb } from '../../test/helpers/mariadb.js';

export { ROOT_PASSWORD };

/** Starts a MariaDB container (no labels: the bench's configs name it in a static mandate). */
export async function startDatabase(host: string, name: string): Promise<void> {
  await startMariaDb(host, { name });
}

/** ~1.1 KiB of dump per row: a TEXT of repeated md5 hex. */
export async function generate(host: string, container: string, sizeMb: number): Promise<number> {
  const rows = Math.round((sizeMb * 1024 * 1024) / 1100);
  await sql(host, container, 'CREATE DATABASE IF NOT EXISTS bench; USE bench; CREATE TABLE t (id INT PRIMARY KEY, body TEXT);');
  const chunk = 200_000;
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await sql(host, container, `USE bench; INSERT INTO t SELECT seq, CONCAT(REPEAT(MD5(seq), 31), MD5(seq * 7)) FROM seq_${from}_to_${to};`);
  }
  return rows;
}

/** Rows and a checksum of bench.t, to check that a restore brought the whole table back. */
export async function fingerprint(host: string, container: string): Promise<string> {
  return sql(host, container, 'SELECT COUNT(*) FROM bench.t; CHECKSUM TABLE bench.t;');
}

/** Drops the restored database so that the next restore starts from the same empty state. */
export async function dropBench(host: string, container: string): Promise<void> {
  await sql(host, container, 'DROP DATABASE IF EXISTS bench;');
}

export async function removeContainers(host: string, names: string[]): Promise<void> {
  await docker(host, ['rm', '-f', ...names]);
}

/** The shell's dump: the same tool and options as Backer's mysql source (its DEFAULTS), password in MYSQL_PWD. */
export function dumpCommand(container: string): string {
  return `docker exec -e MYSQL_PWD ${container} mariadb-dump --user=root --single-transaction --routines --events --triggers --hex-blob --databases bench`;
}
