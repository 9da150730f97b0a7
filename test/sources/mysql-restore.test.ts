import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import type { Manifest } from '../../src/manifests/schema.js';
import { mysqlSource, type MysqlOptions } from '../../src/sources/mysql.js';
import type { RestoreDestination, SourceInfo } from '../../src/sources/types.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv } from '../helpers/env.js';
import { databaseFingerprint, seedShop, sql, startMariaDb } from '../helpers/mariadb.js';
import { docker, HOST_IMAGE } from '../setup/services.js';
import { dumpAll, original, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const SRC = `mr-${ID}-src`;
const DST = `mr-${ID}-dst`;
const FRESH = `mr-${ID}-fresh`;
const NOTOOL = `mr-${ID}-notool`;
const STOPPED = `mr-${ID}-stopped`;
const MANDATE = `mr-${ID}`;

const options = (raw: Record<string, string> = {}): MysqlOptions =>
  mysqlSource.parse({ password: 'Env:MYSQL_ROOT_PASSWORD', database: 'shop', ...raw }, { container: SRC, describe: (k) => `label backer.mysql.${k}` });
const into = (container: string): RestoreDestination => ({ kind: 'container', container, original: false, scratch: false });
/** `bytes` in pieces of `size` (default: one piece), as a decoding pipeline hands them over. */
const chunked = (bytes: Buffer, size = bytes.length): Readable => {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return Readable.from(pieces);
};
const restore = (info: SourceInfo, bytes: Buffer, destination: RestoreDestination, databases = new Map<string, string>(), size?: number): Promise<void> =>
  mysqlSource.restore?.(options(), restoreRequest(SRC, destination, info, { databases }), chunked(bytes, size), sourceContext('mr')) ?? Promise.reject(new Error('no restore'));
const fingerprint = (container: string, db = 'shop'): Promise<string> => databaseFingerprint(host(), container, db);
const refusal = (p: Promise<unknown> | undefined): Promise<unknown> => (p ?? Promise.reject(new Error('no planRestore'))).then(() => null, (e: unknown) => e);

beforeAll(async () => {
  await Promise.all([startMariaDb(host(), { name: SRC }), startMariaDb(host(), { name: DST }), startMariaDb(host(), { name: FRESH })]);
  await seedShop(host(), SRC);
  // A trigger, a view and a procedure: their DELIMITER blocks must pass the restore's rewrite.
  await sql(
    host(),
    SRC,
    `USE shop;
     CREATE VIEW cheap AS SELECT id, name FROM products WHERE price < 10;
     DELIMITER //
     CREATE TRIGGER qty_floor BEFORE INSERT ON orders FOR EACH ROW BEGIN IF NEW.qty < 0 THEN SET NEW.qty = 0; END IF; END//
     CREATE PROCEDURE restock() BEGIN UPDATE products SET note = 'restocked' WHERE id = 1; END//
     DELIMITER ;`,
  );
  await docker(host(), ['run', '-d', '--name', NOTOOL, '--network', 'none', '-v', '/usr:/usr:ro', '-e', 'PATH=/nowhere', HOST_IMAGE, '/usr/bin/sleep', 'infinity']);
  await docker(host(), ['create', '--name', STOPPED, '--network', 'none', '-v', '/usr:/usr:ro', HOST_IMAGE, '/usr/bin/sleep', 'infinity']);
}, 180_000);

afterAll(async () => {
  for (const name of [SRC, DST, FRESH, NOTOOL, STOPPED]) await docker(host(), ['rm', '-f', name]).catch(() => undefined);
});

describe('mysql restore into other databases and containers', () => {
  it('records the dumped databases and exact row counts in stats', async () => {
    const { info } = await dumpAll(mysqlSource, options(), SRC);
    expect(info.stats).toEqual({ databases: ['shop'], tables: { 'shop.orders': 1000, 'shop.products': 500 } });
    expect(info.server_version).toMatch(/MariaDB/);
  });

  it('restores FROM:TO under another name into the same server, leaving FROM untouched', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options(), SRC);
    await sql(host(), SRC, 'CREATE DATABASE shop_copy; CREATE TABLE shop_copy.junk (id INT); INSERT INTO shop_copy.junk VALUES (1);');
    const before = await fingerprint(SRC);
    const databases = new Map([['shop', 'shop_copy']]);
    const plan = await mysqlSource.planRestore?.(options(), restoreRequest(SRC, original(SRC), info, { databases }), sourceContext('mr'));
    expect(plan?.steps).toContain(`drop and recreate database shop_copy in container ${SRC}, then load database shop of the backup into it`);
    await restore(info, bytes, original(SRC), databases, 4096);
    expect(await fingerprint(SRC, 'shop_copy')).toBe(before);
    expect(await fingerprint(SRC)).toBe(before);
    expect(await sql(host(), SRC, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'shop_copy' AND table_name = 'junk'")).toBe('0');
    expect(await sql(host(), SRC, 'SELECT COUNT(*) FROM shop_copy.cheap')).toBe(await sql(host(), SRC, 'SELECT COUNT(*) FROM shop.cheap'));
    const checks = (await mysqlSource.check?.(options(), restoreRequest(SRC, original(SRC), info, { databases }), sourceContext('mr'))) ?? [];
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.check)).toContain('table shop_copy.orders rows');
  });

  it('restores into a second container, replacing the tables it had (input in 7-byte pieces)', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options(), SRC);
    await sql(host(), DST, 'CREATE TABLE shop.extra (id INT); INSERT INTO shop.extra VALUES (7);');
    await restore(info, bytes, into(DST), new Map(), 7);
    expect(await fingerprint(DST)).toBe(await fingerprint(SRC));
    expect(await sql(host(), DST, "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = 'shop'")).toBe('1');
    expect(await sql(host(), DST, "SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'shop'")).toBe('1');
  });

  it('prepareRestore writes nothing (it runs during the hash-first pass); its second half then loads the dump', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options(), SRC);
    const target = `shop_prepared_${ID}`;
    const request = restoreRequest(SRC, into(DST), info, { databases: new Map([['shop', target]]) });
    const apply = await mysqlSource.prepareRestore?.(options(), request, sourceContext('mr'));
    if (!apply) throw new Error('the mysql source has no prepareRestore');
    expect(await sql(host(), DST, `SHOW DATABASES LIKE '${target}'`)).toBe('');
    await apply(chunked(bytes, 65536));
    expect(await fingerprint(DST, target)).toBe(await fingerprint(SRC));
  });

  it('a SQL error half-way rejects with RESTORE_FAILED and the server error line', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options(), SRC);
    const text = bytes.toString('utf8');
    const at = text.indexOf('-- Dumping data for table `products`');
    expect(at).toBeGreaterThan(0);
    const broken = Buffer.from(`${text.slice(0, at)}THIS IS NOT SQL AT ALL;\n${text.slice(at)}`);
    const failure = await restore(info, broken, into(DST)).then(() => null, (e: unknown) => e);
    expect(failure).toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringMatching(new RegExp(`in container ${DST} exited with code 1: ERROR 1064 .*at line \\d+`)) as string });
    expect(await sql(host(), DST, 'SELECT 1')).toBe('1');
  });

  it('restores an --all-databases dump: every user database, never the system ones', async () => {
    await sql(host(), SRC, 'CREATE DATABASE IF NOT EXISTS crm; CREATE TABLE IF NOT EXISTS crm.leads (id INT PRIMARY KEY); REPLACE INTO crm.leads VALUES (1), (2), (3);');
    await sql(host(), DST, "CREATE DATABASE keepme; CREATE USER 'dst_only'@'localhost';");
    const { bytes, info } = await dumpAll(mysqlSource, options({ database: '*' }), SRC);
    expect(info.databases).toEqual(['*']);
    expect((info.stats as { databases: string[] }).databases).toEqual(expect.arrayContaining(['shop', 'crm', 'shop_copy']));
    expect((info.stats as { databases: string[] }).databases).not.toContain('mysql');
    const plan = await mysqlSource.planRestore?.(options(), restoreRequest(SRC, into(DST), info), sourceContext('mr'));
    expect(plan?.steps).toContain(`leave the system databases (mysql, sys, information_schema, performance_schema) in container ${DST} as they are`);
    await restore(info, bytes, into(DST));
    expect(await fingerprint(DST)).toBe(await fingerprint(SRC));
    expect(await fingerprint(DST, 'crm')).toBe(await fingerprint(SRC, 'crm'));
    // The destination's own users and databases stay: the mysql database was not loaded.
    expect(await sql(host(), DST, "SELECT COUNT(*) FROM mysql.user WHERE user = 'dst_only'")).toBe('1');
    expect(await sql(host(), DST, "SHOW DATABASES LIKE 'keepme'")).toBe('keepme');
  });

  it('an include_tables backup replaces only its tables; the database and its other tables stay', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options({ include_tables: 'products' }), SRC);
    expect(info.stats).toEqual({ databases: ['shop'], tables: { 'shop.products': 500 } });
    await sql(host(), DST, "CREATE TABLE shop.keep_me (id INT); INSERT INTO shop.keep_me VALUES (1); UPDATE shop.products SET name = 'changed';");
    const plan = await mysqlSource.planRestore?.(options(), restoreRequest(SRC, into(DST), info), sourceContext('mr'));
    expect(plan?.steps).toContain(`replace the tables products of database shop in container ${DST} (its other tables stay)`);
    await restore(info, bytes, into(DST));
    expect(await sql(host(), DST, 'CHECKSUM TABLE shop.products EXTENDED')).toBe(await sql(host(), SRC, 'CHECKSUM TABLE shop.products EXTENDED'));
    expect(await sql(host(), DST, 'SELECT COUNT(*) FROM shop.keep_me')).toBe('1');
  });

  it('tables dumped without data count 0 in stats, and the drill of such a backup passes', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options({ ignore_data: 'orders' }), SRC);
    expect(info.stats).toEqual({ databases: ['shop'], tables: { 'shop.orders': 0, 'shop.products': 500 } });
    await restore(info, bytes, into(FRESH));
    const checks = (await mysqlSource.check?.(options(), restoreRequest(SRC, into(FRESH), info), sourceContext('mr'))) ?? [];
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks).toContainEqual({ check: 'table shop.orders rows', ok: true, expected: 0, actual: 0 });
  });
});

describe('mysql planRestore refuses before touching anything', () => {
  it('names the --database FROM that the backup does not hold', async () => {
    const { info } = await dumpAll(mysqlSource, options(), SRC);
    const request = restoreRequest(SRC, into(DST), info, { databases: new Map([['nope', 'x'], ['shop', 'y']]) });
    const err = await refusal(mysqlSource.planRestore?.(options(), request, sourceContext('mr')));
    expect(err).toMatchObject({ code: 'RESTORE_REFUSED', message: '--database names nope, which the backup does not hold (it holds shop)' });
    await expect(refusal(mysqlSource.restore?.(options(), request, Readable.from([Buffer.from('')]), sourceContext('mr')))).resolves.toMatchObject({ code: 'RESTORE_REFUSED' });
  });

  it('names a destination without a mariadb or mysql client', async () => {
    const { info } = await dumpAll(mysqlSource, options(), SRC);
    const err = await refusal(mysqlSource.planRestore?.(options(), restoreRequest(SRC, into(NOTOOL), info), sourceContext('mr')));
    expect(err).toMatchObject({ code: 'TOOL_MISSING', message: `container ${NOTOOL} has none of mariadb, mysql on its PATH` });
  });

  it('names a destination that does not run', async () => {
    const { info } = await dumpAll(mysqlSource, options(), SRC);
    const err = await refusal(mysqlSource.planRestore?.(options(), restoreRequest(SRC, into(STOPPED), info), sourceContext('mr')));
    expect(err).toMatchObject({ code: 'CONTAINER_NOT_RUNNING', message: `container ${STOPPED} is not running (created)` });
  });

  it('refuses a server older than the dumped one, and a destination that is not a container', async () => {
    const { info } = await dumpAll(mysqlSource, options(), SRC);
    const newer = { ...info, server_version: '99.4.1-MariaDB' };
    const err = await refusal(mysqlSource.planRestore?.(options(), restoreRequest(SRC, into(DST), newer), sourceContext('mr')));
    expect(err).toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringMatching(new RegExp(`^container ${DST} runs MariaDB \\d+\\.\\d+, older than the server the backup was dumped from \\(MariaDB 99\\.4\\)`)) as string });
    const file = await refusal(mysqlSource.planRestore?.(options(), restoreRequest(SRC, { kind: 'file', path: '/tmp/x' }, info), sourceContext('mr')));
    expect(file).toMatchObject({ code: 'RESTORE_REFUSED', message: 'a mysql backup restores into a container, not a file' });
  });
});

describe('mysql drill checks', () => {
  it('pass after a restore into a fresh container, and name the table of a dump truncated by hand', async () => {
    const { bytes, info } = await dumpAll(mysqlSource, options(), SRC);
    const request = restoreRequest(SRC, into(FRESH), info);
    await restore(info, bytes, into(FRESH));
    const checks = (await mysqlSource.check?.(options(), request, sourceContext('mr'))) ?? [];
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks).toEqual(expect.arrayContaining([
      { check: 'CHECK TABLE shop.orders', ok: true, expected: 'OK', actual: 'OK' },
      { check: 'table shop.orders rows', ok: true, expected: 1000, actual: 1000 },
      { check: 'table shop.products rows', ok: true, expected: 500, actual: 500 },
    ]));

    // Ten row tuples of orders cut out of the dump; the manifest's stats stay those of the backup.
    const lines = bytes.toString('utf8').split('\n');
    const start = lines.findIndex((l) => l.startsWith('INSERT INTO `orders` VALUES'));
    const cut = lines.filter((l, i) => !(i > start + 100 && i <= start + 110 && l.startsWith('(') && l.endsWith('),')));
    expect(cut.length).toBe(lines.length - 10);
    await restore(info, Buffer.from(cut.join('\n')), into(FRESH));
    const after = (await mysqlSource.check?.(options(), request, sourceContext('mr'))) ?? [];
    expect(after.filter((c) => !c.ok)).toEqual([{ check: 'table shop.orders rows', ok: false, expected: 1000, actual: 990 }]);
  });
});

describe('mysql backups through a real daemon process carry the stats a drill compares', () => {
  it('backs up through backer daemon, and the manifest stats check out after a restore from the artifact', async () => {
    const env = await createTestEnv(`mr${ID}`, `mandates:\n  ${MANDATE}:\n    container: ${SRC}\n    type: mysql\n    interval: "0 0 29 2 *"\n    target: local\n    mysql:\n      password: Env:MYSQL_ROOT_PASSWORD\n      database: shop\n`);
    const daemon = spawnDaemon(env.configPath);
    const socket = join(env.dir, 'data', 'backer.sock');
    try {
      await waitForHealth(daemon, socket);
      const backup = await cli(['backup', MANDATE, '--wait', '--config', env.configPath]);
      expect(backup.code, backup.stdout + backup.stderr).toBe(0);
      const dir = join(env.dir, 'backups', MANDATE);
      const files = await readdir(dir);
      const manifest = JSON.parse(await readFile(join(dir, files.find((f) => f.endsWith('.manifest.json')) ?? ''), 'utf8')) as Manifest;
      expect(manifest.source.stats).toEqual({ databases: ['shop'], tables: { 'shop.orders': 1000, 'shop.products': 500 } });
      const artifact = await readFile(join(dir, files.find((f) => f.endsWith('.sql')) ?? ''));
      await restore(manifest.source, artifact, into(FRESH));
      const checks = (await mysqlSource.check?.(options(), restoreRequest(SRC, into(FRESH), manifest.source), sourceContext('mr'))) ?? [];
      expect(checks.length).toBeGreaterThan(3);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
    }
  });
});

// Last: its second test leaves the source's shop half-restored on purpose.
describe('mysql restore suite', () => {
  restoreSuite('mysql', () => ({
    source: mysqlSource,
    options: options(),
    container: SRC,
    async change() {
      await sql(host(), SRC, "USE shop; INSERT INTO products VALUES (9001, 'new', 1.00, 'n'); UPDATE orders SET qty = qty + 1 WHERE id < 50; DELETE FROM products WHERE id = 3; CREATE TABLE added (id INT);");
    },
    fingerprint: () => fingerprint(SRC),
  }));
});
