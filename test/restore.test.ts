/**
 * Restore and verification end to end, through a real `backer daemon` process and the CLI:
 * a labelled MariaDB container backed up through gzip+ccrypt to local and S3, restored into the
 * original (with its safety backup) and into a new container; a tampered artifact caught by
 * verify and refused by restore; a restore that fails half-way rolled back from the safety backup.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../src/cli/client.js';
import type { Manifest } from '../src/manifests/schema.js';
import type { RestoreResult } from '../src/pipeline/run-restore.js';
import type { VerifyResult } from '../src/pipeline/run-verify.js';
import type { AnyJob, Job } from '../src/queue/types.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, s3Client, testProcessEnv, type TestEnv } from './helpers/env.js';
import { checksums, seedShop, sql, startMariaDb } from './helpers/mariadb.js';
import { docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const DB = `rst-db-${ID}`;
const RAW = `rst-raw-${ID}`;
const COPY = `rst-copy-${ID}`;
const BIG = `rst-big-${ID}`;
const LABELS = {
  'backer.enabled': 'true',
  'backer.type': 'mysql',
  'backer.interval': '0 0 29 2 *',
  'backer.mysql.password': 'Env:MYSQL_ROOT_PASSWORD',
  'backer.mysql.database': 'Env:MYSQL_DATABASE',
};
const TABLES = ['shop.products', 'shop.orders'];
const FILES = `rst-files-${ID}`;

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], { ...testProcessEnv(), TEST_RESTORE_FILES: join(env.dir, 'files') });

async function runJson<T>(args: string[]): Promise<{ code: number; body: T; stderr: string }> {
  const r = await run([...args, '--json']);
  return { code: r.code, body: JSON.parse(r.stdout || 'null') as T, stderr: r.stderr };
}

async function state(container: string): Promise<string> {
  const tables = await sql(host(), container, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'shop' ORDER BY 1;");
  return `${tables}\n${await checksums(host(), container, TABLES)}`;
}

async function change(container: string): Promise<void> {
  await sql(host(), container, "USE shop; UPDATE products SET price = price + 1 WHERE id < 50; DELETE FROM orders WHERE id > 900; CREATE TABLE extra (id INT); INSERT INTO extra VALUES (1);");
}

async function backup(mandate: string): Promise<string> {
  const { code, body } = await runJson<Job>(['backup', mandate, '--wait']);
  expect(code, JSON.stringify(body)).toBe(0);
  return body.result?.name ?? '';
}

async function manifests(mandate: string): Promise<Manifest[]> {
  return (await runJson<{ backups: Manifest[] }>(['backups', 'list', '--mandate', mandate])).body.backups;
}

beforeAll(async () => {
  env = await createTestEnv('restore', `mandates:\n${filesMandateYaml(FILES, 'TEST_RESTORE_FILES', { target: 'local' })}`);
  socket = join(env.dir, 'data', 'backer.sock');
  await mkdir(join(env.dir, 'files'), { recursive: true });
  await writeFile(join(env.dir, 'files', 'a.txt'), 'alpha\n');
  await Promise.all([
    startMariaDb(host(), { name: DB, labels: { ...LABELS, 'backer.target': 'local,s3', 'backer.middleware': 'compression,encryption' } }),
    startMariaDb(host(), { name: RAW, labels: { ...LABELS, 'backer.target': 'local' } }),
    startMariaDb(host(), { name: BIG, labels: { ...LABELS, 'backer.target': 'local' } }),
  ]);
  await Promise.all([seedShop(host(), DB), seedShop(host(), RAW), seedShop(host(), BIG, 100_000)]);
  daemon = spawnDaemon(env.configPath, { env: { TEST_RESTORE_FILES: join(env.dir, 'files') } });
  await waitForHealth(daemon, socket, 60_000);
});

afterAll(async () => {
  await daemon.stop();
  if (process.env.BACKER_TEST_DAEMON_LOG) await writeFile(process.env.BACKER_TEST_DAEMON_LOG, daemon.output());
  await docker(host(), ['rm', '-f', DB, RAW, COPY, BIG, `${COPY}-damaged`]).catch(() => undefined);
});

describe('restore through the daemon', () => {
  let first = '';
  let original = '';

  it('--to original brings the backed-up state back, after a safety backup that holds the changed state', async () => {
    original = await state(DB);
    first = await backup(DB);
    await change(DB);
    const changed = await state(DB);
    expect(changed).not.toBe(original);

    const { code, body } = await runJson<Job<RestoreResult>>(['restore', DB, '--yes', '--wait']);
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body.kind).toBe('restore');
    expect(body.result?.backup).toBe(first);
    expect(await state(DB)).toBe(original);

    const safety = body.result?.safety_backup ?? '';
    expect(safety).not.toBe('');
    const stored = (await manifests(DB)).filter((m) => m.name === safety);
    expect(stored.map((m) => [m.target.name, m.tags, m.manifest_version])).toEqual(
      expect.arrayContaining([['local', ['safety'], 2], ['s3', ['safety'], 2]]),
    );
    // The safety backup restores the state the restore replaced.
    const back = await runJson<Job<RestoreResult>>(['restore', DB, safety, '--yes', '--wait', '--target', 's3']);
    expect(back.code, JSON.stringify(back.body)).toBe(0);
    expect(await state(DB)).toBe(changed);
    // `latest` never picks a safety backup.
    const plan = await runJson<RestoreResult>(['restore', DB, '--dry-run']);
    expect(plan.body.backup).toBe(first);
  });

  it('--to new:NAME makes a container with the backup\'s data and leaves the original alone', async () => {
    const before = await state(DB);
    const { code, body } = await runJson<Job<RestoreResult>>(['restore', DB, first, '--to', `new:${COPY}`, '--wait']);
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body.result?.safety_backup).toBeNull();
    expect(await state(COPY)).toBe(original);
    expect(await state(DB)).toBe(before);
    const labels = await docker(host(), ['inspect', '-f', '{{index .Config.Labels "backer.scratch"}} {{.HostConfig.NetworkMode}}', COPY]);
    expect(labels).toBe(`${body.id} none`);
    const again = await run(['restore', DB, first, '--to', `new:${COPY}`, '--wait']);
    expect(again.code).toBe(5);
    expect(again.stdout).toContain(`container ${COPY} already exists`);
  });

  it('verify passes at every level and records each result next to the backup', async () => {
    for (const level of ['size', 'hash', 'decode']) {
      const { code, body } = await runJson<{ jobs: AnyJob[] }>(['verify', DB, first, '--level', level]);
      expect(code, JSON.stringify(body)).toBe(0);
      const result = body.jobs[0]?.result as VerifyResult;
      // Every copy of the backup: one verification per target.
      expect(result.verifications.map((v) => [v.target, v.outcome]).sort()).toEqual([['local', 'passed'], ['s3', 'passed']]);
      const local = result.verifications.find((v) => v.target === 'local');
      expect(local?.record_key).toMatch(new RegExp(`^${DB}/${first}\\.verify-.*\\.json$`));
      const record = JSON.parse(await readFile(join(env.dir, 'backups', local?.record_key ?? ''), 'utf8')) as Record<string, unknown>;
      expect(record).toMatchObject({ backup: first, level, outcome: 'passed', target: 'local' });
    }
    // A verification record is not a backup: the listing still shows each backup once per target.
    expect((await manifests(DB)).filter((m) => m.name === first)).toHaveLength(2);
    const listed = await runJson<{ verifications: { backup: string; target: string; level: string; outcome: string }[] }>(['backups', 'list', '--mandate', DB]);
    expect(listed.body.verifications.filter((v) => v.backup === first).map((v) => [v.target, v.level, v.outcome]).sort()).toEqual([
      ['local', 'decode', 'passed'],
      ['s3', 'decode', 'passed'],
    ]);
    const shown = await run(['backups', 'show', first, '--target', 'local']);
    expect(shown.stdout).toMatch(/verified: +passed \(decode, /);
  });
});

/** Flips one byte in the middle of an artifact, on local and on S3. */
async function tamper(manifest: Manifest, bucket: string): Promise<void> {
  const path = join(env.dir, 'backups', manifest.artifact.key);
  const local = await readFile(path);
  const at = Math.floor(local.length / 2);
  local[at] = (local[at] ?? 0) ^ 0xff;
  await writeFile(path, local);
  const client = s3Client();
  try {
    const key = `backer/${manifest.artifact.key}`;
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from(await got.Body?.transformToByteArray() ?? []);
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  } finally {
    client.destroy();
  }
}

/** Replaces a local backup's artifact and rewrites its manifest to match, as a careless hand would. */
async function remanifest(manifest: Manifest, bytes: Buffer): Promise<void> {
  const digest = { size: bytes.length, md5: createHash('md5').update(bytes).digest('hex'), sha256: createHash('sha256').update(bytes).digest('hex') };
  await writeFile(join(env.dir, 'backups', manifest.artifact.key), bytes);
  const next = { ...manifest, steps: manifest.steps.map((s) => ({ ...s, ...digest })), artifact: { ...manifest.artifact, ...digest } };
  await writeFile(join(env.dir, 'backups', `${manifest.mandate}/${manifest.name}.manifest.json`), JSON.stringify(next));
}

describe('damaged backups and failed restores', () => {
  it('a flipped byte is caught by verify (hash and decode) on local and S3, and restore refuses it before touching anything', async () => {
    const name = await backup(DB);
    const manifest = (await manifests(DB)).find((m) => m.name === name) as Manifest;
    await tamper(manifest, env.bucket);
    const before = await state(DB);
    for (const level of ['hash', 'decode']) {
      for (const target of ['local', 's3']) {
        const { code, body } = await runJson<{ jobs: AnyJob[] }>(['verify', DB, name, '--level', level, '--target', target]);
        expect(code).toBe(1);
        expect(body.jobs[0]?.error?.message).toMatch(/artifact .* (md5, sha256 differ|sha256 differs)/);
      }
    }
    const countBefore = (await manifests(DB)).length;
    const refused = await run(['restore', DB, name, '--yes', '--wait']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(5);
    expect(refused.stdout).toMatch(/does not match its manifest, nothing was restored/);
    expect(await state(DB)).toBe(before);
    // No safety backup was taken for a restore that could not start.
    expect((await manifests(DB)).length).toBe(countBefore);
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  });

  it('a SQL error half-way (a dump edited and re-manifested by hand) is rolled back from the safety backup, and the job says so', async () => {
    const name = await backup(RAW);
    const manifest = (await manifests(RAW)).find((m) => m.name === name) as Manifest;
    const dump = await readFile(join(env.dir, 'backups', manifest.artifact.key), 'utf8');
    const at = dump.indexOf('INSERT INTO `orders`');
    expect(at).toBeGreaterThan(0);
    await remanifest(manifest, Buffer.from(`${dump.slice(0, at)}INSERX${dump.slice(at + 6)}`));
    await change(RAW);
    const changed = await state(RAW);
    const { code, body } = await runJson<Job<RestoreResult>>(['restore', RAW, name, '--yes', '--wait']);
    expect(code, JSON.stringify(body)).toBe(1);
    expect(body.state).toBe('failed');
    expect(body.error?.message).toMatch(/ERROR 1064 .*INSERX/);
    expect(body.error?.message).toContain(`rolled back from the safety backup ${body.result?.safety_backup ?? '?'}`);
    expect(body.result?.rolled_back).toBe(true);
    expect(await state(RAW)).toBe(changed);
  });

  it('a restore whose client is killed mid-way is rolled back from the safety backup', async () => {
    const name = await backup(BIG);
    await change(BIG);
    const changed = await state(BIG);
    const restore = runJson<Job<RestoreResult>>(['restore', BIG, name, '--yes', '--wait']);
    // Once the hash pass is done (the first half of the progress) the client loads the dump: kill
    // it then (the mariadb client, never the server mariadbd).
    const applying = async (): Promise<boolean> => {
      const { jobs } = await callApi<{ jobs: AnyJob[] }>(socket, 'GET', `/v1/jobs?mandate=${BIG}&kind=restore`);
      const p = jobs.find((j) => j.state === 'running')?.progress;
      return p !== null && p !== undefined && p.total !== null && p.bytes > p.total / 2;
    };
    for (let i = 0; i < 600 && !(await applying()); i++) await new Promise((r) => setTimeout(r, 20));
    let killed = false;
    for (let i = 0; i < 200 && !killed; i++) {
      killed = await docker(host(), ['exec', BIG, 'pkill', '-KILL', '-x', 'mariadb']).then(() => true, () => false);
      if (!killed) await new Promise((r) => setTimeout(r, 50));
    }
    expect(killed).toBe(true);
    const { code, body } = await restore;
    expect(code, JSON.stringify(body)).toBe(1);
    expect(body.error?.message).toMatch(/exited with code 137/);
    expect(body.error?.message).toContain(`rolled back from the safety backup ${body.result?.safety_backup ?? '?'}`);
    expect(await state(BIG)).toBe(changed);
  });

  it('the client is prepared (or the scratch container started) while the hash-first pass runs, but a damaged backup writes nothing and leaves no scratch container', async () => {
    const name = await backup(RAW);
    const manifest = (await manifests(RAW)).find((m) => m.name === name) as Manifest;
    const path = join(env.dir, 'backups', manifest.artifact.key);
    const bytes = await readFile(path);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    const fresh = `fresh_${ID}`;
    const before = await state(DB);
    const refused = await run(['restore', RAW, name, '--to', `container:${DB}`, '--database', `shop:${fresh}`, '--yes', '--wait']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(5);
    expect(refused.stdout).toMatch(/does not match its manifest, nothing was restored/);
    // The apply would start with CREATE DATABASE IF NOT EXISTS fresh_…: it never ran.
    expect((await sql(host(), DB, `SHOW DATABASES LIKE '${fresh}';`)).trim()).toBe('');
    expect(await state(DB)).toBe(before);
    // --to new:NAME starts the scratch container during the pass: a damaged backup removes it again.
    const scratch = `${COPY}-damaged`;
    const refusedNew = await run(['restore', RAW, name, '--to', `new:${scratch}`, '--wait']);
    expect(refusedNew.code, refusedNew.stdout + refusedNew.stderr).toBe(5);
    expect(refusedNew.stdout).toMatch(/does not match its manifest, nothing was restored/);
    expect((await docker(host(), ['ps', '-a', '--filter', `name=^/${scratch}$`, '--format', '{{.Names}}'])).trim()).toBe('');
  });

  it('with --no-verify-first a damaged artifact fails loudly at the end and is rolled back too', async () => {
    const name = await backup(RAW);
    const manifest = (await manifests(RAW)).find((m) => m.name === name) as Manifest;
    const path = join(env.dir, 'backups', manifest.artifact.key);
    const dump = await readFile(path, 'utf8');
    // Same size, other bytes: valid SQL, a different price.
    const at = dump.indexOf("'product-7',") + "'product-7',".length;
    const digit = dump.charAt(at);
    expect(digit).toMatch(/[0-9]/);
    await writeFile(path, `${dump.slice(0, at)}${digit === '1' ? '2' : '1'}${dump.slice(at + 1)}`);
    const before = await state(RAW);
    const { code, body } = await runJson<Job<RestoreResult>>(['restore', RAW, name, '--yes', '--wait', '--no-verify-first']);
    expect(code, JSON.stringify(body)).toBe(1);
    expect(body.error?.message).toMatch(/md5, sha256 differ from the manifest/);
    expect(body.result?.rolled_back).toBe(true);
    expect(await state(RAW)).toBe(before);
  });

  it('bad input: unknown backup (4), a destination that is not running (5), --database on a source without it is refused by the API', async () => {
    expect((await run(['restore', DB, 'no-such-backup', '--wait'])).code).toBe(4);
    const unconfirmed = await run(['restore', DB, '--wait']);
    expect(unconfirmed.code).toBe(5);
    expect(unconfirmed.stdout).toContain(`a restore into the original replaces the data of container ${DB} (a safety backup is taken first): add --yes to confirm`);
    await docker(host(), ['create', '--name', `${COPY}-stopped`, '--network', 'none', 'hostuser:latest', 'sleep', '1']);
    const stopped = await run(['restore', DB, '--to', `container:${COPY}-stopped`, '--wait']);
    await docker(host(), ['rm', '-f', `${COPY}-stopped`]);
    expect(stopped.code).toBe(5);
    expect(stopped.stdout).toMatch(new RegExp(`container ${COPY}-stopped is not running`));
    const usage = await run(['restore', DB, '--to', 'somewhere']);
    expect(usage.code).toBe(5);
    expect(usage.stdout + usage.stderr).toContain('expected original, new:NAME, container:NAME or file:PATH');
    const noDatabases = await run(['restore', FILES, '--to', `file:${join(env.dir, 'elsewhere')}`, '--database', 'a:b']);
    expect(noDatabases.code).toBe(5);
    expect(noDatabases.stderr).toContain('--database: files backups hold no named databases');
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  });
});
