import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import type { Manifest } from '../../src/manifests/schema.js';
import type { RestoreResult } from '../../src/pipeline/run-restore.js';
import type { VerifyResult } from '../../src/pipeline/run-verify.js';
import type { AnyJob, Job } from '../../src/queue/types.js';
import { sqliteSource, type SqliteOptions } from '../../src/sources/sqlite.js';
import type { DumpContext, RestoreDestination } from '../../src/sources/types.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv, testProcessEnv } from '../helpers/env.js';
import { changeSqlite, seedSqlite, sqlite, sqliteFingerprint, startSqliteApp } from '../helpers/sqlite.js';
import { VOLUME_HELPER_YAML } from '../helpers/volume-config.js';
import { docker, HOST_IMAGE } from '../setup/services.js';
import { dumpAll, failingInput, original, restoreRequest, restoreSuite, sourceContext } from './suite.js';

const host = (): string => inject('dockerHost');
const ID = randomBytes(3).toString('hex');
const APP = `sqlr-${ID}-app`;
const OTHER = `sqlr-${ID}-other`;
const BROKEN = `sqlr-${ID}-broken`;
const STOPPED = `sqlr-${ID}-stopped`;
const NOTOOL = `sqlr-${ID}-notool`;
const SERVED = `sqlr-${ID}-served`;
const CONTAINERS = [APP, OTHER, BROKEN, STOPPED, NOTOOL, SERVED];
const OPTIONS: SqliteOptions = { path: '/data/app.db', tempDir: '/tmp' };

let workDir: string;
const stoppedDir = (): string => join(workDir, 'stopped-containers');

/** The plugin's context with the helper settings the daemon would pass (hostuser image sees the host's sh through /usr). */
function context(mandate: string): DumpContext {
  return { ...sourceContext(mandate), settings: { volumeHelperImage: HOST_IMAGE, volumeHelperBinds: ['/usr:/usr:ro'], stoppedContainersDir: stoppedDir() } };
}

/** APP holds 1000 items: the change keeps 900 of them. */
const change = (container: string): Promise<void> => changeSqlite(container, { keep: 900 });

async function running(container: string): Promise<boolean> {
  return (await docker(host(), ['inspect', '-f', '{{.State.Running}}', container])).trim() === 'true';
}

async function leftovers(container: string): Promise<string[]> {
  const files = (await docker(host(), ['exec', container, 'ls', '-A', '/data'])).split('\n').filter((f) => f.startsWith('.backer-restore-'));
  const helpers = (await docker(host(), ['ps', '-aq', '--filter', `label=backer.helper.container=${container}`])).trim();
  return helpers === '' ? files : [...files, `helper ${helpers}`];
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'bk-sqlite-restore-'));
  await Promise.all(CONTAINERS.map((name) => docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined)));
  await Promise.all([...[APP, OTHER, BROKEN, STOPPED, SERVED].map((name) => startSqliteApp(name)), startSqliteApp(NOTOOL, {}, { path: '/nonexistent' })]);
  await Promise.all([seedSqlite(APP, 1000), seedSqlite(BROKEN, 200), seedSqlite(SERVED, 500)]);
  await docker(host(), ['stop', STOPPED]);
});

afterAll(async () => {
  for (const name of CONTAINERS) await docker(host(), ['rm', '-f', '-v', name]).catch(() => undefined);
});

describe('sqlite restore (plugin against real containers)', () => {
  restoreSuite('sqlite', () => ({
    source: sqliteSource,
    options: OPTIONS,
    container: APP,
    context,
    change: () => change(APP),
    fingerprint: () => sqliteFingerprint(APP),
  }));

  it('records every table with its row count in the dump stats', async () => {
    const { info } = await dumpAll(sqliteSource, OPTIONS, APP, 'stats', context);
    const items = Number(await sqlite(APP, 'SELECT count(*) FROM items;'));
    expect(info.stats).toEqual({ tables: expect.objectContaining({ items, 'odd "name" table': 3 }) as unknown });
  });

  it('a restore that breaks off half-way leaves the old database intact, the container running and nothing behind', async () => {
    const { bytes, info } = await dumpAll(sqliteSource, OPTIONS, APP, 'half', context);
    await change(APP);
    const before = await sqliteFingerprint(APP);
    const request = restoreRequest(APP, original(APP), info);
    await expect(sqliteSource.restore?.(OPTIONS, request, failingInput(bytes, Math.floor(bytes.length / 2)), context('half'))).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    expect(await sqliteFingerprint(APP)).toBe(before);
    expect(await running(APP)).toBe(true);
    expect(await leftovers(APP)).toEqual([]);
  });

  it('a copy that fails PRAGMA integrity_check is refused before the container is stopped', async () => {
    const { bytes, info } = await dumpAll(sqliteSource, OPTIONS, APP, 'corrupt', context);
    const corrupt = Buffer.from(bytes);
    // Pages 2 to 5 (b-tree pages of items) zeroed: the header is fine, the content is not.
    corrupt.fill(0, 4096, 5 * 4096);
    const before = await sqliteFingerprint(APP);
    const startedAt = await docker(host(), ['inspect', '-f', '{{.State.StartedAt}}', APP]);
    const request = restoreRequest(APP, original(APP), info);
    const failure = sqliteSource.restore?.(OPTIONS, request, Readable.from([corrupt]), context('corrupt'));
    await expect(failure).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringMatching(/integrity_check.*\/data\/app\.db was not touched/s) as string });
    expect(await sqliteFingerprint(APP)).toBe(before);
    expect(await docker(host(), ['inspect', '-f', '{{.State.StartedAt}}', APP])).toBe(startedAt);
    expect(await leftovers(APP)).toEqual([]);
  });

  it('a swap helper that cannot run fails the restore, and the stopped container runs again with its old database', async () => {
    const { bytes, info } = await dumpAll(sqliteSource, OPTIONS, APP, 'swapfail', context);
    await sqlite(APP, 'DELETE FROM items WHERE id = 1;');
    const before = await sqliteFingerprint(APP);
    const startedAt = await docker(host(), ['inspect', '-f', '{{.State.StartedAt}}', APP]);
    // Without the /usr bind, the helper image has no sh: the helper fails after the container was stopped.
    const broken = (mandate: string): DumpContext => ({ ...context(mandate), settings: { volumeHelperImage: HOST_IMAGE, volumeHelperBinds: [], stoppedContainersDir: stoppedDir() } });
    const failure = sqliteSource.restore?.(OPTIONS, restoreRequest(APP, original(APP), info), Readable.from([bytes]), broken('swapfail'));
    await expect(failure).rejects.toMatchObject({ code: 'RESTORE_FAILED', message: expect.stringContaining(`container ${APP}`) as string });
    expect(await running(APP)).toBe(true);
    expect(await docker(host(), ['inspect', '-f', '{{.State.StartedAt}}', APP])).not.toBe(startedAt);
    expect(await sqliteFingerprint(APP)).toBe(before);
    expect(await leftovers(APP)).toEqual([]);
    expect(await readdir(stoppedDir())).toEqual([]);
  });

  it('restores into a new path and into another container, whose drill checks then pass, with the stop record cleared', async () => {
    const expected = await sqliteFingerprint(APP);
    const { bytes, info } = await dumpAll(sqliteSource, OPTIONS, APP, 'copy', context);
    const newPath: RestoreDestination = { kind: 'container', container: APP, original: true, scratch: false, path: '/data/copy.db' };
    const plan = await sqliteSource.planRestore?.(OPTIONS, restoreRequest(APP, newPath, info), context('copy'));
    expect(plan?.steps.join('\n')).toMatch(/stop container .*\n.*replace \/data\/copy\.db .*remove \/data\/copy\.db-wal/s);
    await sqliteSource.restore?.(OPTIONS, restoreRequest(APP, newPath, info), Readable.from([bytes]), context('copy'));
    expect(await sqliteFingerprint(APP, '/data/copy.db')).toBe(expected);
    expect(await sqliteFingerprint(APP)).toBe(expected);

    const other: RestoreDestination = { kind: 'container', container: OTHER, original: false, scratch: true };
    const request = restoreRequest(APP, other, info);
    await sqliteSource.planRestore?.(OPTIONS, request, context('other'));
    await sqliteSource.restore?.(OPTIONS, request, Readable.from([bytes]), context('other'));
    expect(await sqliteFingerprint(OTHER)).toBe(expected);
    expect(await running(OTHER)).toBe(true);
    const checks = (await sqliteSource.check?.(OPTIONS, request, context('other'))) ?? [];
    const tables = (await sqlite(APP, "SELECT group_concat(name, '|') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name);")).split('|');
    expect(checks.map((c) => c.check)).toEqual(['PRAGMA integrity_check of /data/app.db', ...tables.map((t) => `table ${t} rows`)]);
    expect(tables).toEqual(expect.arrayContaining(['items', 'odd "name" table']));
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(await readdir(stoppedDir())).toEqual([]);
  });

  it('restores while the app writes in WAL mode: the old -wal/-shm are removed, not replayed into the restored database', async () => {
    const expected = await sqliteFingerprint(APP);
    const { bytes, info } = await dumpAll(sqliteSource, OPTIONS, APP, 'wal', context);
    // A reader that keeps the database open, so that the writers' WAL stays (the last connection would remove it).
    await docker(host(), ['exec', '-d', APP, 'bash', '-c', '(echo "SELECT count(*) FROM items;"; sleep 1000) | sqlite3 /data/app.db']);
    await docker(host(), ['exec', '-d', APP, 'bash', '-c',
      'while :; do sqlite3 -cmd ".timeout 10000" /data/app.db "INSERT INTO items (name) VALUES (hex(randomblob(64)));"; sleep 0.02; done']);
    const hasWal = async (): Promise<boolean> => (await docker(host(), ['exec', APP, 'ls', '/data'])).split('\n').includes('app.db-wal');
    const deadline = Date.now() + 20_000;
    while (((await sqliteFingerprint(APP)) === expected || !(await hasWal())) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await hasWal()).toBe(true);
    await sqliteSource.restore?.(OPTIONS, restoreRequest(APP, original(APP), info), Readable.from([bytes]), context('wal'));
    expect(await running(APP)).toBe(true);
    expect((await docker(host(), ['exec', APP, 'ls', '/data'])).split('\n')).not.toContain('app.db-wal');
    expect(await sqliteFingerprint(APP)).toBe(expected);
    expect(await sqlite(APP, 'PRAGMA integrity_check;')).toBe('ok');
  });

  it('drill checks fail with the table whose rows differ, and on a corrupt database', async () => {
    const { info } = await dumpAll(sqliteSource, OPTIONS, BROKEN, 'drill', context);
    await sqlite(BROKEN, 'DELETE FROM items WHERE id <= 10;');
    const request = restoreRequest(BROKEN, original(BROKEN), info);
    const checks = (await sqliteSource.check?.(OPTIONS, request, context('drill'))) ?? [];
    expect(checks.filter((c) => !c.ok)).toEqual([{ check: 'table items rows', ok: false, expected: 200, actual: 190 }]);

    await docker(host(), ['exec', BROKEN, 'sh', '-c', 'rm -f /data/app.db-wal /data/app.db-shm; dd if=/dev/zero of=/data/app.db bs=4096 seek=1 count=2 conv=notrunc 2>/dev/null']);
    const corrupt = (await sqliteSource.check?.(OPTIONS, request, context('drill'))) ?? [];
    expect(corrupt).toHaveLength(1);
    expect(corrupt[0]).toMatchObject({ check: 'PRAGMA integrity_check of /data/app.db', ok: false, expected: 'ok' });
  });

  it('planRestore refuses, before anything is touched, what cannot work', async () => {
    const { info } = await dumpAll(sqliteSource, OPTIONS, APP, 'plan', context);
    const plan = (to: RestoreDestination): Promise<unknown> => sqliteSource.planRestore?.(OPTIONS, restoreRequest(APP, to, info), context('plan')) ?? Promise.resolve();
    const at = (container: string, path?: string): RestoreDestination => ({ kind: 'container', container, original: false, scratch: false, ...(path === undefined ? {} : { path }) });
    await expect(plan(at(STOPPED))).rejects.toMatchObject({ code: 'CONTAINER_NOT_RUNNING', message: expect.stringContaining(STOPPED) as string });
    await expect(plan(at(NOTOOL))).rejects.toMatchObject({ code: 'TOOL_MISSING', message: expect.stringContaining('no working sqlite3') as string });
    await expect(plan(at(APP, '/data/missing/app.db'))).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringContaining('directory /data/missing of the database does not exist') as string });
    await expect(plan(at(APP, '/tmp/app.db'))).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringContaining('/tmp in container') as string });
    await expect(plan(at(APP, "/data/it's.db"))).rejects.toMatchObject({ code: 'RESTORE_REFUSED' });
    await expect(plan({ kind: 'file', path: '/tmp/x' })).rejects.toMatchObject({ code: 'RESTORE_REFUSED', message: expect.stringContaining('restore into a container') as string });
    const noHelper = { ...context('plan'), settings: { volumeHelperImage: `absent-${ID}:latest`, volumeHelperBinds: [], stoppedContainersDir: stoppedDir() } };
    await expect(sqliteSource.planRestore?.(OPTIONS, restoreRequest(APP, original(APP), info), noHelper)).rejects.toMatchObject({ code: 'TOOL_MISSING', message: expect.stringContaining(`absent-${ID}`) as string });
    expect(await running(APP)).toBe(true);
  });
});

describe('sqlite restore through a real daemon process', () => {
  it('restores --to original after a safety backup, refuses a stopped or tool-less destination, passes a drill, and keeps answering', async () => {
    const mandate = `sqlr-${ID}`;
    const yaml = `${VOLUME_HELPER_YAML}mandates:\n  ${mandate}:\n    container: ${SERVED}\n    type: sqlite\n    interval: "0 0 29 2 *"\n    target: local\n    sqlite:\n      path: /data/app.db\n`;
    const env = await createTestEnv(`sqlr${ID}`, yaml);
    const socket = join(env.dir, 'data', 'backer.sock');
    const daemon = spawnDaemon(env.configPath);
    const run = async <T>(args: string[]): Promise<{ code: number; body: T }> => {
      const r = await cli([...args, '--config', env.configPath, '--json'], testProcessEnv());
      return { code: r.code, body: JSON.parse(r.stdout || 'null') as T };
    };
    try {
      await waitForHealth(daemon, socket, 60_000);
      const original = await sqliteFingerprint(SERVED);
      const backup = await run<Job>(['backup', mandate, '--wait']);
      expect(backup.code, JSON.stringify(backup.body)).toBe(0);
      const manifests = (await run<{ backups: Manifest[] }>(['backups', 'list', '--mandate', mandate])).body.backups;
      expect(manifests[0]?.source.stats).toEqual({ tables: { items: 500, 'odd "name" table': 3 } });
      await change(SERVED);
      const restored = await run<Job<RestoreResult>>(['restore', mandate, '--yes', '--wait']);
      expect(restored.code, JSON.stringify(restored.body)).toBe(0);
      expect(restored.body.result?.safety_backup).toBeTruthy();
      expect(await sqliteFingerprint(SERVED)).toBe(original);
      expect(await running(SERVED)).toBe(true);

      const stopped = await run<Job<RestoreResult>>(['restore', mandate, '--to', `container:${STOPPED}`, '--wait']);
      expect(stopped.code).toBe(5);
      expect(stopped.body.error).toMatchObject({ code: 'CONTAINER_NOT_RUNNING', message: expect.stringContaining(STOPPED) as string });
      const notool = await run<Job<RestoreResult>>(['restore', mandate, '--to', `container:${NOTOOL}`, '--wait']);
      expect(notool.code).toBe(5);
      expect(notool.body.error).toMatchObject({ code: 'TOOL_MISSING', message: expect.stringContaining('no working sqlite3') as string });
      const file = await run<Job<RestoreResult>>(['restore', mandate, '--to', 'file:/tmp/x', '--wait']);
      expect(file.code).toBe(5);
      expect(file.body.error?.message).toContain('sqlite backups restore into a container');

      const drill = await run<{ jobs: AnyJob[] }>(['verify', mandate, '--level', 'drill']);
      expect(drill.code, JSON.stringify(drill.body)).toBe(0);
      const checks = (drill.body.jobs[0]?.result as VerifyResult | undefined)?.verifications[0]?.checks ?? [];
      expect(checks.map((c) => c.check)).toEqual(expect.arrayContaining(['PRAGMA integrity_check of /data/app.db', 'table items rows']));
      expect((await callApi<{ status: string }>(socket, 'GET', '/v1/health')).status).toBe('ok');
    } finally {
      await daemon.stop();
    }
  });
});
