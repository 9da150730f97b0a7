import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { capture } from '../helpers/cli.js';
import { BackerError } from '../../src/errors.js';
import { SCHEMA_VERSION } from '../../src/state/migrations.js';
import { openStateDb } from '../../src/state/db.js';
import { createSqliteJobStore } from '../../src/state/job-store.js';
import { makeJob } from './store-suite.js';

const silent = pino({ level: 'silent' });
const INSERT_LOOP = fileURLToPath(new URL('./fixtures/insert-loop.ts', import.meta.url));
const OPEN_DB = fileURLToPath(new URL('./fixtures/open-db.ts', import.meta.url));
const newDir = (): string => join(mkdtempSync(join(tmpdir(), 'bk-statedb-')), 'data');

function openError(dir: string): BackerError {
  try {
    openStateDb(dir, silent).close();
  } catch (err) {
    if (err instanceof BackerError) return err;
    throw err;
  }
  throw new Error('openStateDb accepted the file');
}

/** A state.db holding `n` jobs, closed (checkpointed). */
function dbWithJobs(dir: string, n: number): string[] {
  const state = openStateDb(dir, silent);
  const store = createSqliteJobStore(state);
  const jobs = Array.from({ length: n }, () => makeJob({ params: { pad: 'p'.repeat(2000) } }));
  for (const job of jobs) store.save(job);
  state.close();
  return jobs.map((j) => j.id);
}

describe('state database file', () => {
  it('creates a fresh database at schema v1 in WAL mode, file 0600 in a 0700 dir', () => {
    const dir = newDir();
    const state = openStateDb(dir, silent);
    expect(state.path).toBe(join(dir, 'state.db'));
    expect(state.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(state.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(state.db.pragma('foreign_keys', { simple: true })).toBe(1);
    const tables = state.db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['jobs', 'job_events', 'mandate_stats', 'schedule_fires', 'meta', 'mandate_seen']));
    expect(statSync(state.path).mode & 0o777).toBe(0o600);
    expect(statSync(`${state.path}-wal`).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    state.close();
    state.close();
  });

  it('keeps jobs when opened again, and migrates nothing twice', () => {
    const dir = newDir();
    const ids = dbWithJobs(dir, 3);
    const state = openStateDb(dir, silent);
    const store = createSqliteJobStore(state);
    expect(store.list().jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
    expect(state.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    state.close();
  });

  it('is created and migrated once when several processes open a new file at the same time', async () => {
    const dir = newDir();
    const runs = await Promise.all(Array.from({ length: 4 }, () => capture(process.execPath, ['--import', 'tsx', OPEN_DB, dir])));
    for (const r of runs) expect(r, r.stderr).toMatchObject({ code: 0, stdout: `${SCHEMA_VERSION}\n` });
    const state = openStateDb(dir, silent);
    expect(state.db.pragma('quick_check', { simple: true })).toBe('ok');
    state.close();
  });

  it('refuses a newer schema with a clear message and leaves the file as it was', () => {
    const dir = newDir();
    dbWithJobs(dir, 1);
    const path = join(dir, 'state.db');
    const raw = new Database(path);
    raw.pragma('user_version = 7');
    raw.close();
    const err = openError(dir);
    expect(err.code).toBe('STATE_INVALID');
    expect(err.message).toBe(
      `state.db at ${path} has schema version 7; this Backer knows up to ${SCHEMA_VERSION}: run the newer Backer, or move the file away (\`backer state reset\`)`,
    );
    const after = new Database(path, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(7);
    after.close();
  });

  it('refuses a file of random bytes, naming the path and `backer state reset`', () => {
    const dir = newDir();
    dbWithJobs(dir, 0);
    const path = join(dir, 'state.db');
    writeFileSync(path, randomBytes(64 * 1024));
    const err = openError(dir);
    expect(err.code).toBe('STATE_INVALID');
    expect(err.message).toContain(`state.db at ${path} is not a readable Backer state database`);
    expect(err.message).toContain('backer state reset');
  });

  it('refuses a truncated database, naming the path and `backer state reset`', () => {
    const dir = newDir();
    dbWithJobs(dir, 200);
    const path = join(dir, 'state.db');
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(100 * 1024);
    truncateSync(path, Math.floor(size / 2));
    const err = openError(dir);
    expect(err.code).toBe('STATE_INVALID');
    expect(err.message).toContain(`state.db at ${path}`);
    expect(err.message).toContain('backer state reset');
    expect(readFileSync(path).length).toBe(Math.floor(size / 2));
  });
});

/** Runs the insert loop until it reported at least `min` commits, then kill -9: the ids it reported. */
async function killMidWrite(dir: string, min: number): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', INSERT_LOOP, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('close', (code, signal) => resolve(signal ?? code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > min + 2) resolve();
    });
    child.on('close', () => reject(new Error(`insert loop ended by itself: ${err}`)));
  });
  // A little later, so that the kill lands at a random point of a write.
  await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 50)));
  child.kill('SIGKILL');
  expect(await closed).toBe('SIGKILL');
  // Only complete lines: a line cut by the kill was not reported.
  return out.split('\n').slice(1, -1);
}

describe('state database under kill -9', () => {
  it('opens after 5 kills mid-write, passes quick_check and holds every reported commit', async () => {
    const dir = newDir();
    const reported: string[] = [];
    for (let round = 0; round < 5; round++) {
      reported.push(...(await killMidWrite(dir, 100 + round * 50)));
      const state = openStateDb(dir, silent);
      expect(state.db.pragma('quick_check', { simple: true })).toBe('ok');
      const have = new Set(state.db.prepare<[], { id: string }>('SELECT id FROM jobs').all().map((r) => r.id));
      const missing = reported.filter((id) => !have.has(id));
      expect(missing).toEqual([]);
      const events = state.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM job_events').get()?.n ?? 0;
      expect(events).toBeGreaterThanOrEqual(reported.length);
      state.close();
    }
    expect(reported.length).toBeGreaterThanOrEqual(5 * 100);
  });
});
