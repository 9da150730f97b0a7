import { docker, HOST_IMAGE } from '../setup/services.js';

export const ROOT_PASSWORD = 'S3cr3t-root-pw!';

export interface MariaDbOptions {
  name: string;
  labels?: Record<string, string>;
  env?: Record<string, string>;
}

const START = [
  'mkdir -p /var/lib/mysql /run/mysqld',
  'mariadb-install-db --user=root --datadir=/var/lib/mysql >/tmp/i.log 2>&1',
  'exec mariadbd --user=root --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock --skip-networking --innodb-buffer-pool-size=32M --skip-log-bin',
].join(' && ');

/** A real MariaDB server in a (labelled) container made from the host's own binaries. */
export async function startMariaDb(host: string, options: MariaDbOptions): Promise<void> {
  const env = { MYSQL_ROOT_PASSWORD: ROOT_PASSWORD, MYSQL_DATABASE: 'shop', ...options.env };
  const args = ['run', '-d', '--name', options.name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro'];
  for (const k of Object.keys(env)) args.push('-e', k);
  for (const [k, v] of Object.entries(options.labels ?? {})) args.push('--label', `${k}=${v}`);
  args.push(HOST_IMAGE, 'bash', '-c', START);
  await docker(host, args, undefined, env);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const ok = await docker(host, ['exec', options.name, 'mariadb', '-uroot', '-e', 'select 1']).then(() => true, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  // Like the official image: root gets the password, MYSQL_DATABASE is created.
  await sql(host, options.name, `ALTER USER 'root'@'localhost' IDENTIFIED BY '${ROOT_PASSWORD}'; CREATE DATABASE IF NOT EXISTS ${env.MYSQL_DATABASE};`, null);
}

/** Runs SQL as root; the password travels in the environment of docker exec, not argv. */
export async function sql(host: string, container: string, statements: string, password: string | null = ROOT_PASSWORD): Promise<string> {
  const args = ['exec', '-i'];
  if (password !== null) args.push('-e', 'MYSQL_PWD');
  args.push(container, 'mariadb', '-uroot', '--batch', '--skip-column-names');
  return docker(host, args, statements, password === null ? {} : { MYSQL_PWD: password });
}

export async function seedShop(host: string, container: string, rows = 500): Promise<void> {
  await sql(
    host,
    container,
    `USE shop;
     CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), note TEXT);
     CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, product_id INT, qty INT, created DATETIME);
     INSERT INTO products SELECT seq, CONCAT('product-', seq), seq * 1.25, REPEAT('x', seq % 50) FROM seq_1_to_${rows};
     INSERT INTO orders (product_id, qty, created) SELECT seq, seq % 7, '2026-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_${rows * 2};`,
  );
}

/** CHECKSUM TABLE of each table, for comparing a restore with its source. */
export async function checksums(host: string, container: string, tables: string[]): Promise<string> {
  return sql(host, container, `CHECKSUM TABLE ${tables.join(', ')} EXTENDED;`);
}

/**
 * The state of one database as restore tests compare it: its base tables and the CHECKSUM TABLE
 * of each, without the database name (so `shop` and a restored `shop_copy` compare equal).
 */
export async function databaseFingerprint(host: string, container: string, database: string): Promise<string> {
  const list = await sql(host, container, `SELECT table_name FROM information_schema.tables WHERE table_schema = '${database}' AND table_type = 'BASE TABLE' ORDER BY 1`);
  const tables = list.split('\n').filter(Boolean);
  if (tables.length === 0) return 'no tables';
  const sums = await checksums(host, container, tables.map((t) => `${database}.${t}`));
  return `${tables.join(',')}\n${sums.split('\n').map((l) => l.replace(`${database}.`, '')).join('\n')}`;
}
