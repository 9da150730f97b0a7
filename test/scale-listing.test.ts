/**
 * What issue 11's 500 containers changed in the state and the mandate listing (benchmark 8 in
 * bench/containers.ts measures the times; nothing here is timed):
 * - the SQLite job store answers recentBackups() from memory until a job is written (save, prune);
 * - the status monitor's `mandate_seen` rows of new mandates and their announced statuses are
 *   written in one transaction each (counted in WAL frames of the real state.db), not one per mandate;
 * - the scheduler's version moves with updates (GET /v1/mandates keys its cache on it);
 * - GET /v1/mandates of an in-process daemon (Docker off, static `files` mandates) keeps its text
 *   between requests, yet shows a backup that just ran and scrubs a secret registered after it
 *   was kept.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { loadConfigOrThrow } from '../src/config/load.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import { labelsToRaw, parseMandate } from '../src/mandates/parse.js';
import type { MandateSpec } from '../src/mandates/types.js';
import { sources } from '../src/sources/index.js';
import type { AnyJob } from '../src/queue/types.js';
import { createScheduler } from '../src/scheduler/scheduler.js';
import { openStateDb, type StateDb } from '../src/state/db.js';
import { createSqliteJobStore } from '../src/state/job-store.js';
import { createSqliteSeenStore } from '../src/status/seen-store.js';
import { createTestEnv, filesMandateYaml, testProcessEnv } from './helpers/env.js';
import { finished, makeJob } from './state/store-suite.js';

const silent = pino({ level: 'silent' });
const openState = async (): Promise<StateDb> => openStateDb(await mkdtemp(join(tmpdir(), 'bk-scale-state-')), silent);

/**
 * Frames in the WAL since the last truncating checkpoint (with automatic checkpoints off): one
 * commit writes each page it changed once; 500 commits of one row each write over 1,000 frames.
 */
const walFrames = (state: StateDb): number => (state.db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0]?.log ?? NaN;
const truncateWal = (state: StateDb): void => void state.db.pragma('wal_checkpoint(TRUNCATE)');

describe('the SQLite job store’s recentBackups()', () => {
  it('answers from memory until a job is saved or the history pruned', async () => {
    const state = await openState();
    const store = createSqliteJobStore(state);
    const at = '2026-01-01T00:00:00.000Z';
    store.save(finished(makeJob({ mandate: 'alpha', created_at: at }), 'succeeded', at, 1000));
    const first = store.recentBackups(['alpha', 'beta'], 30);
    expect(first.map((r) => [r.mandate, r.raw_sizes])).toEqual([['alpha', [1000]], ['beta', []]]);
    expect(store.recentBackups(['alpha', 'beta'], 30)).toBe(first);
    // Another question is asked again.
    expect(store.recentBackups(['beta'], 30).map((r) => r.mandate)).toEqual(['beta']);

    const later = '2026-01-02T00:00:00.000Z';
    store.save(finished(makeJob({ mandate: 'beta', created_at: later }), 'succeeded', later, 1000));
    const second = store.recentBackups(['alpha', 'beta'], 30);
    expect(second).not.toBe(first);
    expect(second.map((r) => [r.mandate, r.raw_sizes])).toEqual([['alpha', [1000]], ['beta', [1000]]]);

    // A queued job changes nothing it shows, but is a write: the answer is read again, equal.
    store.save(makeJob({ mandate: 'alpha' }));
    const third = store.recentBackups(['alpha', 'beta'], 30);
    expect(third).not.toBe(second);
    expect(third).toEqual(second);

    expect(store.prune(new Date('2026-01-01T12:00:00.000Z'))).toBe(1);
    expect(store.recentBackups(['alpha', 'beta'], 30).map((r) => [r.mandate, r.newest?.created_at ?? null])).toEqual([['alpha', null], ['beta', later]]);
    state.close();
  });
});

describe('the status monitor’s seen store (state.db)', () => {
  it('records 500 new mandates and their statuses in one transaction each, keeping known rows', async () => {
    const state = await openState();
    state.db.pragma('wal_autocheckpoint = 0');
    const seen = createSqliteSeenStore(state);
    const t0 = new Date('2026-01-01T00:00:00.000Z');
    seen.touch('m-000', t0);
    const names = Array.from({ length: 500 }, (_, i) => `m-${String(i).padStart(3, '0')}`);
    const t1 = new Date('2026-01-02T00:00:00.000Z');

    truncateWal(state);
    const rows = seen.touchAll(names, t1);
    const touchFrames = walFrames(state);
    expect(rows.map((r) => r.mandate)).toEqual(names);
    expect(rows[0]?.first_seen_at).toBe(t0.toISOString());
    expect(rows.slice(1).every((r) => r.first_seen_at === t1.toISOString() && r.last_status === null)).toBe(true);
    // One commit of a few pages; one commit per mandate would write at least 500 frames.
    expect(touchFrames).toBeGreaterThan(0);
    expect(touchFrames).toBeLessThan(50);

    truncateWal(state);
    seen.setStatuses(names.map((mandate) => ({ mandate, status: 'never_succeeded' as const })), t1);
    const statusFrames = walFrames(state);
    expect(statusFrames).toBeGreaterThan(0);
    expect(statusFrames).toBeLessThan(50);
    expect(seen.all().every((r) => r.last_status === 'never_succeeded' && r.status_changed_at === t1.toISOString())).toBe(true);
    state.close();
  });
});

describe('mandate parses with cron verdicts kept per expression', () => {
  it('report a bad or never-firing interval on every container that has it, and accept good ones', async () => {
    const env = await createTestEnv('scale-cron', '', '', { docker: false });
    const config = await loadConfigOrThrow(env.configPath, testProcessEnv());
    const parse = (name: string, interval: string) =>
      parseMandate({
        name,
        raw: labelsToRaw({ 'backer.enabled': 'true', 'backer.type': 'sqlite', 'backer.sqlite.path': '/data/app.db', 'backer.interval': interval }),
        origin: 'labels',
        container: name,
        containerEnv: {},
        describe: (key) => `container ${name} label backer.${key}`,
        config,
        sources,
        invalidRefs: undefined,
      });
    for (const name of ['c1', 'c2', 'c3']) {
      expect(parse(name, '0 0 29 2 *').mandate?.interval).toBe('0 0 29 2 *');
      expect(parse(name, '0 0 30 2 *').problems).toEqual([{ where: `container ${name} label backer.interval`, message: '"0 0 30 2 *" never fires' }]);
      expect(parse(name, '61 * * * *').problems.map((p) => p.where)).toEqual([`container ${name} label backer.interval`]);
      expect(parse(name, '61 * * * *').mandate).toBeUndefined();
    }
  });
});

describe('the scheduler’s version', () => {
  it('moves with every update, not with questions', async () => {
    const scheduler = createScheduler({ trigger: () => undefined, logger: silent, paused: true });
    const spec = (name: string, interval: string): MandateSpec => ({ name, interval, verify: { interval: null, level: 'decode' } }) as MandateSpec;
    const v0 = scheduler.version();
    scheduler.update([spec('a', '0 0 29 2 *'), spec('b', '0 0 29 2 *'), spec('c', '15 4 29 2 *')]);
    const v1 = scheduler.version();
    expect(v1).not.toBe(v0);
    expect(scheduler.nextRun('a')?.toISOString()).toMatch(/-02-29T00:00:00\.000Z$/);
    expect(scheduler.nextRun('b')).toEqual(scheduler.nextRun('a'));
    expect(scheduler.nextRun('c')?.toISOString()).toMatch(/-02-29T04:15:00\.000Z$/);
    expect(scheduler.version()).toBe(v1);
    scheduler.update([spec('a', '0 0 29 2 *'), spec('b', '30 1 29 2 *')]);
    expect(scheduler.version()).not.toBe(v1);
    expect(scheduler.nextRun('b')?.toISOString()).toMatch(/-02-29T01:30:00\.000Z$/);
    expect(scheduler.nextRun('c')).toBeNull();
    await scheduler.close();
  });
});

describe('GET /v1/mandates of an in-process daemon with 50 static mandates', () => {
  const names = Array.from({ length: 50 }, (_, i) => `scale-list-${String(i).padStart(2, '0')}`);
  let daemon: Daemon;
  let app: ReturnType<typeof createApi>;

  beforeAll(async () => {
    const files = await mkdtemp(join(tmpdir(), 'bk-scale-files-'));
    await writeFile(join(files, 'data.txt'), 'scale listing');
    const env = await createTestEnv('scale-list', `mandates:\n${names.map((n) => filesMandateYaml(n, 'SCALE_LIST_DIR', { target: 'local' })).join('')}`, '', { docker: false });
    const config = await loadConfigOrThrow(env.configPath, { ...testProcessEnv(), SCALE_LIST_DIR: files });
    daemon = createDaemon({ config, configFile: env.configPath, logger: silent, schedulesPaused: true });
    await daemon.start();
    app = createApi({ services: daemon.services, queue: daemon.queue, scheduler: daemon.scheduler, status: daemon.status });
  }, 60_000);

  afterAll(async () => {
    await daemon?.close();
  });

  interface Listed {
    name: string;
    status?: string;
    next_run: string | null;
    last_backup: { name: string } | null;
  }
  const listing = async (): Promise<{ text: string; mandates: Listed[] }> => {
    const res = await app.request('/v1/mandates');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const text = await res.text();
    return { text, mandates: (JSON.parse(text) as { mandates: Listed[] }).mandates };
  };

  it('keeps its text between requests, shows a backup that just ran, scrubs a secret added later', async () => {
    const first = await listing();
    expect(first.mandates.map((m) => m.name)).toEqual(names);
    expect(first.mandates.every((m) => m.status === 'never_succeeded' && m.next_run !== null && m.last_backup === null)).toBe(true);
    expect((await listing()).text).toBe(first.text);

    const job = daemon.queue.enqueue('scale-list-07', 'api');
    const done: AnyJob = await daemon.queue.wait(job.id, AbortSignal.timeout(60_000));
    expect(done.state).toBe('succeeded');
    const after = await listing();
    const ran = after.mandates.find((m) => m.name === 'scale-list-07');
    expect(ran?.status).toBe('ok');
    expect(ran?.last_backup?.name).toBe((done.result as { name: string }).name);
    expect(after.mandates.filter((m) => m.name !== 'scale-list-07').every((m) => m.last_backup === null)).toBe(true);

    daemon.services.secrets.add('scale-list-42');
    const scrubbed = await listing();
    expect(scrubbed.text).not.toContain('scale-list-42');
    expect(scrubbed.mandates.map((m) => m.name)).toContain('[REDACTED]');
  }, 90_000);
});
