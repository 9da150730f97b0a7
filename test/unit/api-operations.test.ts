/**
 * The operations API (src/api/operations.ts) over an in-memory queue whose store is filled with
 * jobs of known kinds, states and times: `GET /v1/jobs` filters, paging and totals, `GET
 * /v1/jobs/{id}` with its history, `GET /v1/queue/stats`, `GET /v1/mandates/{name}`, and a 400
 * naming the parameter for every bad query.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createApi } from '../../src/api/app.js';
import type { Snapshot } from '../../src/discovery/snapshot.js';
import { BackerError } from '../../src/errors.js';
import { SecretRegistry } from '../../src/logging/logger.js';
import type { MandateSpec } from '../../src/mandates/types.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import { createMemoryJobStore } from '../../src/queue/memory-store.js';
import { createQueue, type Queue } from '../../src/queue/queue.js';
import type { AnyJob, JobEvent, JobKind, JobState, JobStore, MandateStats } from '../../src/queue/types.js';
import { staticDiscovery } from '../helpers/discovery.js';
import type { Target } from '../../src/targets/types.js';

const SECRET = 'ops-secret-b7c1';

const mandate = (name: string, extra: Partial<MandateSpec> = {}): MandateSpec => ({
  name,
  origin: 'config',
  source: { type: 'files', container: null, options: { password: SECRET } },
  interval: '0 0 * * *',
  targets: ['local'],
  middleware: ['gz'],
  retention: 7,
  priority: 5,
  name_pattern: '<DATE>-<MANDATE>',
  verify: { interval: '0 5 * * 0', level: 'hash' },
  alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null },
  ...extra,
});

const snapshot: Snapshot = {
  mandates: [mandate('alpha'), mandate('beta'), mandate('gamma', { retention: 0, retention_rules: { keep_daily: 7, keep_within: '30d' }, priority: 8 })],
  problems: [],
  docker_error: null,
  skipped: [{ name: 'broken', origin: 'labels', container: 'broken', problems: [{ where: 'container broken label backer.interval', message: 'not a cron expression' }] }],
};

const NEXT_RUN = new Date('2030-01-01T00:00:00.000Z');
const NEXT_VERIFY = new Date('2030-01-06T05:00:00.000Z');
const BASE = Date.parse('2026-01-01T00:00:00.000Z');

function job(n: number, mandateName: string, kind: JobKind, state: JobState, extra: Partial<AnyJob> = {}): AnyJob {
  const created = new Date(BASE + n * 60_000).toISOString();
  const ended = state !== 'queued' && state !== 'running';
  return {
    id: `job-${String(n).padStart(2, '0')}`,
    kind,
    mandate: mandateName,
    params: null,
    progress: null,
    trigger: 'api',
    state,
    priority: 5,
    attempts: state === 'queued' ? 0 : 1,
    not_before: null,
    wait_ms: state === 'queued' ? null : 1000,
    created_at: created,
    started_at: state === 'queued' ? null : new Date(BASE + n * 60_000 + 1000).toISOString(),
    finished_at: ended ? new Date(BASE + n * 60_000 + 5000).toISOString() : null,
    error: state === 'failed' ? { code: 'DUMP_FAILED', message: `tar: /missing: No such file or directory (${SECRET})` } : null,
    result: null,
    ...extra,
  };
}

const result = (raw: number, stored: number): BackupResult => ({
  uuid: '3b241101-e2bb-4255-8caf-4136c566a962',
  name: 'backup-1',
  status: 'succeeded',
  error: null,
  raw_size: raw,
  targets: [
    {
      target: 'local',
      status: 'succeeded',
      artifact_key: 'alpha/backup-1.tar.gz',
      manifest_key: 'alpha/backup-1.manifest.json',
      size: stored,
      error: null,
      retention_deleted: [],
      retention_error: null,
      retryable: false,
    },
  ],
  retryable: false,
});

/** 12 jobs, one a minute: alpha and beta, every kind, several states. Oldest first. */
function history(): AnyJob[] {
  return [
    job(1, 'alpha', 'backup', 'succeeded', { result: result(4096, 1024) }),
    job(2, 'beta', 'backup', 'failed'),
    job(3, 'alpha', 'verify', 'succeeded'),
    job(4, 'alpha', 'backup', 'failed'),
    job(5, 'beta', 'restore', 'interrupted'),
    job(6, 'alpha', 'backup', 'succeeded', { result: result(8192, 2048) }),
    job(7, 'beta', 'backup', 'succeeded', { result: result(100, 50) }),
    job(8, 'alpha', 'drill', 'cancelled'),
    job(9, 'alpha', 'backup', 'succeeded', { result: result(8192, 2048) }),
    job(10, 'beta', 'verify', 'failed'),
    job(11, 'alpha', 'backup', 'succeeded', { result: result(16384, 4096) }),
    job(12, 'beta', 'backup', 'queued'),
  ];
}

const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function setup(): { app: ReturnType<typeof createApi>; queue: Queue; store: JobStore } {
  const store = createMemoryJobStore();
  for (const j of history()) store.save(j);
  const events: JobEvent[] = [
    { at: '2026-01-01T00:04:01.000Z', attempt: 1, type: 'started', message: null },
    { at: '2026-01-01T00:04:03.000Z', attempt: 1, type: 'retrying', message: 'S3 503, again in 30s' },
    { at: '2026-01-01T00:04:33.000Z', attempt: 2, type: 'started', message: null },
    { at: '2026-01-01T00:04:35.000Z', attempt: 2, type: 'failed', message: `tar: /missing: No such file or directory (${SECRET})` },
  ];
  for (const e of events) store.addEvent('job-04', e);
  // Never started: the jobs stay as the store holds them.
  const queue = createQueue({ concurrency: 1, logger: pino({ level: 'silent' }), store, run: () => Promise.reject(new Error('unused')) });
  queues.push(queue);
  const secrets = new SecretRegistry();
  secrets.add(SECRET);
  const discovery = staticDiscovery(snapshot);
  const byName = (name: string): MandateSpec => {
    const found = snapshot.mandates.find((m) => m.name === name);
    if (found) return found;
    if (name === 'broken') throw new BackerError('MANDATE_SKIPPED', 'mandate broken exists but is skipped: container broken label backer.interval: not a cron expression', { component: 'test' });
    throw new BackerError('MANDATE_NOT_FOUND', `no mandate named ${name}`, { component: 'test' });
  };
  const app = createApi({
    services: { discovery, mandate: byName, targets: new Map<string, Target>(), secrets },
    queue,
    scheduler: { nextRun: (name, kind) => (name !== 'alpha' ? null : kind === 'verify' ? NEXT_VERIFY : NEXT_RUN) },
  });
  return { app, queue, store };
}

interface Page {
  jobs: AnyJob[];
  total: number;
  limit: number;
  offset: number;
}

async function get<T>(app: ReturnType<typeof createApi>, path: string, status = 200): Promise<T> {
  const res = await app.request(path);
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(text).not.toContain(SECRET);
  return JSON.parse(text) as T;
}

const ids = (page: Page): string[] => page.jobs.map((j) => j.id);
const numbers = (...n: number[]): string[] => n.map((i) => `job-${String(i).padStart(2, '0')}`);

describe('GET /v1/jobs', () => {
  it('pages every job newest first with the total, 50 by default', async () => {
    const { app } = setup();
    const page = await get<Page>(app, '/v1/jobs');
    expect(page).toMatchObject({ total: 12, limit: 50, offset: 0 });
    expect(ids(page)).toEqual(numbers(12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1));
  });

  it('pages with limit and offset; the total counts every match', async () => {
    const { app } = setup();
    expect(ids(await get<Page>(app, '/v1/jobs?limit=5'))).toEqual(numbers(12, 11, 10, 9, 8));
    const second = await get<Page>(app, '/v1/jobs?limit=5&offset=5');
    expect(second).toMatchObject({ total: 12, limit: 5, offset: 5 });
    expect(ids(second)).toEqual(numbers(7, 6, 5, 4, 3));
    expect(ids(await get<Page>(app, '/v1/jobs?limit=5&offset=10'))).toEqual(numbers(2, 1));
    const past = await get<Page>(app, '/v1/jobs?offset=12');
    expect(past).toMatchObject({ jobs: [], total: 12, offset: 12 });
    expect((await get<Page>(app, '/v1/jobs?limit=500')).jobs).toHaveLength(12);
  });

  it('filters by mandate, kind and state, alone and together', async () => {
    const { app } = setup();
    expect(ids(await get<Page>(app, '/v1/jobs?mandate=beta'))).toEqual(numbers(12, 10, 7, 5, 2));
    expect(ids(await get<Page>(app, '/v1/jobs?kind=verify'))).toEqual(numbers(10, 3));
    expect(ids(await get<Page>(app, '/v1/jobs?state=failed'))).toEqual(numbers(10, 4, 2));
    expect(ids(await get<Page>(app, '/v1/jobs?state=interrupted'))).toEqual(numbers(5));
    const combined = await get<Page>(app, '/v1/jobs?mandate=alpha&kind=backup&state=succeeded&limit=2&offset=1');
    expect(combined).toMatchObject({ total: 4, limit: 2, offset: 1 });
    expect(ids(combined)).toEqual(numbers(9, 6));
    expect(await get<Page>(app, '/v1/jobs?mandate=nobody')).toEqual({ jobs: [], total: 0, limit: 50, offset: 0 });
  });

  it('scrubs registered secrets from the jobs it lists', async () => {
    const { app } = setup();
    const page = await get<Page>(app, '/v1/jobs?state=failed&mandate=alpha');
    expect(page.jobs[0]?.error).toEqual({ code: 'DUMP_FAILED', message: 'tar: /missing: No such file or directory ([REDACTED])' });
  });

  it.each([
    ['limit=0', 'limit', 'must be at least 1'],
    ['limit=501', 'limit', 'must be at most 500'],
    ['limit=ten', 'limit', 'must be a whole number'],
    ['limit=1.5', 'limit', 'must be a whole number'],
    ['limit=', 'limit', 'must be a whole number'],
    ['offset=-1', 'offset', 'must be a whole number'],
    ['kind=snapshot', 'kind', 'must be one of backup, restore, verify, drill'],
    ['state=done', 'state', 'must be one of queued, running, succeeded, failed, cancelled, interrupted'],
    ['mandate=', 'mandate', 'must not be empty'],
  ])('?%s is 400 naming %s', async (query, parameter, message) => {
    const { app } = setup();
    const reply = await get<{ error: { code: string; message: string } }>(app, `/v1/jobs?${query}`, 400);
    expect(reply).toEqual({ error: { code: 'API_BAD_REQUEST', message: `query parameter ${parameter}: ${message}` } });
  });

  it('an unknown query parameter is 400 naming it', async () => {
    const { app } = setup();
    const reply = await get<{ error: { code: string; message: string } }>(app, '/v1/jobs?page=2', 400);
    expect(reply).toEqual({ error: { code: 'API_BAD_REQUEST', message: 'unknown query parameter page' } });
  });
});

describe('GET /v1/jobs/{id}', () => {
  it('answers the job with its history, oldest first', async () => {
    const { app } = setup();
    const reply = await get<{ job: AnyJob; history: JobEvent[] }>(app, '/v1/jobs/job-04');
    expect(reply.job).toMatchObject({ id: 'job-04', state: 'failed', mandate: 'alpha' });
    expect(reply.history.map((e) => [e.attempt, e.type])).toEqual([
      [1, 'started'],
      [1, 'retrying'],
      [2, 'started'],
      [2, 'failed'],
    ]);
    expect(reply.history[3]?.message).toBe('tar: /missing: No such file or directory ([REDACTED])');
    expect((await get<{ history: JobEvent[] }>(app, '/v1/jobs/job-01?wait=1')).history).toEqual([]);
  });

  it('a bad wait or an unknown parameter is 400 naming it; an unknown job 404', async () => {
    const { app } = setup();
    const bad = await get<{ error: { message: string } }>(app, '/v1/jobs/job-04?wait=soon', 400);
    expect(bad.error.message).toBe('query parameter wait: must be a number of seconds between 0 and 300');
    const unknown = await get<{ error: { message: string } }>(app, '/v1/jobs/job-04?follow=1', 400);
    expect(unknown.error.message).toBe('unknown query parameter follow');
    expect(await get(app, '/v1/jobs/job-99', 404)).toEqual({ error: { code: 'JOB_NOT_FOUND', message: 'no job job-99' } });
  });
});

describe('GET /v1/queue/stats', () => {
  it("answers the queue's figures", async () => {
    const { app, queue } = setup();
    const stats = await get<Record<string, unknown>>(app, '/v1/queue/stats');
    expect(stats).toEqual(JSON.parse(JSON.stringify(queue.stats())) as Record<string, unknown>);
    expect(stats).toMatchObject({ running: 0, queued: 1, retrying: 0, concurrency: 1 });
    expect(Object.keys(stats).sort()).toEqual(['concurrency', 'failures_24h', 'overloaded', 'queued', 'retrying', 'running', 'wait_ms_p50', 'wait_ms_p95']);
    expect((await get<{ error: { message: string } }>(app, '/v1/queue/stats?x=1', 400)).error.message).toBe('unknown query parameter x');
  });
});

interface Detail {
  mandate: Record<string, unknown>;
  next_run: string | null;
  next_verification: string | null;
  stats: MandateStats;
  recent_jobs: AnyJob[];
}

describe('GET /v1/mandates/{name}', () => {
  it('answers the settings, next run and verification, stats and the 5 newest jobs', async () => {
    const { app } = setup();
    const detail = await get<Detail>(app, '/v1/mandates/alpha');
    expect(detail.mandate).toEqual({
      name: 'alpha',
      origin: 'config',
      type: 'files',
      container: null,
      interval: '0 0 * * *',
      targets: ['local'],
      middleware: ['gz'],
      retention: 7,
      priority: 5,
      name_pattern: '<DATE>-<MANDATE>',
      verify: '0 5 * * 0',
      verify_level: 'hash',
    });
    expect(detail.next_run).toBe(NEXT_RUN.toISOString());
    expect(detail.next_verification).toBe(NEXT_VERIFY.toISOString());
    expect(detail.stats).toEqual({
      mandate: 'alpha',
      last_success_at: '2026-01-01T00:11:05.000Z',
      last_failure_at: '2026-01-01T00:04:05.000Z',
      last_error: { code: 'DUMP_FAILED', message: 'tar: /missing: No such file or directory ([REDACTED])' },
      successes: 4,
      failures: 1,
      last_duration_ms: 4000,
      avg_duration_ms: 4000,
      last_raw_bytes: 16384,
      last_stored_bytes: 4096,
    });
    expect(detail.recent_jobs.map((j) => j.id)).toEqual(numbers(11, 9, 8, 6, 4));
  });

  it('a mandate without jobs has zero stats, no recent jobs, no next run; GFS rules as configured', async () => {
    const { app } = setup();
    const detail = await get<Detail>(app, '/v1/mandates/gamma');
    expect(detail.next_run).toBeNull();
    expect(detail.next_verification).toBeNull();
    expect(detail.stats).toEqual({
      mandate: 'gamma',
      last_success_at: null,
      last_failure_at: null,
      last_error: null,
      successes: 0,
      failures: 0,
      last_duration_ms: null,
      avg_duration_ms: null,
      last_raw_bytes: null,
      last_stored_bytes: null,
    });
    expect(detail.recent_jobs).toEqual([]);
    // Retention as configured: GFS rules beside the count; the priority.
    expect(detail.mandate).toMatchObject({ name: 'gamma', retention: 0, retention_rules: { keep_daily: 7, keep_within: '30d' }, priority: 8 });
    // Stats count backups only: beta's failed verify and interrupted restore are not failures.
    expect((await get<Detail>(app, '/v1/mandates/beta')).stats).toMatchObject({ successes: 1, failures: 1 });
  });

  it('a skipped mandate is 409 with its problems; an unknown one 404; a query parameter 400', async () => {
    const { app } = setup();
    expect(await get(app, '/v1/mandates/broken', 409)).toEqual({
      error: { code: 'MANDATE_SKIPPED', message: 'mandate broken exists but is skipped: container broken label backer.interval: not a cron expression' },
    });
    expect(await get(app, '/v1/mandates/nope', 404)).toEqual({ error: { code: 'MANDATE_NOT_FOUND', message: 'no mandate named nope' } });
    expect((await get<{ error: { message: string } }>(app, '/v1/mandates/alpha?jobs=10', 400)).error.message).toBe('unknown query parameter jobs');
  });
});
