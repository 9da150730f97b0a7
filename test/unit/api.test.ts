import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createApi } from '../../src/api/app.js';
import { toHttpError } from '../../src/api/errors.js';
import type { MandateSpec } from '../../src/mandates/types.js';
import type { Snapshot } from '../../src/discovery/snapshot.js';
import { BackerError } from '../../src/errors.js';
import { SecretRegistry } from '../../src/logging/logger.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import { createQueue, type Queue } from '../../src/queue/queue.js';
import type { Job } from '../../src/queue/types.js';
import type { Target } from '../../src/targets/types.js';
import { BACKER_VERSION } from '../../src/util/version.js';
import { staticDiscovery } from '../helpers/discovery.js';
import { backupRunner } from '../helpers/queue.js';

const SECRET = 'hunter2-very-secret';

const shopDb: MandateSpec = {
  name: 'shop-db',
  origin: 'labels',
  source: { type: 'mysql', container: 'shop-db', options: { password: SECRET } },
  interval: '0 3 * * *',
  targets: ['local'],
  middleware: ['gz'],
  retention: 7,
  priority: 5,
  name_pattern: '<DATE>-<CONTAINER_NAME>',
  verify: { interval: '0 5 * * 0', level: 'drill' },
  alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null },
};

const files: MandateSpec = {
  name: 'files',
  origin: 'config',
  source: { type: 'files', container: null, options: {} },
  interval: '0 0 * * *',
  targets: ['local'],
  middleware: [],
  retention: 10,
  priority: 5,
  name_pattern: '<DATE>-<MANDATE>',
  verify: { interval: null, level: 'decode' },
  alerts: { max_age_ms: null, min_size_bytes: null, size_change_percent: null },
};

const snapshot: Snapshot = {
  mandates: [files, shopDb],
  problems: [{ where: 'container broken label backer.interval', message: 'not a cron expression' }],
  docker_error: null,
  skipped: [{ name: 'broken', origin: 'labels', container: 'broken', problems: [{ where: 'container broken label backer.interval', message: 'not a cron expression' }] }],
};

const NEXT_RUN = new Date('2030-01-01T03:00:00.000Z');
const NEXT_VERIFY = new Date('2030-01-06T05:00:00.000Z');

interface Pending {
  mandate: string;
  signal: AbortSignal;
  resolve(result: BackupResult): void;
  reject(err: Error): void;
}

function succeeded(): BackupResult {
  return { uuid: '3b241101-e2bb-4255-8caf-4136c566a962', name: 'backup', status: 'succeeded', error: null, raw_size: 0, targets: [], retryable: false };
}

const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function setup(options: { start?: boolean } = {}) {
  const pending: Pending[] = [];
  const queue = createQueue({
    concurrency: 1,
    logger: pino({ level: 'silent' }),
    run: backupRunner((mandate, signal) =>
      new Promise<BackupResult>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))), {
          once: true,
        });
        pending.push({ mandate, signal, resolve, reject });
      })),
  });
  queues.push(queue);
  if (options.start !== false) queue.start();
  const secrets = new SecretRegistry();
  secrets.add(SECRET);
  const discovery = staticDiscovery(snapshot);
  const mandate = (name: string): MandateSpec => {
    const found = snapshot.mandates.find((m) => m.name === name);
    if (!found) throw new BackerError('MANDATE_NOT_FOUND', `no mandate named ${name}`, { component: 'test', details: { mandate: name } });
    return found;
  };
  const app = createApi({
    services: { discovery, mandate, targets: new Map<string, Target>(), secrets },
    queue,
    scheduler: { nextRun: (name, kind) => (name !== 'shop-db' ? null : kind === 'verify' ? NEXT_VERIFY : NEXT_RUN) },
  });
  const next = async (): Promise<Pending> => {
    for (let i = 0; i < 100 && pending.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    const p = pending.shift();
    if (!p) throw new Error('run was not called');
    return p;
  };
  return { app, queue, next };
}

async function body<T = Record<string, unknown>>(res: Response): Promise<T> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as T;
}

async function startBackup(app: ReturnType<typeof setup>['app'], name = 'shop-db'): Promise<Job> {
  const res = await app.request(`/v1/mandates/${name}/backups`, { method: 'POST' });
  expect(res.status).toBe(202);
  return (await body<{ job: Job }>(res)).job;
}

describe('api', () => {
  it('GET /v1/health', async () => {
    const { app } = setup();
    const res = await app.request('/v1/health');
    expect(res.status).toBe(200);
    expect(await body(res)).toEqual({ status: 'ok', version: BACKER_VERSION });
  });

  it('GET /v1/mandates lists mandates in snake_case, with problems, never source options', async () => {
    const { app } = setup();
    const res = await app.request('/v1/mandates');
    expect(res.status).toBe(200);
    const json = await body<{ mandates: Record<string, unknown>[]; skipped: unknown[]; problems: unknown[]; docker_error: unknown }>(res);
    expect(json.mandates).toEqual([
      {
        name: 'files',
        origin: 'config',
        type: 'files',
        container: null,
        interval: '0 0 * * *',
        next_run: null,
        targets: ['local'],
        middleware: [],
        retention: 10,
        name_pattern: '<DATE>-<MANDATE>',
        verify: null,
        verify_level: 'decode',
        next_verify: null,
        last_backup: null,
        recent_sizes: [],
      },
      {
        name: 'shop-db',
        origin: 'labels',
        type: 'mysql',
        container: 'shop-db',
        interval: '0 3 * * *',
        next_run: '2030-01-01T03:00:00.000Z',
        targets: ['local'],
        middleware: ['gz'],
        retention: 7,
        name_pattern: '<DATE>-<CONTAINER_NAME>',
        verify: '0 5 * * 0',
        verify_level: 'drill',
        next_verify: '2030-01-06T05:00:00.000Z',
        last_backup: null,
        recent_sizes: [],
      },
    ]);
    expect(json.problems).toEqual(snapshot.problems);
    expect(json.skipped).toEqual([
      { name: 'broken', origin: 'labels', container: 'broken', problems: [{ where: 'container broken label backer.interval', message: 'not a cron expression' }], status: 'skipped', last_backup: null, recent_sizes: [] },
    ]);
    expect(json.docker_error).toBeNull();
    for (const m of json.mandates) for (const key of Object.keys(m)) expect(key).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });

  it('POST /v1/mandates/:name/backups queues a job (202)', async () => {
    const { app, queue } = setup({ start: false });
    const job = await startBackup(app);
    expect(job).toMatchObject({ mandate: 'shop-db', trigger: 'api', state: 'queued', started_at: null, finished_at: null, error: null });
    expect(queue.get(job.id)?.state).toBe('queued');
    // A second trigger while it is queued is the same job.
    expect((await startBackup(app)).id).toBe(job.id);
  });

  it('POST /v1/mandates/:name/backups of an unknown mandate is 404 MANDATE_NOT_FOUND', async () => {
    const { app, queue } = setup();
    const res = await app.request('/v1/mandates/nope/backups', { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await body(res)).toEqual({ error: { code: 'MANDATE_NOT_FOUND', message: 'no mandate named nope' } });
    expect(queue.list()).toEqual([]);
  });

  it('GET /v1/jobs/:id returns the job; ?wait returns it once terminal', async () => {
    const { app, next } = setup();
    const job = await startBackup(app);
    const run = await next();

    const now = await app.request(`/v1/jobs/${job.id}`);
    expect(now.status).toBe(200);
    const current = await body<{ job: Job; history: unknown[] }>(now);
    expect(current.job).toMatchObject({ id: job.id, state: 'running' });
    expect(Object.keys(current).sort()).toEqual(['history', 'job']);

    const waiting = app.request(`/v1/jobs/${job.id}?wait=5`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    run.resolve(succeeded());
    const res = await waiting;
    expect(res.status).toBe(200);
    const done = (await body<{ job: Job }>(res)).job;
    expect(done).toMatchObject({ id: job.id, state: 'succeeded', error: null, result: succeeded() });
    expect(done.finished_at).not.toBeNull();

    // A finished job answers at once.
    const again = await app.request(`/v1/jobs/${job.id}?wait=300`);
    expect((await body<{ job: Job }>(again)).job.state).toBe('succeeded');
  });

  it('GET /v1/jobs/:id?wait returns the current state when the wait runs out', async () => {
    const { app, next } = setup();
    const job = await startBackup(app);
    await next();
    const started = Date.now();
    const res = await app.request(`/v1/jobs/${job.id}?wait=0.1`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(res.status).toBe(200);
    expect((await body<{ job: Job }>(res)).job.state).toBe('running');
  });

  it.each(['abc', '-1', '301', 'Infinity', 'NaN'])('GET /v1/jobs/:id?wait=%s is 400 API_BAD_REQUEST', async (wait) => {
    const { app } = setup({ start: false });
    const job = await startBackup(app);
    const res = await app.request(`/v1/jobs/${job.id}?wait=${wait}`);
    expect(res.status).toBe(400);
    expect((await body<{ error: { code: string } }>(res)).error.code).toBe('API_BAD_REQUEST');
  });

  it('GET /v1/jobs/:id of an unknown job is 404 JOB_NOT_FOUND', async () => {
    const { app } = setup();
    for (const path of ['/v1/jobs/nope', '/v1/jobs/nope?wait=5']) {
      const res = await app.request(path);
      expect(res.status).toBe(404);
      expect((await body<{ error: { code: string } }>(res)).error.code).toBe('JOB_NOT_FOUND');
    }
  });

  it('GET /v1/jobs lists jobs, filtered by mandate', async () => {
    const { app } = setup({ start: false });
    const shop = await startBackup(app, 'shop-db');
    const other = await startBackup(app, 'files');
    const all = await body<{ jobs: Job[]; total: number; limit: number; offset: number }>(await app.request('/v1/jobs'));
    expect(all.jobs.map((j) => j.id)).toEqual([other.id, shop.id]);
    expect(all).toMatchObject({ total: 2, limit: 50, offset: 0 });
    const filtered = await body<{ jobs: Job[]; total: number }>(await app.request('/v1/jobs?mandate=files'));
    expect(filtered.jobs.map((j) => j.id)).toEqual([other.id]);
    expect(filtered.total).toBe(1);
  });

  it('an unknown route is a 404 in JSON', async () => {
    const { app } = setup();
    for (const [method, path] of [
      ['GET', '/nope'],
      ['DELETE', '/v1/jobs/x'],
      ['PUT', '/v1/mandates/shop-db/backups'],
    ] as const) {
      const res = await app.request(path, { method });
      expect(res.status).toBe(404);
      expect(await body(res)).toEqual({ error: { code: 'API_BAD_REQUEST', message: `no route ${method} ${path}` } });
    }
  });

  it('POST /v1/jobs/:id/cancel cancels a queued job', async () => {
    const { app, queue } = setup({ start: false });
    const job = await startBackup(app);
    const res = await app.request(`/v1/jobs/${job.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect((await body<{ job: Job }>(res)).job).toMatchObject({ id: job.id, state: 'cancelled' });
    expect(queue.get(job.id)?.state).toBe('cancelled');
  });

  it('POST /v1/jobs/:id/cancel aborts a running job', async () => {
    const { app, next } = setup();
    const job = await startBackup(app);
    const run = await next();
    const res = await app.request(`/v1/jobs/${job.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(run.signal.aborted).toBe(true);
    const done = await body<{ job: Job }>(await app.request(`/v1/jobs/${job.id}?wait=5`));
    expect(done.job).toMatchObject({ state: 'cancelled', error: { code: 'JOB_CANCELLED' } });
  });

  it('POST /v1/jobs/:id/cancel of an unknown job is 404', async () => {
    const { app } = setup();
    const res = await app.request('/v1/jobs/nope/cancel', { method: 'POST' });
    expect(res.status).toBe(404);
    expect((await body<{ error: { code: string } }>(res)).error.code).toBe('JOB_NOT_FOUND');
  });

  it('replaces a registered secret in a job error with [REDACTED]', async () => {
    const { app, next } = setup();
    const job = await startBackup(app);
    const run = await next();
    run.reject(new Error(`mysqldump: access denied for password "${SECRET}"`, { cause: new Error(`tried ${SECRET}`) }));
    const res = await app.request(`/v1/jobs/${job.id}?wait=5`);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const done = (JSON.parse(text) as { job: Job }).job;
    expect(done.state).toBe('failed');
    expect(done.error).toEqual({ code: 'INTERNAL', message: 'mysqldump: access denied for password "[REDACTED]": tried [REDACTED]' });
    const list = await (await app.request('/v1/jobs')).text();
    expect(list).not.toContain(SECRET);
    expect(list).toContain('[REDACTED]');
  });

  it('maps MANDATE_SKIPPED to 409 and FORGET_REFUSED to 409', () => {
    expect(toHttpError(new BackerError('MANDATE_SKIPPED', 'mandate broken exists but is skipped', { component: 'test' })).status).toBe(409);
    expect(toHttpError(new BackerError('FORGET_REFUSED', 'its artifact is present', { component: 'test' })).status).toBe(409);
  });

  it('scrubs secrets from error responses too', async () => {
    const { app } = setup();
    const res = await app.request(`/v1/mandates/${SECRET}/backups`, { method: 'POST' });
    expect(res.status).toBe(404);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(text).toContain('[REDACTED]');
  });
});
