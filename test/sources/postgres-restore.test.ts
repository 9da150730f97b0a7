import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { postgresSource, type PostgresOptions } from '../../src/sources/postgres.js';
import type { RestoreDestination, SourceInfo } from '../../src/sources/types.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callApi } from '../../src/cli/client.js';
import type { Manifest } from '../../src/manifests/schema.js';
import type { AnyJob } from '../../src/queue/types.js';
import { digest } from '../helpers/artifacts.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv, testProcessEnv, type TestEnv } from '../helpers/env.js';
import { sampleCommandLines } from '../helpers/proc.js';
import { HOST_IMAGE } from '../setup/services.js';
import { dumpAll, original, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const host = (): string => inject('dockerHost');
const PASSWORD = 'Pg-restore-s3cret!';
const ID = randomBytes(3).toString('hex');
const C = { plain: `pgr-plain-${ID}`, custom: `pgr-custom-${ID}`, second: `pgr-second-${ID}`, idle: `pgr-idle-${ID}`, stopped: `pgr-stopped-${ID}`, daemon: `pgr-daemon-${ID}` };

const PG_BIN = ((): string => {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  const best = versions.sort((a, b) => Number(b) - Number(a)).find((v) => existsSync(`/usr/lib/postgresql/${v}/bin/pg_dump`));
  if (best === undefined) throw new Error('postgres tests need PostgreSQL server binaries in /usr/lib/postgresql/<version>/bin');
  return `/usr/lib/postgresql/${best}/bin`;
})();
const [PG_UID, PG_GID] = ((): [string, string] => {
  const [, , uid = '', gid = ''] = execFileSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).trim().split(':');
  return [uid, gid];
})();

/** docker CLI against the private engine; the password reaches it through its environment, never argv. */
function dockerCli(args: string[], input = ''): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: host(), PGPASSWORD: PASSWORD, POSTGRES_PASSWORD: PASSWORD } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`docker ${args.join(' ')} exited ${code}: ${stderr.trim()}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

async function query(container: string, sql: string, db = 'postgres'): Promise<string> {
  const args = ['exec', '-i', '-e', 'PGPASSWORD', container, 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '/tmp', '-U', 'postgres', '-d', db, '-f', '-'];
  return (await dockerCli(args, sql)).stdout.trim();
}

/** As in test/postgres.test.ts: root container, the server as postgres, password auth on the socket. */
const START = [
  'chmod 755 /',
  `exec setpriv --reuid=${PG_UID} --regid=${PG_GID} --clear-groups bash -c '${[
    'printf %s "$POSTGRES_PASSWORD" > /tmp/pwfile',
    'initdb -D /tmp/pgdata -U postgres --pwfile=/tmp/pwfile --auth-local=scram-sha-256 --auth-host=scram-sha-256 >/tmp/initdb.log 2>&1',
    'rm -f /tmp/pwfile',
    'exec postgres -D /tmp/pgdata -k /tmp -c listen_addresses= -c shared_buffers=16MB -c fsync=off',
  ].join(' && ')}'`,
].join(' && ');

async function startPostgres(name: string, labels: Record<string, string> = {}): Promise<void> {
  await dockerCli(['run', '-d', '--name', name, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-u', '0:0',
    '-e', `PATH=${PG_BIN}:/usr/bin:/bin`, '-e', 'POSTGRES_PASSWORD', ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    HOST_IMAGE, 'bash', '-c', START]);
}

async function waitForPostgres(name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await query(name, 'SELECT 1').then((r) => r === '1', () => false))) {
    if (Date.now() > deadline) throw new Error(`postgres in ${name} did not start`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const SHOP_SQL = `
  CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text);
  CREATE TABLE orders (id serial PRIMARY KEY, product_id int REFERENCES products(id), qty int);
  INSERT INTO products SELECT g, 'product-' || g, g * 1.25, repeat(E'x\\'"\\t', g % 7) FROM generate_series(1, 2000) g;
  INSERT INTO orders (product_id, qty) SELECT (g % 2000) + 1, g % 7 FROM generate_series(1, 5000) g;`;

/** Every public table of `db`, with its row count and the md5 of its rows: equal on a faithful restore. */
async function tables(container: string, db: string): Promise<string> {
  return query(container, `SELECT coalesce(string_agg(c.relname || ':' || (xpath('/row/m/text()', query_to_xml(format(
    'SELECT count(*) || ''/'' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') AS m FROM %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text, ' ' ORDER BY c.relname), '')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = 'public'`, db);
}

const fingerprint = async (container: string, dbs: string[]): Promise<string> => (await Promise.all(dbs.map(async (db) => `${db}=${await tables(container, db)}`))).join('\n');

const options = (raw: Record<string, string>): PostgresOptions =>
  postgresSource.parse({ password: 'Env:POSTGRES_PASSWORD', socket_dir: '/tmp', ...raw }, { container: null, describe: (k) => `label backer.postgres.${k}` });
const PLAIN = (): PostgresOptions => options({ database: '*', globals: 'true' });
const CUSTOM = (): PostgresOptions => options({ database: 'shop', format: 'custom', exec_user: `${PG_UID}:${PG_GID}` });
const into = (container: string): RestoreDestination => ({ kind: 'container', container, original: false, scratch: false });

/** Restores `bytes` (planned first, as the pipeline does). */
async function restore(o: PostgresOptions, container: string, destination: RestoreDestination, dump: { bytes: Buffer; info: SourceInfo }, databases = new Map<string, string>()): Promise<void> {
  const request = restoreRequest(container, destination, dump.info, { databases });
  await postgresSource.planRestore?.(o, request, sourceContext('pgr'));
  await postgresSource.restore?.(o, request, Readable.from([dump.bytes]), sourceContext('pgr'));
}

async function shopIn(container: string): Promise<void> {
  await query(container, 'CREATE DATABASE shop;');
  await query(container, SHOP_SQL, 'shop');
}

beforeAll(async () => {
  for (const name of [C.plain, C.custom, C.second, C.stopped]) await startPostgres(name);
  await dockerCli(['run', '-d', '--name', C.idle, '--network', 'none', '-v', '/usr:/usr:ro', '-v', '/etc:/etc:ro', '-e', 'PATH=/usr/local/bin', '-e', 'POSTGRES_PASSWORD', HOST_IMAGE, '/usr/bin/sleep', 'infinity']);
  await Promise.all([C.plain, C.custom, C.second, C.stopped].map(waitForPostgres));
  await dockerCli(['stop', '-t', '1', C.stopped]);
  await Promise.all([
    (async () => {
      await query(C.plain, "CREATE ROLE reporter LOGIN PASSWORD 'rep-pw'; CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;");
      await shopIn(C.plain);
      await query(C.plain, 'ALTER TABLE orders OWNER TO reporter;', 'shop');
    })(),
    shopIn(C.custom),
  ]);
}, 120_000);

afterAll(async () => {
  for (const name of Object.values(C)) await dockerCli(['rm', '-f', '-v', name]).catch(() => undefined);
});

describe('postgres restore: records, renames, other containers, drills', () => {
  it('records server version, format and exact row counts per table in the manifest', async () => {
    const { info } = await dumpAll(postgresSource, PLAIN(), C.plain);
    expect(info).toMatchObject({ format: 'plain', globals: true, databases: ['postgres', 'shop'] });
    expect(info.server_version).toMatch(/^\d+\.\d+/);
    expect(info.stats).toEqual({ databases: ['postgres', 'shop'], tables: { 'postgres.public.notes': 50, 'shop.public.orders': 5000, 'shop.public.products': 2000 } });
  });

  it('--database shop:shop_copy restores only that database under the new name (plain and custom)', async () => {
    const plain = await dumpAll(postgresSource, PLAIN(), C.plain);
    await query(C.plain, 'CREATE TABLE since (id int);');
    await restore(PLAIN(), C.plain, original(C.plain), plain, new Map([['shop', 'shop_copy']]));
    expect(await tables(C.plain, 'shop_copy')).toBe(await tables(C.plain, 'shop'));
    expect(await tables(C.plain, 'postgres')).toMatch(/^notes:50\/\S+ since:0\/$/);
    await query(C.plain, 'DROP TABLE since; DROP DATABASE shop_copy;');
    const odd = `Shop Copy "x"'y`;
    await restore(PLAIN(), C.plain, original(C.plain), plain, new Map([['shop', odd]]));
    expect(await tables(C.plain, odd)).toBe(await tables(C.plain, 'shop'));
    await query(C.plain, `DROP DATABASE "Shop Copy ""x""'y";`);

    const custom = await dumpAll(postgresSource, CUSTOM(), C.custom);
    await restore(CUSTOM(), C.custom, original(C.custom), custom, new Map([['shop', 'shop2']]));
    expect(await tables(C.custom, 'shop2')).toBe(await tables(C.custom, 'shop'));
  });

  it('ends the other sessions of a database it replaces, and passes the password through no argv', async () => {
    for (const [o, container] of [[PLAIN(), C.plain], [CUSTOM(), C.custom]] as const) {
      const dump = await dumpAll(postgresSource, o, container);
      const session = dockerCli(['exec', '-e', 'PGPASSWORD', container, 'psql', '-X', '-h', '/tmp', '-U', 'postgres', '-d', 'shop', '-c', 'SELECT pg_sleep(300)']);
      const ended = session.then(() => 'finished', (err: Error) => err.message);
      while ((await query(container, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' AND query LIKE '%pg_sleep%'")) !== '1') {
        await new Promise((r) => setTimeout(r, 100));
      }
      const restoring = restore(o, container, original(container), dump);
      const argvs = await sampleCommandLines(restoring, 5);
      await restoring;
      expect(await ended).toMatch(/terminat/);
      expect(argvs.some((a) => a.startsWith(o.format === 'plain' ? 'psql' : 'pg_restore'))).toBe(true);
      for (const a of argvs) expect(a).not.toContain(PASSWORD);
      expect(await tables(container, 'shop')).toMatch(/^orders:5000\/\S+ products:2000\/\S+$/);
    }
  });

  it('restores into a second container (plain with the roles, custom), and the drill check passes there', async () => {
    const dump = await dumpAll(postgresSource, PLAIN(), C.plain);
    await restore(PLAIN(), C.plain, into(C.second), dump);
    expect(await fingerprint(C.second, ['postgres', 'shop'])).toBe(await fingerprint(C.plain, ['postgres', 'shop']));
    expect(await query(C.second, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'orders'", 'shop')).toBe('reporter');
    const checks = await postgresSource.check?.(PLAIN(), restoreRequest(C.plain, into(C.second), dump.info), sourceContext('pgr'));
    expect(checks?.filter((c) => !c.ok)).toEqual([]);
    expect(checks).toContainEqual({ check: 'table shop.public.orders rows', ok: true, expected: 5000, actual: 5000 });

    const custom = await dumpAll(postgresSource, CUSTOM(), C.custom);
    await restore(CUSTOM(), C.custom, into(C.second), custom);
    expect(await tables(C.second, 'shop')).toBe(await tables(C.custom, 'shop'));
    const customChecks = await postgresSource.check?.(CUSTOM(), restoreRequest(C.custom, into(C.second), custom.info), sourceContext('pgr'));
    expect(customChecks?.map((c) => [c.check, c.ok])).toEqual([
      ['database shop exists', true],
      ['table shop.public.orders rows', true],
      ['table shop.public.products rows', true],
    ]);
  });

  it('the drill check names the table of a dump truncated by hand', async () => {
    const dump = await dumpAll(postgresSource, PLAIN(), C.plain);
    const lines = dump.bytes.toString('utf8').split('\n');
    const copy = lines.findIndex((l) => l.startsWith('COPY public.orders '));
    lines.splice(copy + 1, 10);
    await restore(PLAIN(), C.plain, into(C.second), { bytes: Buffer.from(lines.join('\n')), info: dump.info });
    const checks = await postgresSource.check?.(PLAIN(), restoreRequest(C.plain, into(C.second), dump.info), sourceContext('pgr'));
    expect(checks?.filter((c) => !c.ok)).toEqual([{ check: 'table shop.public.orders rows', ok: false, expected: 5000, actual: 4990 }]);
  });

  it('a SQL error half-way, or a dump cut before its trailer, rejects with RESTORE_FAILED naming why', async () => {
    const dump = await dumpAll(postgresSource, PLAIN(), C.plain);
    const text = dump.bytes.toString('utf8');
    const at = text.indexOf('\\.\n', text.indexOf('COPY public.orders ')) + 3;
    const broken = Buffer.from(`${text.slice(0, at)}INSERT INTO public.no_such_table VALUES (1);\n${text.slice(at)}`);
    await expect(restore(PLAIN(), C.plain, into(C.second), { bytes: broken, info: dump.info })).rejects.toMatchObject({
      code: 'RESTORE_FAILED',
      message: expect.stringMatching(/psql in container pgr-second-\w+ exited with code 3: .*ERROR: {2}relation "public.no_such_table" does not exist/) as string,
    });
    expect(await query(C.second, 'SELECT 1')).toBe('1');
    const cut = { bytes: dump.bytes.subarray(0, dump.bytes.lastIndexOf('\n--\n-- PostgreSQL database dump complete')), info: dump.info };
    await expect(restore(PLAIN(), C.plain, into(C.second), cut)).rejects.toMatchObject({
      code: 'RESTORE_FAILED',
      message: 'the plain dump ends before the completion trailer of part 3 of 3: it is incomplete',
    });
  });

  it('planRestore refuses an unknown FROM, a missing tool, a stopped destination and an older server', async () => {
    const { info } = await dumpAll(postgresSource, PLAIN(), C.plain);
    const plan = (destination: RestoreDestination, extra: Parameters<typeof restoreRequest>[3] = {}) =>
      postgresSource.planRestore?.(PLAIN(), restoreRequest(C.plain, destination, info, extra), sourceContext('pgr'));
    await expect(plan(original(C.plain), { databases: new Map([['nosuch', 'x']]) })).rejects.toMatchObject({
      code: 'RESTORE_REFUSED',
      message: '--database nosuch:x: the backup holds no database "nosuch" (it holds "postgres", "shop")',
    });
    await expect(plan(into(C.idle))).rejects.toMatchObject({ code: 'TOOL_MISSING', message: expect.stringContaining(`container ${C.idle} has no psql on its PATH`) as string });
    await expect(plan(into(C.stopped))).rejects.toMatchObject({ code: 'CONTAINER_NOT_RUNNING', message: expect.stringContaining(C.stopped) as string });
    await expect(plan(into(C.second), { manifest: { ...info, server_version: '99.1' } })).rejects.toMatchObject({
      code: 'RESTORE_REFUSED',
      message: expect.stringMatching(/older than the backed-up server \(99\.1\): restore into PostgreSQL 99 or newer/) as string,
    });
    const steps = (await plan(original(C.plain)))?.steps ?? [];
    expect(steps.join('\n')).toMatch(/drop database "shop" in container pgr-plain-\w+ .*and create it again\nload database "shop" with psql/);
  });
});

/** Rewrites a raw (no middleware) local artifact and, with `remanifest`, its manifest's digests to match. */
async function editArtifact(env: TestEnv, manifest: Manifest, edit: (sql: string) => string, remanifest: boolean): Promise<void> {
  const path = join(env.dir, 'backups', manifest.artifact.key);
  const bytes = Buffer.from(edit(await readFile(path, 'utf8')));
  await writeFile(path, bytes);
  if (!remanifest) return;
  const d = digest(bytes);
  const steps = manifest.steps.map((s, i) => (i === 0 ? { ...s, ...d } : s));
  const manifestPath = join(env.dir, 'backups', manifest.artifact.key.replace(/\.sql$/, '.manifest.json'));
  await writeFile(manifestPath, JSON.stringify({ ...manifest, artifact: { ...manifest.artifact, ...d }, steps }, null, 2));
}

const dropOrderRows = (sql: string): string => {
  const lines = sql.split('\n');
  lines.splice(lines.findIndex((l) => l.startsWith('COPY public.orders ')) + 1, 10);
  return lines.join('\n');
};

describe('postgres restores and drills through a real daemon process', () => {
  it('restores the original, passes a drill, names the table of a hand-truncated dump, and rolls a SQL error back', async () => {
    const env = await createTestEnv('pgr');
    const socket = join(env.dir, 'data', 'backer.sock');
    const labels = { 'backer.enabled': 'true', 'backer.type': 'postgres', 'backer.interval': '0 0 29 2 *', 'backer.target': 'local',
      'backer.postgres.password': 'Env:POSTGRES_PASSWORD', 'backer.postgres.socket_dir': '/tmp', 'backer.postgres.database': 'shop' };
    await startPostgres(C.daemon, labels);
    await waitForPostgres(C.daemon);
    await shopIn(C.daemon);
    const daemon = spawnDaemon(env.configPath);
    const json = async <T>(args: string[]): Promise<{ code: number; body: T }> => {
      const r = await cli([...args, '--config', env.configPath, '--json'], testProcessEnv());
      return { code: r.code, body: JSON.parse(r.stdout || 'null') as T };
    };
    const backup = async (): Promise<Manifest> => {
      const { code, body } = await json<AnyJob>(['backup', C.daemon, '--wait']);
      expect(code, JSON.stringify(body)).toBe(0);
      const name = (body.result as { name?: string } | null)?.name;
      const list = (await json<{ backups: Manifest[] }>(['backups', 'list', '--mandate', C.daemon])).body.backups;
      return list.find((m) => m.name === name) as Manifest;
    };
    try {
      await waitForHealth(daemon, socket, 60_000);
      const first = await backup();
      const before = await fingerprint(C.daemon, ['shop']);
      await query(C.daemon, "UPDATE products SET name = 'x'; CREATE TABLE since (id int);", 'shop');
      const restored = await json<AnyJob>(['restore', C.daemon, first.name, '--yes', '--wait']);
      expect(restored.code, JSON.stringify(restored.body)).toBe(0);
      expect(await fingerprint(C.daemon, ['shop'])).toBe(before);
      const drill = await json<{ jobs: AnyJob[] }>(['verify', C.daemon, first.name, '--level', 'drill']);
      expect(drill.code, JSON.stringify(drill.body)).toBe(0);

      const plan = await cli(['restore', C.daemon, first.name, '--dry-run', '--config', env.configPath], testProcessEnv());
      expect(plan.stdout).toMatch(/drop database "shop" in container pgr-daemon-\w+ \(PostgreSQL [\d.]+.*\n.*load database "shop" with psql/);
      const unknown = await cli(['restore', C.daemon, first.name, '--database', 'nosuch:x', '--yes', '--wait', '--config', env.configPath], testProcessEnv());
      expect(unknown.code, unknown.stdout + unknown.stderr).toBe(5);
      expect(unknown.stdout + unknown.stderr).toContain('--database nosuch:x: the backup holds no database "nosuch" (it holds "shop")');

      const truncated = await backup();
      await editArtifact(env, truncated, dropOrderRows, true);
      const failed = await json<{ jobs: AnyJob[] }>(['verify', C.daemon, truncated.name, '--level', 'drill']);
      expect(failed.code).toBe(1);
      expect(failed.body.jobs[0]?.error?.message).toContain('1 check(s) failed: table shop.public.orders rows (expected 5000, found 4990)');

      const broken = await backup();
      // Re-manifested, so that only the SQL fails: after the orders were loaded, the products' COPY.
      await editArtifact(env, broken, (sql) => sql.replace('COPY public.products ', 'COPY public.productz '), true);
      await query(C.daemon, 'CREATE TABLE since (id int);', 'shop');
      const changed = await fingerprint(C.daemon, ['shop']);
      const rolled = await json<AnyJob>(['restore', C.daemon, broken.name, '--yes', '--wait']);
      expect(rolled.code).toBe(1);
      expect(rolled.body.error?.message).toMatch(/psql in container .* exited with code 3: .*relation "public.productz" does not exist/);
      expect(rolled.body.error?.message).toContain('rolled back from the safety backup');
      expect(await fingerprint(C.daemon, ['shop'])).toBe(changed);
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
    }
  }, 300_000);
});

// Last: their broken-input case leaves the original half-restored.
describe('postgres restore suite', () => {
  restoreSuite('postgres plain (every database, globals)', () => ({
    source: postgresSource,
    options: PLAIN(),
    container: C.plain,
    change: async () => {
      await query(C.plain, "UPDATE products SET name = 'changed' WHERE id < 100; DELETE FROM orders WHERE id > 4000; CREATE TABLE since (id int);", 'shop');
      await query(C.plain, 'CREATE TABLE since (id int); DELETE FROM notes WHERE id = 1;');
    },
    fingerprint: () => fingerprint(C.plain, ['postgres', 'shop']),
  }));

  restoreSuite('postgres custom', () => ({
    source: postgresSource,
    options: CUSTOM(),
    container: C.custom,
    change: () => query(C.custom, "UPDATE products SET price = 0 WHERE id % 3 = 0; CREATE TABLE since (id int); INSERT INTO since VALUES (1);", 'shop').then(() => undefined),
    fingerprint: () => fingerprint(C.custom, ['shop']),
  }));
});
