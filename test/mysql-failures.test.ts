import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import { createTarget } from '../src/targets/index.js';
import { CCRYPT_KEY, createTestEnv, startDaemon, type TestEnv } from './helpers/env.js';
import { ROOT_PASSWORD, sql, startMariaDb } from './helpers/mariadb.js';
import { allCommandLines, sampleCommandLines } from './helpers/proc.js';
import { docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
let env: TestEnv;
let daemon: Daemon;

beforeAll(async () => {
  env = await createTestEnv('mysqlfail');
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
  // Row-per-statement inserts make the dump slow enough to be caught mid-way.
  await sql(host(), 'big-db', `USE shop; CREATE TABLE blobs (id INT PRIMARY KEY, body TEXT);
    INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_150000;`);
  daemon = await startDaemon(env);
  await daemon.services.discovery.refresh();
});

afterAll(async () => {
  await daemon?.close();
  await docker(host(), ['rm', '-f', 'big-db']).catch(() => undefined);
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
    const dump = (await allCommandLines()).find((p) => p.argv.startsWith('mariadb-dump') && p.argv.includes('--databases'));
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

it('stops cleanly mid-backup: the job is cancelled and nothing half-written is left', async () => {
  const before = (await readdir(join(env.dir, 'backups', 'big-db'))).sort();
  const s3Before = await daemon.services.targets.get('s3')?.list('big-db/');
  const job = daemon.queue.enqueue('big-db', 'api');
  for (let i = 0; i < 2000; i++) {
    if ((await allCommandLines()).some((p) => p.argv.startsWith('mariadb-dump') && p.argv.includes('--databases'))) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 100));
  await daemon.close();
  const done = daemon.queue.get(job.id);
  expect(done?.state).toBe('cancelled');
  expect((await readdir(join(env.dir, 'backups', 'big-db'))).sort()).toEqual(before);
  // The daemon closed its S3 client: list through a fresh one.
  const s3Config = daemon.services.config.targets.find((t) => t.name === 's3');
  if (!s3Config) throw new Error('no s3 target');
  const fresh = createTarget(s3Config);
  expect((await fresh.list('big-db/')).map((o) => o.key).sort()).toEqual((s3Before ?? []).map((o) => o.key).sort());
  await fresh.close();
});
