/**
 * `backer restore … --to new:NAME` and `verify --level drill` for postgres (plain and custom),
 * redis, sqlite and volume (mysql is in test/restore.test.ts), through a real `backer daemon`
 * process and the CLI: the new container (or, for a volume backup, the new volume) holds the
 * backup's data while the original is untouched; a second run with the same NAME is refused
 * (exit 5); a drill passes and leaves no scratch container behind.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backupResultSchema, restoreResultSchema, verifyResultSchema } from '../src/api/job-results.js';
import { callApi } from '../src/cli/client.js';
import type { RestoreResult } from '../src/pipeline/run-restore.js';
import type { VerifyResult } from '../src/pipeline/run-verify.js';
import type { AnyJob, Job } from '../src/queue/types.js';
import { cli } from './helpers/cli.js';
import { spawnDaemon, waitForHealth, type DaemonProcess } from './helpers/daemon-proc.js';
import { createTestEnv, testProcessEnv, type TestEnv } from './helpers/env.js';
import { PG_USER, pgQuery, pgTables, seedPgShop, startPostgres } from './helpers/postgres.js';
import { change as changeRedis, fingerprint as redisFingerprint, seed as seedRedis, startRedis } from './helpers/redis.js';
import { changeSqlite, seedSqlite, sqliteFingerprint, startSqliteApp } from './helpers/sqlite.js';
import { docker, HOST_IMAGE } from './setup/services.js';

const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const C = { pgPlain: `rnew-pgp-${ID}`, pgCustom: `rnew-pgc-${ID}`, redis: `rnew-redis-${ID}`, sqlite: `rnew-sqlite-${ID}`, volume: `rnew-vol-${ID}` };
const copyOf = (container: string): string => `${container}-new`;
const VOLUMES = { redis: `rnew-redis-data-${ID}`, volume: `rnew-vol-data-${ID}`, fresh: `rnew-vol-new-${ID}` };
const IDLE = 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done';
const BASE = { 'backer.enabled': 'true', 'backer.interval': '0 0 29 2 *', 'backer.target': 'local' };
const PG = { ...BASE, 'backer.type': 'postgres', 'backer.postgres.password': 'Env:POSTGRES_PASSWORD', 'backer.postgres.socket_dir': '/tmp' };

let env: TestEnv;
let daemon: DaemonProcess;
let socket: string;

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], testProcessEnv());

async function runJson<T>(args: string[]): Promise<{ code: number; body: T }> {
  const r = await run([...args, '--json']);
  return { code: r.code, body: JSON.parse(r.stdout || 'null') as T };
}

const inspect = (name: string, format: string): Promise<string> => docker(host(), ['inspect', '-f', format, name]);
const sh = (container: string, script: string): Promise<string> => docker(host(), ['exec', container, 'bash', '-c', script]);
/** Every entry (type, mode, owner, link) and the sha256 of every file below /data, run inside `container`. */
const TREE = "cd / && find data -printf '%p %y %m %U:%G %l\\n' | LC_ALL=C sort && find data -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum";

async function backup(mandate: string): Promise<string> {
  const { code, body } = await runJson<Job>(['backup', mandate, '--wait']);
  expect(code, JSON.stringify(body)).toBe(0);
  // The result as the API's document describes it (BackupResult): parse throws, naming the field.
  return backupResultSchema.parse(body.result).name;
}

/** Names of the containers made from `source` by a scratch restore or a drill (label backer.scratch.source). */
async function scratchesOf(source: string): Promise<string[]> {
  const out = await docker(host(), ['ps', '-a', '--filter', `label=backer.scratch.source=${source}`, '--format', '{{.Names}}']);
  return out.split('\n').filter((n) => n !== '');
}

/** `verify --level drill` passes on the local copy, and its scratch container is gone. */
async function expectDrillPasses(mandate: string, backupName: string): Promise<void> {
  const { code, body } = await runJson<{ jobs: AnyJob[] }>(['verify', mandate, backupName, '--level', 'drill']);
  expect(code, JSON.stringify(body)).toBe(0);
  const job = body.jobs[0];
  const result = job?.result as VerifyResult | undefined;
  verifyResultSchema.parse(result); // as the API's document describes it (VerifyResult)
  expect(result?.verifications.map((v) => [v.target, v.level, v.outcome])).toEqual([['local', 'drill', 'passed']]);
  expect(result?.verifications[0]?.checks.length).toBeGreaterThan(3);
  expect(await docker(host(), ['ps', '-aq', '--filter', `label=backer.scratch=${job?.id ?? '?'}`])).toBe('');
  expect(await scratchesOf(mandate)).not.toContain(`backer-drill-${(job?.id ?? '').slice(0, 8)}`);
}

/**
 * `copy` is a scratch container of `job`: labelled, running, without network, with the image,
 * environment, user, command and read-only binds of `source`, and its own volume at `dataMount`.
 */
async function expectScratchCopy(copy: string, source: string, job: string, dataMount?: string): Promise<void> {
  const labels = '{{index .Config.Labels "backer.scratch"}} {{.HostConfig.NetworkMode}} {{.State.Running}} {{len .NetworkSettings.Networks}}';
  expect(await inspect(copy, labels)).toBe(`${job} none true 1`);
  expect(await inspect(copy, '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')).toBe('');
  const settings = async (name: string): Promise<string[]> => {
    const binds = await inspect(name, '{{range .Mounts}}{{if not .RW}}{{.Source}}:{{.Destination}} {{end}}{{end}}');
    return [await inspect(name, '{{.Config.Image}} {{json .Config.Env}} {{.Config.User}} {{json .Config.Cmd}}'), ...binds.split(' ').filter(Boolean).sort()];
  };
  expect(await settings(copy)).toEqual(await settings(source));
  expect(await settings(copy)).toContain('/usr:/usr');
  if (dataMount === undefined) return;
  const mount = `{{range .Mounts}}{{if eq .Destination "${dataMount}"}}{{.Type}} {{.Name}}{{end}}{{end}}`;
  const [mine, theirs] = [await inspect(copy, mount), await inspect(source, mount)];
  expect(mine).toMatch(/^volume [0-9a-f]{64}$/);
  expect(mine).not.toBe(theirs);
}

interface Case {
  container: string;
  fingerprint(container: string): Promise<string>;
  change(): Promise<void>;
  /** Path of the data mount: the copy gets a fresh volume there, not the original's. */
  dataMount?: string;
}

/**
 * Back up, change the original, restore into new:NAME: the copy holds the backup's data, is a
 * labelled scratch container without network, on its own data volume; the original is neither
 * changed nor restarted; the same NAME again, or the source's own name, is refused with exit 5;
 * then a drill passes.
 */
async function restoreIntoNew(c: Case): Promise<void> {
  const original = await c.fingerprint(c.container);
  const name = await backup(c.container);
  await c.change();
  const changed = await c.fingerprint(c.container);
  expect(changed).not.toBe(original);
  const started = await inspect(c.container, '{{.State.StartedAt}}');
  const copy = copyOf(c.container);

  const { code, body } = await runJson<Job<RestoreResult>>(['restore', c.container, name, '--to', `new:${copy}`, '--wait']);
  expect(code, JSON.stringify(body)).toBe(0);
  expect(body.result).toMatchObject({ backup: name, to: `new:${copy}`, safety_backup: null });
  restoreResultSchema.parse(body.result); // as the API's document describes it (RestoreResult)
  expect(await c.fingerprint(copy)).toBe(original);
  expect(await c.fingerprint(c.container)).toBe(changed);
  expect(await inspect(c.container, '{{.State.Running}} {{.State.StartedAt}}')).toBe(`true ${started}`);
  await expectScratchCopy(copy, c.container, body.id, c.dataMount);

  const again = await run(['restore', c.container, name, '--to', `new:${copy}`, '--wait']);
  expect(again.code, again.stdout + again.stderr).toBe(5);
  expect(again.stdout).toContain(`container ${copy} already exists`);
  expect(await c.fingerprint(copy)).toBe(original);
  const itself = await run(['restore', c.container, name, '--to', `new:${c.container}`, '--wait']);
  expect(itself.code, itself.stdout + itself.stderr).toBe(5);
  expect(itself.stdout).toContain(`--to new:${c.container} names the backed-up container itself`);
  expect(await c.fingerprint(c.container)).toBe(changed);

  await expectDrillPasses(c.container, name);
  expect(await scratchesOf(c.container)).toEqual([copy]);
  expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
}

const pgFingerprint = (dbs: string[]) => async (container: string): Promise<string> =>
  (await Promise.all(dbs.map(async (db) => `${db}=${await pgTables(container, db)}`))).join('\n');

async function startAll(): Promise<void> {
  await Promise.all([
    (async () => {
      await startPostgres(C.pgPlain, { ...PG, 'backer.postgres.database': '*', 'backer.postgres.globals': 'true' });
      await pgQuery(C.pgPlain, "CREATE ROLE reporter LOGIN PASSWORD 'rep-pw'; CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;");
      await seedPgShop(C.pgPlain);
      await pgQuery(C.pgPlain, 'ALTER TABLE orders OWNER TO reporter;', 'shop');
    })(),
    (async () => {
      await startPostgres(C.pgCustom, { ...PG, 'backer.postgres.database': 'shop', 'backer.postgres.format': 'custom', 'backer.postgres.exec_user': PG_USER });
      await seedPgShop(C.pgCustom);
    })(),
    (async () => {
      await startRedis(C.redis, { volume: VOLUMES.redis, labels: { ...BASE, 'backer.type': 'redis', 'backer.redis.password': 'Env:REDIS_PASSWORD' } });
      await seedRedis(C.redis);
    })(),
    (async () => {
      await startSqliteApp(C.sqlite, { ...BASE, 'backer.type': 'sqlite', 'backer.sqlite.path': '/data/app.db' });
      await seedSqlite(C.sqlite, 500);
    })(),
    (async () => {
      const labels = Object.entries({ ...BASE, 'backer.type': 'volume', 'backer.volume.paths': '/data' }).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
      await docker(host(), ['run', '-d', '--name', C.volume, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${VOLUMES.volume}:/data`, ...labels, HOST_IMAGE, 'bash', '-c', IDLE]);
      await sh(C.volume, 'mkdir -p /data/a/b && head -c 300000 /dev/urandom > /data/a/blob && echo v1 > /data/conf && chown 77:77 /data/conf && chmod 640 /data/conf && ln -s conf /data/link');
    })(),
  ]);
}

beforeAll(async () => {
  env = await createTestEnv('rnew', `volume:\n  helper_image: ${HOST_IMAGE}\n  helper_binds: [/usr:/usr:ro]\n`);
  socket = join(env.dir, 'data', 'backer.sock');
  await startAll();
  daemon = spawnDaemon(env.configPath);
  await waitForHealth(daemon, socket, 60_000);
}, 240_000);

afterAll(async () => {
  await daemon.stop();
  if (process.env.BACKER_TEST_DAEMON_LOG) await writeFile(process.env.BACKER_TEST_DAEMON_LOG, daemon.output());
  const containers = Object.values(C).flatMap((c) => [c, copyOf(c)]);
  await docker(host(), ['rm', '-f', '-v', ...containers]).catch(() => undefined);
  await docker(host(), ['volume', 'rm', '-f', ...Object.values(VOLUMES)]).catch(() => undefined);
  await rm(env.dir, { recursive: true, force: true });
});

describe('restore --to new:NAME and drills through the daemon', () => {
  it('postgres plain (every database, globals): a scratch copy with the backup, the original untouched, NAME taken, drill passes', async () => {
    await restoreIntoNew({
      container: C.pgPlain,
      fingerprint: pgFingerprint(['postgres', 'shop']),
      change: async () => {
        await pgQuery(C.pgPlain, "UPDATE products SET name = 'changed' WHERE id < 100; DELETE FROM orders WHERE id > 4000; CREATE TABLE since (id int);", 'shop');
        await pgQuery(C.pgPlain, 'DELETE FROM notes WHERE id = 1; CREATE TABLE since (id int);');
      },
    });
    // The roles came with the globals: the copy's orders belong to reporter, as in the original.
    expect(await pgQuery(copyOf(C.pgPlain), "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'orders'", 'shop')).toBe('reporter');
  }, 300_000);

  it('postgres custom: a scratch copy with the backup, the original untouched, NAME taken, drill passes', async () => {
    await restoreIntoNew({
      container: C.pgCustom,
      fingerprint: pgFingerprint(['shop']),
      change: () => pgQuery(C.pgCustom, 'UPDATE products SET price = 0 WHERE id % 3 = 0; CREATE TABLE since (id int); INSERT INTO since VALUES (1);', 'shop').then(() => undefined),
    });
  }, 300_000);

  it('redis: a scratch copy on a fresh volume with the backup, the original untouched, NAME taken, drill passes', async () => {
    await restoreIntoNew({ container: C.redis, fingerprint: redisFingerprint, change: () => changeRedis(C.redis), dataMount: '/data' });
  }, 300_000);

  it('sqlite: a scratch copy on a fresh volume with the backup, the original untouched, NAME taken, drill passes', async () => {
    await restoreIntoNew({ container: C.sqlite, fingerprint: (c) => sqliteFingerprint(c), change: () => changeSqlite(C.sqlite), dataMount: '/data' });
  }, 300_000);

  it('volume: new:NAME is a new volume with the backup\'s files, the original untouched, NAME taken, drill passes', async () => {
    const original = await sh(C.volume, TREE);
    const name = await backup(C.volume);
    await sh(C.volume, 'echo v2 > /data/conf && rm /data/a/blob && echo extra > /data/extra');
    const changed = await sh(C.volume, TREE);
    expect(changed).not.toBe(original);

    const { code, body } = await runJson<Job<RestoreResult>>(['restore', C.volume, name, '--to', `new:${VOLUMES.fresh}`, '--wait']);
    expect(code, JSON.stringify(body)).toBe(0);
    expect(body.result?.safety_backup).toBeNull();
    const read = (): Promise<string> =>
      docker(host(), ['run', '--rm', '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-v', `${VOLUMES.fresh}:/data:ro`, HOST_IMAGE, 'bash', '-c', TREE]);
    expect(await read()).toBe(original);
    expect(await docker(host(), ['volume', 'inspect', '-f', '{{index .Labels "backer.restore"}}', VOLUMES.fresh])).toBe(C.volume);
    expect(await sh(C.volume, TREE)).toBe(changed);
    expect(await inspect(C.volume, '{{.State.Running}}')).toBe('true');
    // A volume restore creates no container.
    expect(await scratchesOf(C.volume)).toEqual([]);

    const again = await run(['restore', C.volume, name, '--to', `new:${VOLUMES.fresh}`, '--wait']);
    expect(again.code, again.stdout + again.stderr).toBe(5);
    expect(again.stdout).toContain(`volume ${VOLUMES.fresh} exists and is not empty`);
    expect(await read()).toBe(original);

    await expectDrillPasses(C.volume, name);
    expect(await scratchesOf(C.volume)).toEqual([]);
    expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
  }, 300_000);
});
