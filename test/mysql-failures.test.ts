// Dumps of this file's containers are told apart from other files' by --skip-extended-insert.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import { createTarget } from '../src/targets/index.js';
import type { Target } from '../src/targets/types.js';
import { listBackups } from '../src/manifests/store.js';
import { backupJob, CCRYPT_KEY, createTestEnv, startDaemon, storedJob, type TestEnv } from './helpers/env.js';
import { ROOT_PASSWORD, sql, startMariaDb } from './helpers/mariadb.js';
import { allCommandLines, sampleCommandLines } from './helpers/proc.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
let env: TestEnv;
let daemon: Daemon;

beforeAll(async () => {
  const s3 = inject('s3');
  // A bucket that does not exist: every write there fails, the other targets must not notice.
  env = await createTestEnv(
    'mysqlfail',
    '',
    `  - name: broken
    type: s3
    bucket: no-such-bucket-here
    endpoint: ${s3.endpoint}
    force_path_style: true
    access_key_id: ${s3.accessKeyId}
    secret_access_key: \${TEST_S3_SECRET}`,
  );
  await docker(host(), [
    'run', '-d', '--name', 'mysql-notool', '--network', 'none', '-v', '/usr:/usr:ro', '-e', 'PATH=/nowhere',
    '--label', 'backer.enabled=true', '--label', 'backer.type=mysql', '--label', 'backer.mysql.password=Text:x',
    HOST_IMAGE, '/usr/bin/sleep', 'infinity',
  ]);
  await startMariaDb(host(), {
    name: 'mysql-partial',
    labels: {
      'backer.enabled': 'true',
      'backer.type': 'mysql',
      'backer.target': 'local,broken,s3',
      'backer.middleware': 'compression',
      'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
      'backer.mysql.database': 'shop',
    },
  });
  await startMariaDb(host(), {
    name: 'big-db',
    labels: {
      'backer.enabled': 'true',
      'backer.type': 'mysql',
      'backer.target': 'local,s3',
      'backer.middleware': 'compression,encryption',
      'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
      'backer.mysql.database': 'shop',
      'backer.mysql.options.skip-extended-insert': 'true',
    },
  });
  // Row-per-statement inserts make the dump slow enough to be caught mid-way (~180 MB: Backer reads
  // it fast enough that 150,000 rows were dumped before the kill).
  await sql(host(), 'big-db', `USE shop; CREATE TABLE blobs (id INT PRIMARY KEY, body TEXT);
    INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_600000;`);
  daemon = await startDaemon(env);
  await daemon.services.discovery.refresh();
});

afterAll(async () => {
  await daemon?.close();
  await docker(host(), ['rm', '-f', 'big-db', 'mysql-notool', 'mysql-partial', 'mysql-vanish']).catch(() => undefined);
});

it('passes no secret through any process argv during a backup', async () => {
  const job = daemon.queue.enqueue('big-db', 'api');
  const argvs = await sampleCommandLines(daemon.queue.wait(job.id), 5);
  expect((await daemon.queue.wait(job.id)).state).toBe('succeeded');
  expect(argvs.some((a) => a.includes('mariadb-dump'))).toBe(true);
  expect(argvs.some((a) => a.startsWith('ccrypt'))).toBe(true);
  for (const a of argvs) {
    expect(a).not.toContain(ROOT_PASSWORD);
    expect(a).not.toContain(CCRYPT_KEY);
  }
});

it('fails a dump killed mid-way: failed job, no manifest, nothing left on the targets', async () => {
  const before = (await readdir(join(env.dir, 'backups', 'big-db'))).sort();
  const job = daemon.queue.enqueue('big-db', 'api');
  let killed = false;
  for (let i = 0; i < 2000 && !killed; i++) {
    const dump = (await allCommandLines()).find((p) => p.argv.startsWith('mariadb-dump') && p.argv.includes('--skip-extended-insert'));
    if (dump) {
      await new Promise((r) => setTimeout(r, 150));
      process.kill(dump.pid, 'SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(killed).toBe(true);
  const failed = await daemon.queue.wait(job.id);
  expect(failed.state).toBe('failed');
  expect(['DUMP_FAILED', 'DUMP_TRUNCATED']).toContain(failed.error?.code);
  expect((await readdir(join(env.dir, 'backups', 'big-db'))).sort()).toEqual(before);
  const s3 = await daemon.services.targets.get('s3')?.list('big-db/');
  expect(s3?.filter((o) => o.key.endsWith('.manifest.json'))).toHaveLength(1);
  expect(s3).toHaveLength(2);
});

it('fails with TOOL_MISSING when the container has no dump tool', async () => {
  const job = await daemon.queue.wait(daemon.queue.enqueue('mysql-notool', 'api').id);
  expect(job.state).toBe('failed');
  expect(job.error?.code).toBe('TOOL_MISSING');
  expect(job.error?.message).toMatch(/container mysql-notool has none of mariadb-dump, mysqldump on its PATH/);
});

it('fans one dump out to several targets: a failing target does not affect the others', async () => {
  const job = backupJob(await daemon.queue.wait(daemon.queue.enqueue('mysql-partial', 'api').id));
  expect(job.state).toBe('failed');
  const byTarget = Object.fromEntries((job.result?.targets ?? []).map((t) => [t.target, t]));
  expect(byTarget.local?.status).toBe('succeeded');
  expect(byTarget.s3?.status).toBe('succeeded');
  expect(byTarget.broken?.status).toBe('failed');
  expect(byTarget.broken?.error?.code).toBe('TARGET_WRITE_FAILED');
  // Each healthy target holds one complete backup with its own manifest, same checksums.
  const local = await listBackups(daemon.services.targets.get('local') as Target, 'mysql-partial');
  const s3 = await listBackups(daemon.services.targets.get('s3') as Target, 'mysql-partial');
  expect(local.backups).toHaveLength(1);
  expect(s3.backups).toHaveLength(1);
  expect(local.backups[0]?.manifest.target.name).toBe('local');
  expect(s3.backups[0]?.manifest.artifact.sha256).toBe(local.backups[0]?.manifest.artifact.sha256);
  // One dump for all targets.
  expect(local.backups[0]?.manifest.uuid).toBe(s3.backups[0]?.manifest.uuid);
});

it('fails cleanly when the container is removed mid-dump', async () => {
  await startMariaDb(host(), {
    name: 'mysql-vanish',
    labels: {
      'backer.enabled': 'true',
      'backer.type': 'mysql',
      'backer.target': 'local,s3',
      'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
      'backer.mysql.database': 'shop',
      'backer.mysql.options.skip-extended-insert': 'true',
    },
  });
  await sql(host(), 'mysql-vanish', `USE shop; CREATE TABLE blobs (id INT PRIMARY KEY, body TEXT);
    INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_600000;`);
  await daemon.services.discovery.refresh();
  const job = daemon.queue.enqueue('mysql-vanish', 'api');
  let removed = false;
  for (let i = 0; i < 2000 && !removed; i++) {
    if ((await allCommandLines()).some((p) => p.argv.startsWith('mariadb-dump') && p.argv.includes('--skip-extended-insert'))) {
      await new Promise((r) => setTimeout(r, 100));
      await docker(host(), ['rm', '-f', 'mysql-vanish']);
      removed = true;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(removed).toBe(true);
  const failed = await daemon.queue.wait(job.id);
  expect(failed.state).toBe('failed');
  expect(['DUMP_FAILED', 'DUMP_TRUNCATED']).toContain(failed.error?.code);
  expect(failed.error?.message).toMatch(/mysql-vanish/);
  expect(await daemon.services.targets.get('local')?.list('mysql-vanish/')).toEqual([]);
  expect(await daemon.services.targets.get('s3')?.list('mysql-vanish/')).toEqual([]);
});

it('stops cleanly mid-backup: the job is queued again for the next start and nothing half-written is left', async () => {
  const before = (await readdir(join(env.dir, 'backups', 'big-db'))).sort();
  const s3Before = await daemon.services.targets.get('s3')?.list('big-db/');
  const job = daemon.queue.enqueue('big-db', 'api');
  for (let i = 0; i < 2000; i++) {
    if ((await allCommandLines()).some((p) => p.argv.startsWith('mariadb-dump') && p.argv.includes('--skip-extended-insert'))) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 100));
  await daemon.close();
  // Stopped, not cancelled: queued again for the next start, which runs it from the beginning.
  const stored = storedJob(daemon.services.config.data_dir, job.id);
  expect(stored.job).toMatchObject({ state: 'queued', attempts: 1 });
  expect(stored.events.some((e) => e.type === 'interrupted')).toBe(true);
  expect((await readdir(join(env.dir, 'backups', 'big-db'))).sort()).toEqual(before);
  // The daemon closed its S3 client: list through a fresh one.
  const s3Config = daemon.services.config.targets.find((t) => t.name === 's3');
  if (!s3Config) throw new Error('no s3 target');
  const fresh = createTarget(s3Config);
  expect((await fresh.list('big-db/')).map((o) => o.key).sort()).toEqual((s3Before ?? []).map((o) => o.key).sort());
  await fresh.close();
});
