import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { Job } from '../src/queue/types.js';
import { checkSqliteImage } from '../src/sources/sqlite.js';
import { digest, runProgram, s3Get } from './helpers/artifacts.js';
import { backupNow, CCRYPT_KEY, createTestEnv, localFiles as listLocalFiles, startDaemon, type TestEnv } from './helpers/env.js';
import { backupAndDecode } from './helpers/matrix.js';
import { allCommandLines } from './helpers/proc.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const run = promisify(execFile);
/** Removed while the copy streams out; unique names and paths so that /proc polling finds its dump only. */
const MID_DUMP_ID = randomBytes(3).toString('hex');
const MID_DUMP = `sqlite-middump-${MID_DUMP_ID}`;
/** Not the default daily midnight schedule: a scheduled backup of this mandate would race its test. */
const RARELY = '0 0 29 2 *';
const MID_DUMP_DB = `/data/middump-${MID_DUMP_ID}.db`;
const MID_DUMP_TEMP = `/data/tmp-${MID_DUMP_ID}`;
const CONTAINERS = ['sqlite-app', 'sqlite-journal', 'sqlite-missing', 'sqlite-broken', 'sqlite-notool', 'sqlite-badlabel', MID_DUMP];
const LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'sqlite',
  'backer.target': 'local,s3',
  'backer.middleware': 'compression,encryption',
  'backer.sqlite.path': '/data/app.db',
};

/** A long-running container with a volume at /data (the host's sqlite3 through /usr). */
async function startBox(name: string, labels: Record<string, string>, path?: string): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', '/data'];
  if (path !== undefined) args.push('-e', `PATH=${path}`);
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  args.push(HOST_IMAGE, '/usr/bin/sleep', 'infinity');
  await docker(host(), args);
}

async function sqlite(container: string, sql: string, db = '/data/app.db'): Promise<string> {
  return docker(host(), ['exec', '-i', container, 'sqlite3', '-batch', '-bail', '-cmd', '.timeout 10000', db], sql);
}

/** An app database: a static table with blobs and an append-only event log. */
async function createDatabase(container: string, journalMode: 'wal' | 'delete', rows: number, db?: string): Promise<void> {
  await sqlite(
    container,
    `PRAGMA journal_mode=${journalMode};
     CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, body BLOB);
     WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows})
       INSERT INTO items SELECT i, 'item-' || i, i * 1.25, randomblob(200 + i % 300) FROM s;
     CREATE INDEX items_name ON items(name);
     CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload TEXT NOT NULL);
     INSERT INTO events (at, payload) VALUES (datetime('now'), 'first');`,
    db,
  );
}

/** Inserts an event every ~20 ms, each its own transaction from its own process, until the container goes. */
async function startWriter(container: string): Promise<void> {
  await docker(host(), ['exec', '-d', container, 'bash', '-c',
    'while :; do sqlite3 -cmd ".timeout 10000" /data/app.db "INSERT INTO events (at, payload) VALUES (datetime(\'now\'), hex(randomblob(64)));"; sleep 0.02; done']);
}

async function eventCount(container: string): Promise<number> {
  return Number(await sqlite(container, 'SELECT count(*) FROM events;'));
}

async function tempFiles(container: string, dir = '/tmp'): Promise<string[]> {
  const out = await docker(host(), ['exec', container, 'ls', '-A', dir]);
  return out.split('\n').filter((f) => f.startsWith('backer-'));
}

/** Waits until the container's temp dir holds no copy (removal after a cancellation runs as the stream closes). */
async function expectNoTempFiles(container: string, dir = '/tmp'): Promise<void> {
  const deadline = Date.now() + 10_000;
  let left = await tempFiles(container, dir);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = await tempFiles(container, dir);
  }
  expect(left).toEqual([]);
}

/** The host's sqlite3 on a restored file. */
async function hostSqlite(file: string, sql: string): Promise<string> {
  const { stdout } = await run('sqlite3', ['-batch', '-bail', file, sql]);
  return stdout.trim();
}

const itemsChecksum = "SELECT hex(sha3_query('SELECT * FROM items ORDER BY id'));";
const eventsChecksum = (maxId: number): string => `SELECT hex(sha3_query('SELECT * FROM events WHERE id <= ${maxId} ORDER BY id'));`;

let env: TestEnv;
let daemon: Daemon;
let workDir: string;

const backup = (mandate: string): Promise<Job> => backupNow(daemon, mandate);

const localFiles = (mandate: string): Promise<string[]> => listLocalFiles(env, mandate);

/** Bytes in the local target's temp files of the mandate (the artifact being written). */
async function localPartialSize(mandate: string): Promise<number> {
  let size = 0;
  for (const name of await localFiles(mandate)) {
    if (name.includes('.partial-')) size += (await stat(join(env.dir, 'backups', mandate, name)).catch(() => undefined))?.size ?? 0;
  }
  return size;
}

async function decode(encrypted: Buffer): Promise<Buffer> {
  return runProgram('gzip', ['-d'], await runProgram('ccrypt', ['-d', '-E', 'KEY'], encrypted, { KEY: CCRYPT_KEY }));
}

beforeAll(async () => {
  env = await createTestEnv('sqlite');
  workDir = await mkdtemp(join(tmpdir(), 'bk-sqlite-restore-'));
  await Promise.all(CONTAINERS.map((name) => docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined)));
  await Promise.all([
    startBox('sqlite-app', { ...LABELS, 'backer.retention': '5' }),
    startBox('sqlite-journal', { ...LABELS, 'backer.sqlite.temp_dir': '/data' }),
    startBox('sqlite-missing', { ...LABELS, 'backer.sqlite.path': '/data/nope.db' }),
    startBox('sqlite-broken', LABELS),
    startBox('sqlite-notool', LABELS, '/nonexistent'),
    startBox('sqlite-badlabel', { ...LABELS, 'backer.sqlite.path': "/data/it's.db" }),
    startBox(MID_DUMP, { ...LABELS, 'backer.interval': RARELY, 'backer.sqlite.path': MID_DUMP_DB, 'backer.sqlite.temp_dir': MID_DUMP_TEMP }),
  ]);
  await docker(host(), ['exec', MID_DUMP, 'mkdir', MID_DUMP_TEMP]);
  await Promise.all([
    createDatabase('sqlite-app', 'wal', 60_000),
    createDatabase('sqlite-journal', 'delete', 5_000),
    // ~85 MB: VACUUM INTO takes a moment, and streaming it through gzip and ccrypt several seconds.
    createDatabase(MID_DUMP, 'wal', 200_000, MID_DUMP_DB),
  ]);
  await docker(host(), ['exec', '-i', 'sqlite-broken', 'bash', '-c', 'cat > /data/app.db'], 'this is not a database\n'.repeat(100));
  await Promise.all([startWriter('sqlite-app'), startWriter('sqlite-journal')]);
  daemon = await startDaemon(env);
});

afterAll(async () => {
  await daemon?.close();
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined);
});

describe('sqlite backups of labelled containers', () => {
  let job: Job;
  let before: number;
  let after: number;

  it('backs up a database that is being written to, through a consistent copy, to local and S3', async () => {
    before = await eventCount('sqlite-app');
    job = await backup('sqlite-app');
    after = await eventCount('sqlite-app');
    expect(job.error).toBeNull();
    expect(job.state).toBe('succeeded');
    expect(job.result?.targets.map((t) => [t.target, t.status])).toEqual([
      ['local', 'succeeded'],
      ['s3', 'succeeded'],
    ]);
    expect(after).toBeGreaterThan(before); // the writer really ran during the backup
    const files = await localFiles('sqlite-app');
    expect(files.filter((f) => f.endsWith('.sqlite.gz.cpt'))).toHaveLength(1);
    const manifestFile = files.find((f) => f.endsWith('.manifest.json')) ?? '';
    const manifest = JSON.parse(await readFile(join(env.dir, 'backups', 'sqlite-app', manifestFile), 'utf8')) as Manifest;
    expect(manifest.source).toMatchObject({
      type: 'sqlite',
      container: 'sqlite-app',
      image: HOST_IMAGE,
      databases: ['/data/app.db'],
      sqlite_version: expect.stringMatching(/^3\.\d+\.\d+$/) as unknown,
      journal_mode: 'wal',
    });
    expect(manifest.steps.map((s) => [s.processor, s.mime])).toEqual([
      ['source:sqlite', 'application/vnd.sqlite3'],
      ['middleware:gzip:compression', 'application/gzip'],
      ['middleware:ccrypt:encryption', 'application/x-ccrypt'],
    ]);
    expect(await tempFiles('sqlite-app')).toEqual([]);
  });

  it('stores an S3 artifact that decodes to an intact database equal to the source at one moment', async () => {
    const s3Key = `backer/${job.result?.targets[1]?.artifact_key ?? ''}`;
    const encrypted = await s3Get(env.bucket, s3Key);
    const manifest = JSON.parse((await s3Get(env.bucket, s3Key.replace(/\.sqlite\.gz\.cpt$/, '.manifest.json'))).toString()) as Manifest;
    expect(digest(encrypted)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });
    const raw = await decode(encrypted);
    const rawStep = manifest.steps[0];
    expect(digest(raw)).toEqual({ size: rawStep?.size, md5: rawStep?.md5, sha256: rawStep?.sha256 });
    expect(raw.subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');

    const file = join(workDir, 'restored.sqlite');
    await writeFile(file, raw);
    expect(await hostSqlite(file, 'PRAGMA integrity_check;')).toBe('ok');
    expect(await hostSqlite(file, 'PRAGMA journal_mode;')).toBe('wal');
    expect(await hostSqlite(file, 'SELECT count(*) FROM items;')).toBe('60000');
    expect(await hostSqlite(file, itemsChecksum)).toBe(await sqlite('sqlite-app', itemsChecksum));

    // A snapshot: every event up to some id, none missing, taken between the counts before and after.
    const count = Number(await hostSqlite(file, 'SELECT count(*) FROM events;'));
    const maxId = Number(await hostSqlite(file, 'SELECT max(id) FROM events;'));
    expect(count).toBeGreaterThanOrEqual(before);
    expect(count).toBeLessThanOrEqual(after);
    expect(maxId).toBe(count);
    expect(await hostSqlite(file, eventsChecksum(maxId))).toBe(await sqlite('sqlite-app', eventsChecksum(maxId)));
  });

  it('copies a rollback-journal database under writes into temp_dir and removes the copy', async () => {
    const start = await eventCount('sqlite-journal');
    const done = await backup('sqlite-journal');
    expect(done.error).toBeNull();
    expect(done.state).toBe('succeeded');
    const files = await localFiles('sqlite-journal');
    const raw = await decode(await readFile(join(env.dir, 'backups', 'sqlite-journal', files.find((f) => f.endsWith('.sqlite.gz.cpt')) ?? '')));
    const file = join(workDir, 'journal.sqlite');
    await writeFile(file, raw);
    expect(await hostSqlite(file, 'PRAGMA integrity_check;')).toBe('ok');
    expect(await hostSqlite(file, 'PRAGMA journal_mode;')).toBe('delete');
    expect(Number(await hostSqlite(file, 'SELECT count(*) FROM events;'))).toBeGreaterThanOrEqual(start);
    expect(await tempFiles('sqlite-journal', '/data')).toEqual([]);
    expect(await tempFiles('sqlite-journal', '/tmp')).toEqual([]);
  });

  it('removes the temp copy when the backup is cancelled mid-way', async () => {
    await daemon.services.discovery.refresh();
    const queued = daemon.queue.enqueue('sqlite-app', 'api');
    let seen = '';
    const deadline = Date.now() + 30_000;
    while (seen === '' && Date.now() < deadline) {
      seen = await docker(host(), ['exec', 'sqlite-app', 'find', '/tmp', '-maxdepth', '1', '-name', 'backer-*.sqlite', '-printf', '%m']);
    }
    expect(seen).toBe('600'); // created under umask 077: a copy of the whole database is not for everyone
    daemon.queue.cancel(queued.id);
    const cancelled = await daemon.queue.wait(queued.id);
    expect(cancelled.state).toBe('cancelled');
    await expectNoTempFiles('sqlite-app');
    expect((await localFiles('sqlite-app')).filter((f) => f.endsWith('.manifest.json'))).toHaveLength(1);
  });

  it('backs up through zstd, gpg and age too, and the real tools restore an intact snapshot', async () => {
    const chains: { chain: string[]; extension: RegExp; processors: string[] }[] = [
      { chain: ['zstd', 'gpg'], extension: /\.sqlite\.zst\.gpg$/, processors: ['middleware:zstd:zstd', 'middleware:gpg:gpg'] },
      { chain: ['age'], extension: /\.sqlite\.age$/, processors: ['middleware:age:age'] },
    ];
    for (const { chain, extension, processors } of chains) {
      const start = await eventCount('sqlite-app');
      const { key, manifest, raw } = await backupAndDecode(daemon, env.bucket, 'sqlite-app', chain);
      const end = await eventCount('sqlite-app');
      expect(key).toMatch(extension);
      expect(manifest.steps.map((s) => s.processor)).toEqual(['source:sqlite', ...processors]);
      expect(raw.subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');

      const file = join(workDir, `through-${chain.join('-')}.sqlite`);
      await writeFile(file, raw);
      expect(await hostSqlite(file, 'PRAGMA integrity_check;')).toBe('ok');
      expect(await hostSqlite(file, 'PRAGMA journal_mode;')).toBe('wal');
      expect(await hostSqlite(file, 'SELECT count(*) FROM items;')).toBe('60000');
      expect(await hostSqlite(file, itemsChecksum)).toBe(await sqlite('sqlite-app', itemsChecksum));
      const count = Number(await hostSqlite(file, 'SELECT count(*) FROM events;'));
      const maxId = Number(await hostSqlite(file, 'SELECT max(id) FROM events;'));
      expect(count).toBeGreaterThanOrEqual(start);
      expect(count).toBeLessThanOrEqual(end);
      expect(maxId).toBe(count);
      expect(await hostSqlite(file, eventsChecksum(maxId))).toBe(await sqlite('sqlite-app', eventsChecksum(maxId)));
      await rm(file, { force: true });
    }
    expect(await tempFiles('sqlite-app')).toEqual([]);
  });

  it('fails with a clear message when the database file does not exist, and creates nothing', async () => {
    const failed = await backup('sqlite-missing');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('DUMP_FAILED');
    expect(failed.error?.message).toMatch(/sqlite3 could not copy \/data\/nope\.db in container sqlite-missing/);
    expect(failed.error?.message).toMatch(/does \/data\/nope\.db exist/);
    expect(await localFiles('sqlite-missing')).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list('sqlite-missing/')).toEqual([]);
    expect(await docker(host(), ['exec', 'sqlite-missing', 'ls', '-A', '/data'])).toBe(''); // -readonly: never created
    expect(await tempFiles('sqlite-missing')).toEqual([]);
  });

  it('fails on a file that is not a database and leaves no temp copy', async () => {
    const failed = await backup('sqlite-broken');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('DUMP_FAILED');
    expect(failed.error?.message).toMatch(/not a database/);
    expect(await localFiles('sqlite-broken')).toEqual([]);
    expect(await tempFiles('sqlite-broken')).toEqual([]);
  });

  it('fails with TOOL_MISSING when sqlite3 is not on the container PATH', async () => {
    const failed = await backup('sqlite-notool');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('TOOL_MISSING');
    expect(failed.error?.message).toMatch(/container sqlite-notool has no working sqlite3/);
  });

  it('reports a path with quotes as a bad label and skips the container', () => {
    const { problems, mandates } = daemon.services.discovery.current();
    const problem = problems.find((p) => p.where === 'container sqlite-badlabel label backer.sqlite.path');
    expect(problem?.message).toMatch(/quotes/);
    expect(mandates.map((m) => m.name)).not.toContain('sqlite-badlabel');
  });

  it('fails cleanly when the container is removed mid-dump', async () => {
    await daemon.services.discovery.refresh();
    const queued = daemon.queue.enqueue(MID_DUMP, 'api');
    // Under way: cat streams the consistent copy out of the container, and the local target has received bytes.
    const catArgv = `cat -- ${MID_DUMP_TEMP}/backer-`;
    const deadline = Date.now() + 60_000;
    let streaming = false;
    while (!streaming && Date.now() < deadline) {
      const catRuns = (await allCommandLines()).some((p) => p.argv.startsWith(catArgv));
      streaming = catRuns && (await localPartialSize(MID_DUMP)) > 0;
      if (!streaming) await new Promise((r) => setTimeout(r, 5));
    }
    expect(streaming).toBe(true);
    await docker(host(), ['rm', '-f', '-v', MID_DUMP]);
    const failed = await daemon.queue.wait(queued.id);
    expect(failed.state).toBe('failed');
    expect(['DUMP_FAILED', 'DUMP_TRUNCATED', 'CONTAINER_NOT_FOUND']).toContain(failed.error?.code);
    expect(failed.error?.message).toMatch(new RegExp(`in container ${MID_DUMP}\\b`));
    expect(await localFiles(MID_DUMP)).toEqual([]);
    expect(await daemon.services.targets.get('local')?.list(`${MID_DUMP}/`)).toEqual([]);
    expect(await daemon.services.targets.get('s3')?.list(`${MID_DUMP}/`)).toEqual([]);
  });

  it('fails with CONTAINER_NOT_RUNNING when the container is stopped', async () => {
    await docker(host(), ['stop', '-t', '1', 'sqlite-missing']);
    const failed = await backup('sqlite-missing');
    expect(failed.state).toBe('failed');
    expect(failed.error?.code).toBe('CONTAINER_NOT_RUNNING');
  });
});

describe('sqlite image verification', () => {
  it('accepts a whole database and rejects empty, foreign and truncated ones', async () => {
    const file = join(workDir, 'unit.sqlite');
    await run('sqlite3', [file, 'CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);']);
    const image = await readFile(file);
    expect(checkSqliteImage(image.subarray(0, 100), image.length)).toBeNull();
    expect(checkSqliteImage(Buffer.alloc(0), 0)).toMatch(/empty/);
    expect(checkSqliteImage(Buffer.alloc(100, 1), 4096)).toMatch(/SQLite format 3/);
    expect(checkSqliteImage(image.subarray(0, 100), image.length - 10)).toMatch(/whole number/);
    expect(checkSqliteImage(image.subarray(0, 100), image.length - 4096)).toMatch(/header says/);
  });
});
