/**
 * examples/compose, brought up for real: Debian's docker-compose (v1.29) runs the example file
 * unchanged plus a test-only override (no bridge network here, stand-in images need the host's
 * /usr and /etc), with the Backer image built from the repo's Dockerfile and stand-ins for
 * MariaDB, PostgreSQL, Redis and the app chosen through the example's *_IMAGE variables. Every
 * service is backed up through `docker-compose exec backer backer backup … --wait`, and every
 * artifact is decoded with the real tools and restored.
 */
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../src/manifests/schema.js';
import { decodeWithRealTools, digest, runProgram, s3Get } from './helpers/artifacts.js';
import { ensureBackerImage } from './helpers/backer-image.js';
import { buildStandins, ComposeProject, EXAMPLE_DIR, STANDIN_IMAGES, waitUntil } from './helpers/compose.js';
import { AGE_RECIPIENT, CCRYPT_KEY, createBucket, TEST_KEYS } from './helpers/env.js';
import { checksums, ROOT_PASSWORD, seedShop, sql, startMariaDb } from './helpers/mariadb.js';
import { commandExists, docker } from './setup/services.js';

const host = (): string => inject('dockerHost');
const PROJECT = `bkcompose${process.pid}`;
const SECRETS = { mariadb_root_password: ROOT_PASSWORD, postgres_password: 'Pg-compose-pw-31', redis_password: 'Redis-compose-pw-47' };
const RESTORED = { mariadb: 'compose-restore-mariadb', postgres: 'compose-restore-postgres', redis: 'compose-restore-redis' };
/** The backer user of the image (Dockerfile: uid 10001). */
const BACKER_UID = 10001;

let dir: string;
let bucket: string;
let project: ComposeProject;
let dockerGid: number;
/** service → its container's name, which is the mandate's name. */
const names: Record<string, string> = {};

/** Fills .env.example's keys with the test's values; every key of the example must get one. */
async function writeEnvFile(values: Record<string, string>): Promise<string> {
  const example = await readFile(join(EXAMPLE_DIR, '.env.example'), 'utf8');
  const keys = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] ?? '');
  const missing = keys.filter((k) => values[k] === undefined);
  if (missing.length > 0) throw new Error(`the test gives no value for ${missing.join(', ')} of .env.example`);
  const file = join(dir, 'env');
  await writeFile(file, Object.entries(values).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
  return file;
}

async function exec(container: string, args: string[], input = '', env: Record<string, string> = {}): Promise<string> {
  const flags = Object.keys(env).flatMap((k) => ['-e', k]);
  return docker(host(), ['exec', '-i', ...flags, container, ...args], input, env);
}

const psql = (container: string, statements: string, db = 'postgres'): Promise<string> =>
  exec(container, ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', db, '-f', '-'], statements, { PGPASSWORD: SECRETS.postgres_password });
const redis = (container: string, args: string[], password: string | null): Promise<string> =>
  exec(container, ['redis-cli', ...args], '', password === null ? {} : { REDISCLI_AUTH: password });
const tableChecksum = (container: string, db: string, table: string): Promise<string> =>
  psql(container, `SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM ${table} t;`, db);

async function seed(): Promise<void> {
  await waitUntil(() => sql(host(), names['shop-db'] ?? '', 'SELECT 1').then(() => true, () => false), 90_000, 'MariaDB');
  await seedShop(host(), names['shop-db'] ?? '');
  await waitUntil(() => psql(names['app-pg'] ?? '', 'SELECT 1').then(() => true, () => false), 90_000, 'PostgreSQL');
  await psql(names['app-pg'] ?? '', 'CREATE DATABASE wiki;');
  await psql(names['app-pg'] ?? '', "CREATE TABLE pages (id int PRIMARY KEY, title text, body text); INSERT INTO pages SELECT g, 'page ' || g, repeat('text ', g % 30) FROM generate_series(1, 3000) g;", 'wiki');
  await waitUntil(() => redis(names.cache ?? '', ['PING'], SECRETS.redis_password).then((r) => r === 'PONG', () => false), 60_000, 'Redis');
  for (let i = 0; i < 50; i++) await redis(names.cache ?? '', ['SET', `session:${i}`, `user-${i}`], SECRETS.redis_password);
  await redis(names.cache ?? '', ['RPUSH', 'queue', 'a', 'b', 'c'], SECRETS.redis_password);
  await exec(names.site ?? '', ['sh', '-c', 'mkdir -p /var/www/img && printf "<h1>shop</h1>\\n" > /var/www/index.html && head -c 300000 /dev/urandom > /var/www/img/logo.bin']);
}

/**
 * `backer mandates list --json` inside the backer service, only this project's containers: the
 * private engine is shared with other test files, whose labelled containers this Backer sees too.
 */
async function mandates(): Promise<{ mandates: { name: string }[]; skipped: { name: string }[] }> {
  const out = await project.ok(['exec', '-T', 'backer', 'backer', 'mandates', 'list', '--json']);
  const all = JSON.parse(out.toString()) as { mandates: { name: string }[]; skipped: { name: string }[] };
  const ours = new Set(Object.values(names));
  return { mandates: all.mandates.filter((m) => ours.has(m.name)), skipped: all.skipped.filter((m) => ours.has(m.name)) };
}

beforeAll(async () => {
  if (!(await commandExists('docker-compose'))) throw new Error('the compose test needs docker-compose (Debian package docker-compose): run ./scripts/install-deps');
  dir = await mkdtemp(join(tmpdir(), 'bk-compose-'));
  const socket = host().replace(/^unix:\/\//, '');
  dockerGid = (await stat(socket)).gid;
  const [image] = await Promise.all([ensureBackerImage(host()), buildStandins(host())]);
  await mkdir(join(dir, 'secrets'));
  for (const [name, value] of Object.entries(SECRETS)) await writeFile(join(dir, 'secrets', name), `${value}\n`, { mode: 0o600 });
  // Like a user's ./backups: owned by the image's backer user, who alone may write there.
  await mkdir(join(dir, 'backups'));
  await chown(join(dir, 'backups'), BACKER_UID, BACKER_UID);
  await chmod(join(dir, 'backups'), 0o700);
  bucket = `bk-compose-${Math.random().toString(36).slice(2, 8)}`;
  await createBucket(bucket);
  const s3 = inject('s3');
  const envFile = await writeEnvFile({
    DOCKER_GID: String(dockerGid),
    BACKUP_DIR: join(dir, 'backups'),
    CCRYPT_KEY,
    AGE_RECIPIENT,
    S3_BUCKET: bucket,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    BACKER_IMAGE: image,
    ...STANDIN_IMAGES,
    DOCKER_SOCKET: socket,
    COMPOSE_TEST_SECRETS: join(dir, 'secrets'),
  });
  project = new ComposeProject(PROJECT, host(), envFile, {});
  await project.ok(['up', '-d', '--no-build']);
  for (const service of ['shop-db', 'app-pg', 'cache', 'site', 'backer']) names[service] = await project.containerName(service);
  await seed();
  await waitUntil(() => mandates().then((m) => m.mandates.length === 4, () => false), 90_000, 'the daemon with 4 mandates');
}, 1_200_000);

afterAll(async () => {
  if (project !== undefined) {
    const down = await project.run(['down', '-v', '--remove-orphans']);
    if (down.code !== 0) throw new Error(`docker-compose down -v failed: ${down.stderr}`);
  }
  await docker(host(), ['rm', '-f', '-v', ...Object.values(RESTORED)]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}, 180_000);

/** Runs `docker-compose exec -T backer backer backup MANDATE --wait`, returns the local manifest and artifact. */
async function backup(service: string): Promise<{ manifest: Manifest; artifact: Buffer }> {
  const mandate = names[service] ?? '';
  const run = await project.run(['exec', '-T', 'backer', 'backer', 'backup', mandate, '--wait']);
  expect(run.code, `${run.stdout.toString()}${run.stderr}`).toBe(0);
  const folder = join(dir, 'backups', mandate);
  const files = await readdir(folder);
  const manifests = files.filter((f) => f.endsWith('.manifest.json'));
  expect(manifests).toHaveLength(1);
  const manifest = JSON.parse(await readFile(join(folder, manifests[0] ?? ''), 'utf8')) as Manifest;
  const artifact = await readFile(join(folder, manifest.artifact.key.slice(mandate.length + 1)));
  expect(digest(artifact)).toEqual({ size: manifest.artifact.size, md5: manifest.artifact.md5, sha256: manifest.artifact.sha256 });
  return { manifest, artifact };
}

describe('examples/compose with docker-compose', () => {
  it('runs Backer as its non-root user with the socket group, and the daemon has every labelled service', async () => {
    const id = (await project.ok(['exec', '-T', 'backer', 'id'])).toString();
    expect(id).toMatch(new RegExp(`^uid=${BACKER_UID}\\(backer\\) gid=${BACKER_UID}\\(backer\\) groups=.*\\b${dockerGid}\\b`));
    const list = await mandates();
    expect(list.skipped).toEqual([]);
    expect(list.mandates.map((m) => m.name).sort()).toEqual([names['app-pg'], names.cache, names['shop-db'], names.site].sort());
  });

  it('backs up MariaDB to local and S3 (gzip, ccrypt), and the dump restores with identical checksums', async () => {
    const { manifest, artifact } = await backup('shop-db');
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:mysql', 'middleware:gzip:compression', 'middleware:ccrypt:encryption']);
    expect(manifest.source).toMatchObject({ type: 'mysql', image: STANDIN_IMAGES.MARIADB_IMAGE, databases: ['shop'] });
    expect(digest(await s3Get(bucket, `backer/${manifest.artifact.key}`)).sha256).toBe(manifest.artifact.sha256);
    const raw = await decodeWithRealTools(artifact, manifest.steps, TEST_KEYS);
    await startMariaDb(host(), { name: RESTORED.mariadb, env: { MYSQL_DATABASE: 'other' } });
    await sql(host(), RESTORED.mariadb, raw.toString());
    const tables = ['shop.products', 'shop.orders'];
    expect(await checksums(host(), RESTORED.mariadb, tables)).toBe(await checksums(host(), names['shop-db'] ?? '', tables));
    expect(await sql(host(), RESTORED.mariadb, 'SELECT COUNT(*) FROM shop.orders')).toBe('1000');
  });

  it('backs up PostgreSQL with globals (zstd, age), and the dump restores every database', async () => {
    const { manifest, artifact } = await backup('app-pg');
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:postgres', 'middleware:zstd:zstd', 'middleware:age:age']);
    expect(manifest.source).toMatchObject({ type: 'postgres', databases: ['postgres', 'wiki'], globals: true });
    const raw = (await decodeWithRealTools(artifact, manifest.steps, TEST_KEYS)).toString();
    expect(raw).toMatch(/-- PostgreSQL database cluster dump complete/);
    await docker(host(), ['run', '-d', '--name', RESTORED.postgres, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro',
      '-v', `${join(dir, 'secrets', 'postgres_password')}:/run/secrets/pw:ro`, '-e', 'POSTGRES_PASSWORD_FILE=/run/secrets/pw', STANDIN_IMAGES.POSTGRES_IMAGE]);
    await waitUntil(() => psql(RESTORED.postgres, 'SELECT 1').then(() => true, () => false), 90_000, 'the restore PostgreSQL');
    // As with any pg_dumpall restore, the superuser role exists already: that is the only error.
    const restore = await exec(RESTORED.postgres, ['sh', '-c', 'psql -X -q -U postgres -d postgres -f - 2>&1 >/dev/null; true'], raw, { PGPASSWORD: SECRETS.postgres_password });
    expect(restore.split('\n').filter((l) => /ERROR/.test(l))).toEqual([expect.stringMatching(/role "postgres" already exists/)]);
    expect(await tableChecksum(RESTORED.postgres, 'wiki', 'pages')).toBe(await tableChecksum(names['app-pg'] ?? '', 'wiki', 'pages'));
    expect(await tableChecksum(RESTORED.postgres, 'wiki', 'pages')).toMatch(/^3000:[0-9a-f]{32}$/);
  });

  it('backs up Redis (gzip) with the password from its secret file, and a fresh redis-server loads the RDB', async () => {
    const { manifest, artifact } = await backup('cache');
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:redis', 'middleware:gzip:compression']);
    const raw = await decodeWithRealTools(artifact, manifest.steps, TEST_KEYS);
    expect(raw.subarray(0, 5).toString()).toBe('REDIS');
    const rdb = join(dir, 'dump.rdb');
    await writeFile(rdb, raw);
    await docker(host(), ['create', '--name', RESTORED.redis, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', STANDIN_IMAGES.REDIS_IMAGE,
      'redis-server', '--bind', '127.0.0.1', '--dir', '/data', '--dbfilename', 'dump.rdb']);
    await docker(host(), ['cp', rdb, `${RESTORED.redis}:/data/dump.rdb`]);
    await docker(host(), ['start', RESTORED.redis]);
    await waitUntil(() => redis(RESTORED.redis, ['PING'], null).then((r) => r === 'PONG', () => false), 30_000, 'the restore Redis');
    expect(await redis(RESTORED.redis, ['DBSIZE'], null)).toBe('51');
    expect(await redis(RESTORED.redis, ['GET', 'session:42'], null)).toBe('user-42');
    expect(await redis(RESTORED.redis, ['LRANGE', 'queue', '0', '-1'], null)).toBe('a\nb\nc');
  });

  it("backs up the app's volume (zstd) with Backer's own image as the helper, and the tar restores the files", async () => {
    const { manifest, artifact } = await backup('site');
    expect(manifest.steps.map((s) => s.processor)).toEqual(['source:volume', 'middleware:zstd:zstd']);
    const tar = await decodeWithRealTools(artifact, manifest.steps, TEST_KEYS);
    const out = join(dir, 'site-restore');
    await mkdir(out);
    await runProgram('tar', ['-x', '-C', out, '-f', '-'], tar);
    const inContainer = await exec(names.site ?? '', ['sh', '-c', 'cd /var/www && sha256sum index.html img/logo.bin']);
    const restored = (await runProgram('sh', ['-c', `cd '${out}/var/www' && sha256sum index.html img/logo.bin`], Buffer.alloc(0))).toString().trim();
    expect(restored).toBe(inContainer);
    expect(await readFile(join(out, 'var/www/index.html'), 'utf8')).toBe('<h1>shop</h1>\n');
  });

  it('answers a backup of an unknown mandate with exit 4, and the daemon keeps running', async () => {
    const run = await project.run(['exec', '-T', 'backer', 'backer', 'backup', 'no-such-service', '--wait']);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/no-such-service/);
    expect((await mandates()).mandates).toHaveLength(4);
  });
});
