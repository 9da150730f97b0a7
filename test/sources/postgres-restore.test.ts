import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { PG_PASSWORD, PG_USER, pgDocker, pgFingerprint, pgQuery, pgTables, runPostgres, seedPgShop, startPgIdle, startPostgres, waitForPostgres } from '../helpers/postgres.js';
import { dumpAll, original, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const ID = randomBytes(3).toString('hex');
const C = { plain: `pgr-plain-${ID}`, custom: `pgr-custom-${ID}`, second: `pgr-second-${ID}`, idle: `pgr-idle-${ID}`, stopped: `pgr-stopped-${ID}`, daemon: `pgr-daemon-${ID}` };

const options = (raw: Record<string, string>): PostgresOptions =>
  postgresSource.parse({ password: 'Env:POSTGRES_PASSWORD', socket_dir: '/tmp', ...raw }, { container: null, describe: (k) => `label backer.postgres.${k}` });
const PLAIN = (): PostgresOptions => options({ database: '*', globals: 'true' });
const CUSTOM = (): PostgresOptions => options({ database: 'shop', format: 'custom', exec_user: PG_USER });
const into = (container: string): RestoreDestination => ({ kind: 'container', container, original: false, scratch: false });

/** Restores `bytes` (planned first, as the pipeline does). */
async function restore(o: PostgresOptions, container: string, destination: RestoreDestination, dump: { bytes: Buffer; info: SourceInfo }, databases = new Map<string, string>()): Promise<void> {
  const request = restoreRequest(container, destination, dump.info, { databases });
  await postgresSource.planRestore?.(o, request, sourceContext('pgr'));
  await postgresSource.restore?.(o, request, Readable.from([dump.bytes]), sourceContext('pgr'));
}

beforeAll(async () => {
  for (const name of [C.plain, C.custom, C.second, C.stopped]) await runPostgres(name);
  await startPgIdle(C.idle, {}, '/usr/local/bin');
  await Promise.all([C.plain, C.custom, C.second, C.stopped].map(waitForPostgres));
  await pgDocker(['stop', '-t', '1', C.stopped]);
  await Promise.all([
    (async () => {
      await pgQuery(C.plain, "CREATE ROLE reporter LOGIN PASSWORD 'rep-pw'; CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 50) g;");
      await seedPgShop(C.plain);
      await pgQuery(C.plain, 'ALTER TABLE orders OWNER TO reporter;', 'shop');
    })(),
    seedPgShop(C.custom),
  ]);
}, 120_000);

afterAll(async () => {
  for (const name of Object.values(C)) await pgDocker(['rm', '-f', '-v', name]).catch(() => undefined);
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
    await pgQuery(C.plain, 'CREATE TABLE since (id int);');
    await restore(PLAIN(), C.plain, original(C.plain), plain, new Map([['shop', 'shop_copy']]));
    expect(await pgTables(C.plain, 'shop_copy')).toBe(await pgTables(C.plain, 'shop'));
    expect(await pgTables(C.plain, 'postgres')).toMatch(/^notes:50\/\S+ since:0\/$/);
    await pgQuery(C.plain, 'DROP TABLE since; DROP DATABASE shop_copy;');
    const odd = `Shop Copy "x"'y`;
    await restore(PLAIN(), C.plain, original(C.plain), plain, new Map([['shop', odd]]));
    expect(await pgTables(C.plain, odd)).toBe(await pgTables(C.plain, 'shop'));
    await pgQuery(C.plain, `DROP DATABASE "Shop Copy ""x""'y";`);

    const custom = await dumpAll(postgresSource, CUSTOM(), C.custom);
    await restore(CUSTOM(), C.custom, original(C.custom), custom, new Map([['shop', 'shop2']]));
    expect(await pgTables(C.custom, 'shop2')).toBe(await pgTables(C.custom, 'shop'));
  });

  it('ends the other sessions of a database it replaces, and passes the password through no argv', async () => {
    for (const [o, container] of [[PLAIN(), C.plain], [CUSTOM(), C.custom]] as const) {
      const dump = await dumpAll(postgresSource, o, container);
      const session = pgDocker(['exec', '-e', 'PGPASSWORD', container, 'psql', '-X', '-h', '/tmp', '-U', 'postgres', '-d', 'shop', '-c', 'SELECT pg_sleep(300)']);
      const ended = session.then(() => 'finished', (err: Error) => err.message);
      while ((await pgQuery(container, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shop' AND query LIKE '%pg_sleep%'")) !== '1') {
        await new Promise((r) => setTimeout(r, 100));
      }
      const tool = o.format === 'plain' ? 'psql' : 'pg_restore';
      const restoring = restore(o, container, original(container), dump);
      const argvs = await sampleCommandLines(restoring, 5);
      await restoring;
      expect(await ended).toMatch(/terminat/);
      // The restore tool lives a moment only: under load the sampler may miss it; restore again
      // (at most 4 more times) until it has seen it, so that the argv check below checked it.
      for (let i = 0; i < 4 && !argvs.some((a) => a.startsWith(tool)); i++) {
        const again = restore(o, container, original(container), dump);
        argvs.push(...(await sampleCommandLines(again, 2)));
        await again;
      }
      expect(argvs.some((a) => a.startsWith(tool))).toBe(true);
      for (const a of argvs) expect(a).not.toContain(PG_PASSWORD);
      expect(await pgTables(container, 'shop')).toMatch(/^orders:5000\/\S+ products:2000\/\S+$/);
    }
  });

  it('restores into a second container (plain with the roles, custom), and the drill check passes there', async () => {
    const dump = await dumpAll(postgresSource, PLAIN(), C.plain);
    await restore(PLAIN(), C.plain, into(C.second), dump);
    expect(await pgFingerprint(C.second, ['postgres', 'shop'])).toBe(await pgFingerprint(C.plain, ['postgres', 'shop']));
    expect(await pgQuery(C.second, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'orders'", 'shop')).toBe('reporter');
    const checks = await postgresSource.check?.(PLAIN(), restoreRequest(C.plain, into(C.second), dump.info), sourceContext('pgr'));
    expect(checks?.filter((c) => !c.ok)).toEqual([]);
    expect(checks).toContainEqual({ check: 'table shop.public.orders rows', ok: true, expected: 5000, actual: 5000 });

    const custom = await dumpAll(postgresSource, CUSTOM(), C.custom);
    await restore(CUSTOM(), C.custom, into(C.second), custom);
    expect(await pgTables(C.second, 'shop')).toBe(await pgTables(C.custom, 'shop'));
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
    expect(await pgQuery(C.second, 'SELECT 1')).toBe('1');
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
    await seedPgShop(C.daemon);
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
      const before = await pgFingerprint(C.daemon, ['shop']);
      await pgQuery(C.daemon, "UPDATE products SET name = 'x'; CREATE TABLE since (id int);", 'shop');
      const restored = await json<AnyJob>(['restore', C.daemon, first.name, '--yes', '--wait']);
      expect(restored.code, JSON.stringify(restored.body)).toBe(0);
      expect(await pgFingerprint(C.daemon, ['shop'])).toBe(before);
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
      await pgQuery(C.daemon, 'CREATE TABLE since (id int);', 'shop');
      const changed = await pgFingerprint(C.daemon, ['shop']);
      const rolled = await json<AnyJob>(['restore', C.daemon, broken.name, '--yes', '--wait']);
      expect(rolled.code).toBe(1);
      expect(rolled.body.error?.message).toMatch(/psql in container .* exited with code 3: .*relation "public.productz" does not exist/);
      expect(rolled.body.error?.message).toContain('rolled back from the safety backup');
      expect(await pgFingerprint(C.daemon, ['shop'])).toBe(changed);
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
      await pgQuery(C.plain, "UPDATE products SET name = 'changed' WHERE id < 100; DELETE FROM orders WHERE id > 4000; CREATE TABLE since (id int);", 'shop');
      await pgQuery(C.plain, 'CREATE TABLE since (id int); DELETE FROM notes WHERE id = 1;');
    },
    fingerprint: () => pgFingerprint(C.plain, ['postgres', 'shop']),
  }));

  restoreSuite('postgres custom', () => ({
    source: postgresSource,
    options: CUSTOM(),
    container: C.custom,
    change: () => pgQuery(C.custom, "UPDATE products SET price = 0 WHERE id % 3 = 0; CREATE TABLE since (id int); INSERT INTO since VALUES (1);", 'shop').then(() => undefined),
    fingerprint: () => pgFingerprint(C.custom, ['shop']),
  }));
});
