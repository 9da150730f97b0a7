/**
 * `backer state reset` and `backer state show` as real CLI processes: the old state.db is kept
 * under a new name, the fresh one's mandate stats come from the manifests on the targets, and a
 * live daemon on the data_dir makes the reset refuse (and keeps answering).
 */
import { SCHEMA_VERSION } from '../../src/state/migrations.js';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../../src/cli/client.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { openStateDb } from '../../src/state/db.js';
import { createSqliteJobStore } from '../../src/state/job-store.js';
import { cli } from '../helpers/cli.js';
import { spawnDaemon, waitForHealth } from '../helpers/daemon-proc.js';
import { createTestEnv, filesMandateYaml, type TestEnv } from '../helpers/env.js';
import { finished, makeJob } from './store-suite.js';

const MANDATE = 'state-reset-files';
const silent = pino({ level: 'silent' });
let env: TestEnv;
let filesDir: string;
let dataDir: string;

const run = (args: string[]): ReturnType<typeof cli> => cli([...args, '--config', env.configPath], { TEST_STATE_FILES: filesDir });

interface Show {
  path: string;
  exists: boolean;
  schema_version: number | null;
  size_bytes: number;
  jobs: Record<string, number>;
  lock: { pid: number; alive: boolean } | null;
}

async function show(): Promise<Show> {
  const r = await run(['state', 'show', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Show;
}

beforeAll(async () => {
  env = await createTestEnv('state-reset', `mandates:\n${filesMandateYaml(MANDATE, 'TEST_STATE_FILES', { target: '[local, s3]' })}`);
  filesDir = join(env.dir, 'files');
  dataDir = join(env.dir, 'data');
  await mkdir(filesDir, { recursive: true });
  await writeFile(join(filesDir, 'a.txt'), 'state reset test data\n'.repeat(1000));
  for (let i = 0; i < 2; i++) {
    const r = await run(['backup', MANDATE, '--once']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }
  // A state.db with history and wrong stats, as a reset would find it.
  const state = openStateDb(dataDir, silent);
  const store = createSqliteJobStore(state);
  for (let i = 0; i < 5; i++) store.save(finished(makeJob({ mandate: MANDATE }), 'failed', '2026-01-01T00:00:00.000Z', 10));
  state.close();
});

describe('backer state reset', () => {
  it('without --yes says what it would do, exits 1 and moves nothing', async () => {
    const r = await run(['state', 'reset']);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.stdout).toContain(`would move ${join(dataDir, 'state.db')}`);
    expect(r.stdout).toContain('--yes');
    expect((await readdir(dataDir)).filter((f) => f.includes('.reset-'))).toEqual([]);
    expect((await show()).jobs).toEqual({ failed: 5 });
  });

  it('with --yes keeps the old file as state.db.reset-*, starts a fresh one and rebuilds the stats from the manifests', async () => {
    const r = await run(['state', 'reset', '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { reset: boolean; moved: { from: string; to: string }[] };
    expect(out.reset).toBe(true);
    const kept = (await readdir(dataDir)).filter((f) => /^state\.db\.reset-\d{8}T\d{6}Z$/.test(f));
    expect(kept).toHaveLength(1);
    expect(out.moved.map((m) => m.to)).toContain(join(dataDir, kept[0] ?? ''));

    // The old database is intact under its new name.
    const old = new Database(join(dataDir, kept[0] ?? ''), { readonly: true });
    expect(old.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM jobs').get()?.n).toBe(5);
    expect(old.prepare<[], { failures: number }>('SELECT failures FROM mandate_stats').get()?.failures).toBe(5);
    old.close();
    const s = await show();
    expect(s).toMatchObject({ path: join(dataDir, 'state.db'), exists: true, schema_version: SCHEMA_VERSION, jobs: {}, lock: null });
    expect(s.size_bytes).toBeGreaterThan(0);

    const state = openStateDb(dataDir, silent);
    const stats = createSqliteJobStore(state).mandateStats(MANDATE);
    state.close();
    const list = await run(['backups', 'list', '--mandate', MANDATE, '--json']);
    const backups = (JSON.parse(list.stdout) as { backups: { uuid: string; completed_at: string; artifact: { size: number }; steps: { size: number }[] }[] }).backups;
    expect(backups).toHaveLength(4);
    const newest = backups.reduce((a, b) => (b.completed_at > a.completed_at ? b : a));
    expect(stats).toMatchObject({
      mandate: MANDATE,
      successes: 2,
      failures: 0,
      last_success_at: newest.completed_at,
      last_raw_bytes: newest.steps[0]?.size,
      last_stored_bytes: newest.artifact.size,
    });
  });

  it('is refused with STATE_LOCKED while a daemon uses the data_dir, and the daemon keeps answering', async () => {
    const socket = join(dataDir, 'backer.sock');
    const daemon = spawnDaemon(env.configPath, { env: { TEST_STATE_FILES: filesDir } });
    try {
      await waitForHealth(daemon, socket);
      const before = await readdir(dataDir);
      const r = await run(['state', 'reset', '--yes']);
      expect(r.code, r.stdout + r.stderr).toBe(EXIT.REFUSED);
      expect(r.stderr).toContain(`another Backer daemon (pid ${daemon.child.pid}) uses data_dir ${dataDir}`);
      const json = await run(['state', 'reset', '--yes', '--json']);
      expect(json.code).toBe(EXIT.REFUSED);
      expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'STATE_LOCKED' } });
      expect((await readdir(dataDir)).filter((f) => f.includes('.reset-'))).toEqual(before.filter((f) => f.includes('.reset-')));
      expect((await show()).lock).toMatchObject({ pid: daemon.child.pid, alive: true });
      expect(await callApi<{ status: string }>(socket, 'GET', '/v1/health')).toMatchObject({ status: 'ok' });
      const mandates = await run(['mandates', 'list', '--json']);
      expect(mandates.code, mandates.stderr).toBe(0);
      expect(mandates.stdout).toContain(MANDATE);
    } finally {
      await daemon.stop();
    }
    // Once the daemon is gone the reset is allowed again (here: only asked, without --yes).
    expect((await run(['state', 'reset'])).code).toBe(EXIT.FAILED);
    expect(existsSync(join(dataDir, 'state.db'))).toBe(true);
  });
});
