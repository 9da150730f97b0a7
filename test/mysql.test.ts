import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import type { Manifest } from '../src/manifests/schema.js';
import { listBackups } from '../src/manifests/store.js';
import type { Target } from '../src/targets/types.js';
import type { Job } from '../src/queue/types.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { backupNow, backupThrough, CCRYPT_KEY, createTestEnv, localFiles as listLocalFiles, startDaemon, type TestEnv } from './helpers/env.js';
import { backupAndDecode } from './helpers/matrix.js';
import { checksums, ROOT_PASSWORD, seedShop, sql, startMariaDb } from './helpers/mariadb.js';
import { docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
const LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'mysql',
  'backer.interval': '0 3 * * *',
  'backer.target': 'local,s3',
  'backer.middleware': 'compression,encryption',
  'backer.mysql.user': 'Text:root',
  'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
  'backer.mysql.database': 'Env:MYSQL_DATABASE',
};

let env: TestEnv;
let daemon: Daemon;

const backup = (mandate: string): Promise<Job> => backupNow(daemon, mandate);

const localFiles = (mandate: string): Promise<string[]> => listLocalFiles(env, mandate);

beforeAll(async () => {
  env = await createTestEnv('mysql');
  await Promise.all([
    startMariaDb(host(), { name: 'shop-db', labels: { ...LABELS, 'backer.retention': '2' } }),
    startMariaDb(host(), { name: 'wrong-pw-db', labels: { ...LABELS, 'backer.mysql.password': 'Text:not-the-password' } }),
    startMariaDb(host(), {
      name: 'bad-labels-db',
      labels: {
        ...LABELS,
        'backer.interval': 'every day',
        'backer.target': 'nowhere',
        'backer.mysql.password': 'Env:NOPE',
        'backer.mysql.options.result-file': '/tmp/x',
      },
    }),
    startMariaDb(host(), {
      name: 'filter-db',
      labels: {
        ...LABELS,
        'backer.target': 'local',
        'backer.middleware': '',
        'backer.mysql.ignore_tables': 'orders',
        'backer.mysql.ignore_data': 'products',
        'backer.mysql.options.skip-dump-date': 'true',
      },
    }),
  ]);
  await seedShop(host(), 'shop-db');
  await seedShop(host(), 'filter-db', 20);
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.close();
  for (const name of ['shop-db', 'wrong-pw-db', 'bad-labels-db', 'restore-db', 'filter-db']) {
    await docker(host(), ['rm', '-f', name]).catch(() => undefined);
  }
});

describe('mysql backups of labelled containers', () => {
  let job: Job;
  let manifest: Manifest;

  it('discovers the labelled container and backs it up to local and S3', async () => {
    job = await backup('shop-db');
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');
    expect(job.result?.targets.map((t) => [t.target, t.status])).toEqual([
      ['local', 'succeeded'],
      ['s3', 'succeeded'],
    ]);
    const files = await localFiles('shop-db');
    expect(files.filter((f) => f.endsWith('.sql.gz.cpt'))).toHaveLength(1);
    expect(files.filter((f) => f.endsWith('.manifest.json'))).toHaveLength(1);
    const manifestFile = files.find((f) => f.endsWith('.manifest.json')) ?? '';
    manifest = JSON.parse(await readFile(join(env.dir, 'backups', 'shop-db', manifestFile), 'utf8')) as Manifest;
    expect(manifest.mandate).toBe('shop-db');
    expect(manifest.source).toMatchObject({ type: 'mysql', container: 'shop-db', image: 'hostuser:latest', databases: ['shop'] });
    expect(manifest.source.server_version).toMatch(/MariaDB/);
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:mysql', 'middleware:gzip:compression', 'middleware:ccrypt:encryption']);
  });

  it('stores an S3 artifact that decrypts with ccrypt -d, gunzips and restores with identical checksums', async () => {
    const s3Key = `backer/${job.result?.targets[1]?.artifact_key ?? ''}`;
    const encrypted = await s3Get(env.bucket, s3Key);
    const s3Manifest = JSON.parse((await s3Get(env.bucket, s3Key.replace(/\.sql\.gz\.cpt$/, '.manifest.json'))).toString()) as Manifest;
    expect(s3Manifest.target).toEqual({ name: 's3', type: 's3' });

    // Manifest checksums equal independently computed ones, at every step.
    expect(digest(encrypted)).toEqual({ size: s3Manifest.artifact.size, md5: s3Manifest.artifact.md5, sha256: s3Manifest.artifact.sha256 });
    const gzipped = await runProgram('ccrypt', ['-d', '-E', 'KEY'], encrypted, { KEY: CCRYPT_KEY });
    const raw = await runProgram('gzip', ['-d'], gzipped);
    const [rawStep, gzipStep, ccryptStep] = s3Manifest.steps;
    expect(digest(raw)).toEqual({ size: rawStep?.size, md5: rawStep?.md5, sha256: rawStep?.sha256 });
    expect(digest(gzipped)).toEqual({ size: gzipStep?.size, md5: gzipStep?.md5, sha256: gzipStep?.sha256 });
    expect(ccryptStep?.sha256).toBe(s3Manifest.artifact.sha256);
    expect(raw.toString()).toMatch(/-- Dump completed/);

    await startMariaDb(host(), { name: 'restore-db', env: { MYSQL_DATABASE: 'other' } });
    await sql(host(), 'restore-db', raw.toString());
    const tables = ['shop.products', 'shop.orders'];
    expect(await checksums(host(), 'restore-db', tables)).toBe(await checksums(host(), 'shop-db', tables));
    expect(await sql(host(), 'restore-db', 'SELECT COUNT(*) FROM shop.orders')).toBe('1000');
  });

  it('keeps exactly N backups per target and never touches other mandates', async () => {
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 1100)); // names carry the second
      expect((await backup('shop-db')).state).toBe('succeeded');
    }
    const files = await localFiles('shop-db');
    expect(files.filter((f) => f.endsWith('.manifest.json'))).toHaveLength(2);
    expect(files.filter((f) => f.endsWith('.cpt'))).toHaveLength(2);
    expect(files.some((f) => f.startsWith(manifest.name))).toBe(false);
    const listing = await daemon.services.targets.get('s3')?.list('shop-db/');
    expect(listing?.filter((o) => o.key.endsWith('.manifest.json'))).toHaveLength(2);
  });

  it('backs up through zstd, gpg and age too, and the real tools restore it', async () => {
    for (const chain of [['zstd', 'gpg'], ['age']]) {
      const { key, raw } = await backupAndDecode(daemon, env.bucket, 'shop-db', chain);
      expect(key).toMatch(chain[0] === 'age' ? /\.sql\.age$/ : /\.sql\.zst\.gpg$/);
      await sql(host(), 'restore-db', 'DROP DATABASE shop;');
      await sql(host(), 'restore-db', raw.toString());
      const tables = ['shop.products', 'shop.orders'];
      expect(await checksums(host(), 'restore-db', tables)).toBe(await checksums(host(), 'shop-db', tables));
    }
  });

  it('gives two backups in the same second distinct names instead of replacing the first', async () => {
    const first = await backupThrough(daemon, 'shop-db', ['compression']);
    const second = await backupThrough(daemon, 'shop-db', ['compression']);
    expect([first.status, second.status]).toEqual(['succeeded', 'succeeded']);
    expect(second.name).not.toBe(first.name);
    const listing = await listBackups(daemon.services.targets.get('local') as Target, 'shop-db');
    expect(listing.problems).toEqual([]);
    expect(listing.backups.map((b) => b.manifest.name)).toEqual(expect.arrayContaining([first.name, second.name]));
  });

  it('honours ignore_tables, ignore_data and pass-through options', async () => {
    const job = await backup('filter-db');
    expect(job.state).toBe('succeeded');
    const key = job.result?.targets[0]?.artifact_key ?? '';
    const dump = await readFile(join(env.dir, 'backups', key), 'utf8');
    expect(dump).toMatch(/CREATE TABLE `products`/);
    expect(dump).not.toMatch(/INSERT INTO `products`/);
    expect(dump).not.toMatch(/CREATE TABLE `orders`/);
    expect(dump).toMatch(/-- Dump completed\s*$/);
  });

  it('fails a backup with a wrong password: failed job, no manifest, no artifact', async () => {
    const failed = await backup('wrong-pw-db');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('DUMP_FAILED');
    expect(failed.error?.message).toMatch(/Access denied/);
    // Permanent: exactly one attempt, never retried.
    expect(failed.attempts).toBe(1);
    expect(await localFiles('wrong-pw-db')).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list('wrong-pw-db/')).toEqual([]);
  });

  it('reports bad labels with container and label, and keeps the other mandates working', () => {
    const { problems, mandates } = daemon.services.discovery.current();
    const where = problems.map((p) => p.where);
    expect(where).toContain('container bad-labels-db label backer.interval');
    expect(where).toContain('container bad-labels-db label backer.target');
    expect(where).toContain('container bad-labels-db label backer.mysql.password');
    const refused = problems.find((p) => p.where === 'container bad-labels-db label backer.mysql.options.result-file');
    expect(refused?.message).toMatch(/--result-file is managed by Backer/);
    // Other test files share the engine: only this file's containers are asserted.
    const names = mandates.map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['shop-db', 'wrong-pw-db']));
    expect(names).not.toContain('bad-labels-db');
    expect(env.logs.join('')).toMatch(/container bad-labels-db label backer\.interval/);
  });

  it('fails when the container is stopped, without a manifest', async () => {
    await docker(host(), ['stop', '-t', '1', 'wrong-pw-db']);
    const failed = await backup('wrong-pw-db');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('CONTAINER_NOT_RUNNING');
    expect(await localFiles('wrong-pw-db')).toEqual([]);
  });

  it('never writes a secret to the logs', () => {
    const logs = env.logs.join('');
    expect(logs).toContain('backup succeeded');
    for (const secret of [ROOT_PASSWORD, CCRYPT_KEY, inject('s3').secretAccessKey]) {
      expect(logs).not.toContain(secret);
    }
  });
});
