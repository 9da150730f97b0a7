import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import { BackerError } from '../src/errors.js';
import { createLogger, SecretRegistry } from '../src/logging/logger.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import { postgresSource } from '../src/sources/postgres.js';
import type { DumpContext, OptionOrigin } from '../src/sources/types.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { backupNow, CCRYPT_KEY, createTestEnv, localFiles as listLocalFiles, startDaemon, type TestEnv } from './helpers/env.js';
import { backupAndDecode } from './helpers/matrix.js';
import { PG_BIN, PG_PASSWORD, PG_USER, pgDocker, pgQuery, psql, runPostgres, startPgIdle, startPostgres, waitForPostgres } from './helpers/postgres.js';
import { allCommandLines, sampleCommandLines } from './helpers/proc.js';

const host = (): string => inject('dockerHost');
const REPORTER_PASSWORD = 'rep0rter-pw-7788';
const PG_MAJOR = /postgresql\/(\d+)\//.exec(PG_BIN)?.[1] ?? '';

/** Row count and md5 of every row in id order: equal on a faithful restore. */
async function tableChecksum(container: string, db: string, table: string): Promise<string> {
  return pgQuery(container, `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM ${table} t;`, db);
}

const SHOP_SQL = `
  CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text, tags text[]);
  CREATE TABLE orders (id serial PRIMARY KEY, product_id int REFERENCES products(id), qty int, created timestamptz);
  INSERT INTO products SELECT g, 'product-' || g, g * 1.25, repeat(E'x\\'"\\t', g % 7), ARRAY['a' || g, 'b'] FROM generate_series(1, 2000) g;
  INSERT INTO orders (product_id, qty, created) SELECT (g % 2000) + 1, g % 7, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute' FROM generate_series(1, 5000) g;
  CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 5;`;

const BASE = {
  'backer.enabled': 'true',
  'backer.type': 'postgres',
  'backer.postgres.password': 'Env:POSTGRES_PASSWORD',
  'backer.postgres.socket_dir': '/tmp',
};
const CONTAINERS = {
  shop: 'postgres-shop',
  all: 'postgres-all',
  custom: 'postgres-custom',
  wrongPw: 'postgres-wrongpw',
  big: 'postgres-big',
  noTool: 'postgres-notool',
  badOption: 'postgres-badopt',
  badAbbrev: 'postgres-badabbrev',
  badCustom: 'postgres-badcustom',
  restorePlain: 'postgres-restore-plain',
  restoreAll: 'postgres-restore-all',
  restoreCustom: 'postgres-restore-custom',
};

let env: TestEnv;
let daemon: Daemon;

const backup = (mandate: string): Promise<Job> => backupNow(daemon, mandate);

const localFiles = (mandate: string): Promise<string[]> => listLocalFiles(env, mandate);

async function localManifest(mandate: string): Promise<Manifest> {
  const file = (await localFiles(mandate)).find((f) => f.endsWith('.manifest.json')) ?? '';
  return JSON.parse(await readFile(join(env.dir, 'backups', mandate, file), 'utf8')) as Manifest;
}

beforeAll(async () => {
  env = await createTestEnv('postgres');
  const local = { 'backer.target': 'local' };
  // One `docker run` at a time (the engine is shared with the other test files); they start up together.
  const servers: [string, Record<string, string>][] = [
    [CONTAINERS.shop, { ...BASE, 'backer.target': 'local,s3', 'backer.middleware': 'compression,encryption', 'backer.postgres.database': 'shop' }],
    [CONTAINERS.all, { ...BASE, ...local, 'backer.postgres.database': '*', 'backer.postgres.globals': 'true' }],
    [CONTAINERS.custom, {
      ...BASE, ...local,
      'backer.postgres.database': 'Text:shop',
      'backer.postgres.format': 'custom',
      'backer.postgres.exec_user': PG_USER,
      'backer.postgres.options.compress': '0',
    }],
    [CONTAINERS.wrongPw, { ...BASE, ...local, 'backer.postgres.password': 'Text:not-the-password', 'backer.postgres.database': 'postgres' }],
    [CONTAINERS.big, {
      ...BASE, 'backer.target': 'local,s3', 'backer.middleware': 'compression,encryption', 'backer.postgres.database': 'big',
      // One INSERT per row: slow enough to be caught mid-way.
      'backer.postgres.options.inserts': 'true',
    }],
  ];
  for (const [name, labels] of servers) await runPostgres(name, labels);
  await startPgIdle(CONTAINERS.noTool, { ...BASE, ...local, 'backer.postgres.password': 'Text:unused' }, '/usr/local/bin');
  await startPgIdle(CONTAINERS.badOption, { ...BASE, 'backer.postgres.password': 'Text:x', 'backer.postgres.options.file': '/tmp/elsewhere.sql' });
  await startPgIdle(CONTAINERS.badAbbrev, { ...BASE, 'backer.postgres.password': 'Text:x', 'backer.postgres.options.fil': '/tmp/elsewhere.sql' });
  await startPgIdle(CONTAINERS.badCustom, { ...BASE, 'backer.postgres.password': 'Text:x', 'backer.postgres.format': 'custom', 'backer.postgres.database': 'a,b' });
  await Promise.all(servers.map(([name]) => waitForPostgres(name)));
  await Promise.all([
    (async () => {
      await psql(CONTAINERS.shop, 'CREATE DATABASE shop;');
      await psql(CONTAINERS.shop, SHOP_SQL, 'shop');
    })(),
    (async () => {
      await psql(CONTAINERS.custom, 'CREATE DATABASE shop;');
      await psql(CONTAINERS.custom, SHOP_SQL, 'shop');
    })(),
    (async () => {
      await psql(CONTAINERS.all, `CREATE ROLE reporter LOGIN PASSWORD '${REPORTER_PASSWORD}'; CREATE DATABASE alpha OWNER reporter; CREATE DATABASE beta;
        CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;`);
      await psql(CONTAINERS.all, `SET ROLE reporter; CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 3000) g;`, 'alpha');
      await psql(CONTAINERS.all, `CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz, payload jsonb);
        INSERT INTO events SELECT g, '2026-03-01'::timestamptz + g * interval '1 second', jsonb_build_object('n', g, 's', repeat('y', g % 13)) FROM generate_series(1, 4000) g;
        GRANT SELECT ON events TO reporter;`, 'beta');
    })(),
    (async () => {
      await psql(CONTAINERS.big, 'CREATE DATABASE big;');
      await psql(CONTAINERS.big, `CREATE TABLE blobs (id int PRIMARY KEY, body text); INSERT INTO blobs SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 250000) g;`, 'big');
    })(),
  ]);
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.close();
  for (const name of Object.values(CONTAINERS)) {
    await pgDocker(['rm', '-f', '-v', name]).catch(() => undefined);
  }
});

describe('postgres backups of labelled containers', () => {
  let job: Job;

  it('backs one database up in plain format through gzip and ccrypt to local and S3', async () => {
    job = await backup(CONTAINERS.shop);
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');
    expect(job.result?.targets.map((t) => [t.target, t.status])).toEqual([
      ['local', 'succeeded'],
      ['s3', 'succeeded'],
    ]);
    const files = await localFiles(CONTAINERS.shop);
    expect(files.filter((f) => f.endsWith('.sql.gz.cpt'))).toHaveLength(1);
    const manifest = await localManifest(CONTAINERS.shop);
    expect(manifest.source).toMatchObject({
      type: 'postgres',
      container: CONTAINERS.shop,
      image: 'hostuser:latest',
      databases: ['shop'],
      format: 'plain',
      globals: false,
      tool: 'pg_dump',
    });
    expect(manifest.source.server_version).toMatch(new RegExp(`^${PG_MAJOR}\\.`));
    expect(manifest.source.tool_version).toMatch(/^pg_dump \(PostgreSQL\) /);
    expect(manifest.steps.map((s) => [s.processor, s.mime])).toEqual([
      ['source:postgres', 'application/sql'],
      ['middleware:gzip:compression', 'application/gzip'],
      ['middleware:ccrypt:encryption', 'application/x-ccrypt'],
    ]);
  });

  it('stores an S3 artifact that decrypts with ccrypt -d, gunzips and restores with psql into identical tables', async () => {
    const s3Key = `backer/${job.result?.targets[1]?.artifact_key ?? ''}`;
    const encrypted = await s3Get(env.bucket, s3Key);
    const manifest = JSON.parse((await s3Get(env.bucket, s3Key.replace(/\.sql\.gz\.cpt$/, '.manifest.json'))).toString()) as Manifest;
    expect(manifest.target).toEqual({ name: 's3', type: 's3' });
    expect(digest(encrypted)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });
    const gzipped = await runProgram('ccrypt', ['-d', '-E', 'KEY'], encrypted, { KEY: CCRYPT_KEY });
    const raw = await runProgram('gzip', ['-d'], gzipped);
    const [rawStep, gzipStep] = manifest.steps;
    expect(digest(raw)).toEqual({ size: rawStep?.size, md5: rawStep?.md5, sha256: rawStep?.sha256 });
    expect(digest(gzipped)).toEqual({ size: gzipStep?.size, md5: gzipStep?.md5, sha256: gzipStep?.sha256 });
    expect(raw.toString()).toMatch(/-- PostgreSQL database dump complete/);
    expect(raw.toString()).toMatch(/CREATE DATABASE shop /);

    await startPostgres(CONTAINERS.restorePlain);
    // ON_ERROR_STOP: the dump restores into a fresh server without a single error.
    await psql(CONTAINERS.restorePlain, raw.toString());
    for (const table of ['products', 'orders']) {
      expect(await tableChecksum(CONTAINERS.restorePlain, 'shop', table)).toBe(await tableChecksum(CONTAINERS.shop, 'shop', table));
    }
    expect(await pgQuery(CONTAINERS.restorePlain, 'SELECT count(*) FROM big_orders', 'shop')).toBe(await pgQuery(CONTAINERS.shop, 'SELECT count(*) FROM big_orders', 'shop'));
    expect(await tableChecksum(CONTAINERS.restorePlain, 'shop', 'orders')).toMatch(/^5000:[0-9a-f]{32}$/);
  });

  it('backs up through zstd, gpg and age too, and the real tools restore it with psql', async () => {
    for (const chain of [['zstd', 'gpg'], ['age']]) {
      const { key, manifest, raw } = await backupAndDecode(daemon, env.bucket, CONTAINERS.shop, chain);
      expect(key).toMatch(chain[0] === 'age' ? /\.sql\.age$/ : /\.sql\.zst\.gpg$/);
      expect(manifest.steps.map((s) => s.processor)).toEqual(['source:postgres', ...chain.map((name) => `middleware:${name}:${name}`)]);
      expect(raw.toString()).toMatch(/-- PostgreSQL database dump complete/);
      // The plain restore test left shop in this server: drop it so the dump's CREATE DATABASE runs error-free.
      await psql(CONTAINERS.restorePlain, 'DROP DATABASE IF EXISTS shop;');
      await psql(CONTAINERS.restorePlain, raw.toString());
      for (const table of ['products', 'orders']) {
        expect(await tableChecksum(CONTAINERS.restorePlain, 'shop', table)).toBe(await tableChecksum(CONTAINERS.shop, 'shop', table));
      }
      expect(await pgQuery(CONTAINERS.restorePlain, 'SELECT count(*) FROM big_orders', 'shop')).toBe(await pgQuery(CONTAINERS.shop, 'SELECT count(*) FROM big_orders', 'shop'));
      expect(await tableChecksum(CONTAINERS.restorePlain, 'shop', 'orders')).toMatch(/^5000:[0-9a-f]{32}$/);
    }
  });

  it('dumps * with globals into one artifact that restores every database and the roles', async () => {
    const done = await backup(CONTAINERS.all);
    expect(done.error).toBeNull();
    const manifest = await localManifest(CONTAINERS.all);
    expect(manifest.source).toMatchObject({ type: 'postgres', databases: ['alpha', 'beta', 'postgres'], format: 'plain', globals: true });
    const file = (await localFiles(CONTAINERS.all)).find((f) => f.endsWith('.sql')) ?? '';
    const raw = await readFile(join(env.dir, 'backups', CONTAINERS.all, file));
    expect(digest(raw).sha256).toBe(manifest.artifact.sha256);
    expect(raw.toString()).toMatch(/-- PostgreSQL database cluster dump complete/);
    expect(raw.toString().match(/-- PostgreSQL database dump complete/g)).toHaveLength(3);

    await startPostgres(CONTAINERS.restoreAll);
    // Like a pg_dumpall restore, the only error is the superuser role that every cluster already has.
    const restored = await psql(CONTAINERS.restoreAll, raw.toString(), 'postgres', { stopOnError: false });
    const errors = restored.stderr.split('\n').filter((l) => /ERROR/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/role "postgres" already exists/);

    expect(await tableChecksum(CONTAINERS.restoreAll, 'alpha', 'items')).toBe(await tableChecksum(CONTAINERS.all, 'alpha', 'items'));
    expect(await tableChecksum(CONTAINERS.restoreAll, 'beta', 'events')).toBe(await tableChecksum(CONTAINERS.all, 'beta', 'events'));
    expect(await tableChecksum(CONTAINERS.restoreAll, 'postgres', 'notes')).toBe(await tableChecksum(CONTAINERS.all, 'postgres', 'notes'));
    expect(await pgQuery(CONTAINERS.restoreAll, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'alpha'")).toBe('reporter');
    // The role came back with its password: it logs in and reads its own table and its grant.
    const asReporter = { user: 'reporter', password: REPORTER_PASSWORD };
    expect((await psql(CONTAINERS.restoreAll, 'SELECT count(*) FROM items;', 'alpha', asReporter)).stdout.toString().trim()).toBe('3000');
    expect((await psql(CONTAINERS.restoreAll, 'SELECT count(*) FROM events;', 'beta', asReporter)).stdout.toString().trim()).toBe('4000');
  });

  it('dumps in custom format (exec_user set) and the archive restores with pg_restore', async () => {
    const done = await backup(CONTAINERS.custom);
    expect(done.error).toBeNull();
    const manifest = await localManifest(CONTAINERS.custom);
    expect(manifest.source).toMatchObject({ databases: ['shop'], format: 'custom' });
    expect(manifest.steps[0]?.mime).toBe('application/vnd.postgresql.custom');
    const file = (await localFiles(CONTAINERS.custom)).find((f) => f.endsWith('.dump')) ?? '';
    expect(manifest.artifact.key).toMatch(/\.dump$/);
    const archive = await readFile(join(env.dir, 'backups', CONTAINERS.custom, file));
    expect(archive.subarray(0, 5).toString()).toBe('PGDMP');

    await startPostgres(CONTAINERS.restoreCustom);
    await pgDocker(
      ['exec', '-i', '-e', 'PGPASSWORD', CONTAINERS.restoreCustom, 'pg_restore', '--exit-on-error', '--no-password', '-h', '/tmp', '-U', 'postgres', '--create', '--dbname=postgres'],
      archive,
    );
    for (const table of ['products', 'orders']) {
      expect(await tableChecksum(CONTAINERS.restoreCustom, 'shop', table)).toBe(await tableChecksum(CONTAINERS.custom, 'shop', table));
    }
  });

  it('fails with a wrong password: DUMP_FAILED, no manifest, no artifact', async () => {
    const failed = await backup(CONTAINERS.wrongPw);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('DUMP_FAILED');
    expect(failed.error?.message).toMatch(/postgres-wrongpw.*password authentication failed/);
    // Permanent: exactly one attempt, never retried.
    expect(failed.attempts).toBe(1);
    expect(await localFiles(CONTAINERS.wrongPw)).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list(`${CONTAINERS.wrongPw}/`)).toEqual([]);
  });

  it('fails before streaming anything when a named database does not exist', async () => {
    const origin: OptionOrigin = { container: CONTAINERS.shop, describe: (key) => key };
    const options = postgresSource.parse({ password: 'Env:POSTGRES_PASSWORD', database: 'shop, nosuch', socket_dir: '/tmp' }, origin);
    const context: DumpContext = {
      mandate: 'direct',
      signal: new AbortController().signal,
      logger: createLogger({ secrets: new SecretRegistry(), destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
      docker: new Docker({ socketPath: host().replace(/^unix:\/\//, '') }),
      registerSecret: () => undefined,
    };
    await expect(postgresSource.dump(options, { container: CONTAINERS.shop }, context)).rejects.toMatchObject({
      code: 'DUMP_FAILED',
      message: 'container postgres-shop has no database "nosuch" (from container postgres-shop label backer.postgres.database)',
    });
    // A static mandate's database key is named where it was written.
    const fromConfig: DumpContext = { ...context, describe: (key) => `backer.yml: mandates.pg-static.${key}` };
    await expect(postgresSource.dump(options, { container: CONTAINERS.shop }, fromConfig)).rejects.toMatchObject({
      code: 'DUMP_FAILED',
      message: 'container postgres-shop has no database "nosuch" (from backer.yml: mandates.pg-static.postgres.database)',
    });
  });

  it('fails with TOOL_MISSING when the container has no pg_dump on its PATH', async () => {
    const failed = await backup(CONTAINERS.noTool);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('TOOL_MISSING');
    expect(failed.error?.message).toMatch(/container postgres-notool has no pg_dump, psql on its PATH/);
    expect(await localFiles(CONTAINERS.noTool)).toEqual([]);
  });

  it('reports refused and invalid labels with container and label, and skips those containers', () => {
    const { problems, mandates } = daemon.services.discovery.current();
    const find = (where: string) => problems.find((p) => p.where === where);
    expect(find('container postgres-badopt label backer.postgres.options.file')?.message).toMatch(/--file is managed by Backer/);
    expect(find('container postgres-badabbrev label backer.postgres.options.fil')?.message).toMatch(/--fil abbreviates --file/);
    expect(find('container postgres-badcustom label backer.postgres.database')?.message).toMatch(/format custom holds exactly one database/);
    const names = mandates.map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining([CONTAINERS.shop, CONTAINERS.all, CONTAINERS.custom]));
    for (const bad of [CONTAINERS.badOption, CONTAINERS.badAbbrev, CONTAINERS.badCustom]) expect(names).not.toContain(bad);
  });

  it('fails when the container is stopped, without a manifest', async () => {
    await pgDocker(['stop', '-t', '2', CONTAINERS.wrongPw]);
    const failed = await backup(CONTAINERS.wrongPw);
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('CONTAINER_NOT_RUNNING');
    expect(await localFiles(CONTAINERS.wrongPw)).toEqual([]);
  });

  it('passes no secret through any process argv during a backup', async () => {
    const queued = daemon.queue.enqueue(CONTAINERS.big, 'api');
    const argvs = await sampleCommandLines(daemon.queue.wait(queued.id), 5);
    expect((await daemon.queue.wait(queued.id)).state).toBe('succeeded');
    expect(argvs.some((a) => a.startsWith('pg_dump') && a.includes("dbname='big'"))).toBe(true);
    for (const a of argvs) {
      expect(a).not.toContain(PG_PASSWORD);
      expect(a).not.toContain(CCRYPT_KEY);
    }
  });

  it('fails a dump whose container is removed mid-way: failed job, nothing new on the targets', async () => {
    const before = (await localFiles(CONTAINERS.big)).sort();
    expect(before).toHaveLength(2);
    const queued = daemon.queue.enqueue(CONTAINERS.big, 'api');
    let removed = false;
    for (let i = 0; i < 4000 && !removed; i++) {
      const dumping = (await allCommandLines()).some((p) => p.argv.startsWith('pg_dump') && p.argv.includes("dbname='big'"));
      if (dumping) {
        await new Promise((r) => setTimeout(r, 200));
        await pgDocker(['rm', '-f', CONTAINERS.big]);
        removed = true;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(removed).toBe(true);
    const failed = await daemon.queue.wait(queued.id);
    expect(failed.state).toBe('failed');
    expect(['DUMP_FAILED', 'DUMP_TRUNCATED']).toContain(failed.error?.code);
    expect(failed.error?.message).toMatch(/pg_dump of database "big" in container postgres-big .*(exited|went away)/);
    expect((await localFiles(CONTAINERS.big)).sort()).toEqual(before);
    const s3 = await daemon.services.targets.get('s3')?.list(`${CONTAINERS.big}/`);
    expect(s3?.map((o) => o.key).sort()).toEqual(before.map((f) => `${CONTAINERS.big}/${f}`));
  });

  it('never writes a secret to the logs', () => {
    const logs = env.logs.join('');
    expect(logs).toContain('backup succeeded');
    for (const secret of [PG_PASSWORD, CCRYPT_KEY, inject('s3').secretAccessKey]) expect(logs).not.toContain(secret);
  });
});

describe('postgres label parsing', () => {
  const origin: OptionOrigin = { container: 'db', describe: (key) => `container db label backer.postgres.${key}` };
  const parse = (raw: Record<string, string>) => postgresSource.parse(raw, origin);
  const refusal = (raw: Record<string, string>): string => {
    try {
      parse(raw);
    } catch (err) {
      expect(err).toBeInstanceOf(BackerError);
      expect((err as BackerError).code).toBe('LABEL_INVALID');
      return (err as BackerError).message;
    }
    throw new Error(`accepted ${JSON.stringify(raw)}`);
  };

  it('has documented defaults', () => {
    expect(parse({})).toMatchObject({
      user: { kind: 'text', value: 'postgres' },
      password: null,
      database: { kind: 'literal', value: '*' },
      format: 'plain',
      globals: false,
      execUser: null,
      socketDir: null,
    });
  });

  it('refuses options Backer manages, their abbreviations, and compress for plain dumps', () => {
    for (const name of ['file', 'format', 'dbname', 'host', 'username', 'password', 'no-password', 'create', 'jobs', 'binary_upgrade']) {
      expect(refusal({ [`options.${name}`]: 'x' })).toMatch(/is managed by Backer/);
    }
    expect(refusal({ 'options.form': 'c' })).toMatch(/--form abbreviates --format/);
    expect(refusal({ 'options.compress': '9' })).toMatch(/^container db label backer\.postgres\.options\.compress: --compress is managed/);
    expect(parse({ 'options.compress': '0', format: 'custom', database: 'shop' }).options.get('compress')).toBe('0');
    expect(parse({ 'options.clean': 'true', 'options.if_exists': 'true' }).options).toEqual(new Map([['clean', true], ['if-exists', true]]));
  });

  it('refuses custom format with several databases or globals, and bad values', () => {
    expect(refusal({ format: 'custom' })).toMatch(/backer\.postgres\.database: format custom holds exactly one database/);
    expect(refusal({ format: 'custom', database: 'shop', globals: 'true' })).toMatch(/backer\.postgres\.globals:/);
    expect(refusal({ format: 'directory' })).toMatch(/backer\.postgres\.format: expected plain or custom/);
    expect(refusal({ globals: 'maybe' })).toMatch(/backer\.postgres\.globals: expected true or false \(also yes\/no, on\/off, 1\/0\), received "maybe"/);
    expect(refusal({ socket_dir: 'tmp' })).toMatch(/backer\.postgres\.socket_dir/);
    expect(refusal({ socket_dir: '/tmp,db.example.com' })).toMatch(/backer\.postgres\.socket_dir/);
    expect(refusal({ exec_user: 'root; rm' })).toMatch(/backer\.postgres\.exec_user/);
    expect(refusal({ host: 'db' })).toMatch(/backer\.postgres\.host: unknown postgres option/);
    expect(refusal({ 'options.table': 'a\nb' })).toMatch(/control characters/);
  });
});
