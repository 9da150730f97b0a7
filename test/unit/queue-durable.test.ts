import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import { createMemoryJobStore } from '../../src/queue/memory-store.js';
import { createQueue, type JobRunContext, type Queue, type QueueOptions } from '../../src/queue/queue.js';
import type { AnyJob, JobOutcome, JobStore } from '../../src/queue/types.js';
import { emptyVerifyResult } from '../helpers/queue.js';

const logger = pino({ level: 'silent' });
const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

const ok = (): JobOutcome => ({ status: 'succeeded', error: null, result: emptyVerifyResult() });
const failure = (retryable: boolean): JobOutcome => ({ status: 'failed', error: { code: 'TARGET_WRITE_FAILED', message: 'S3 answered 503' }, result: emptyVerifyResult(), retryable });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function queueOf(options: Partial<QueueOptions> & Pick<QueueOptions, 'run'>): Queue {
  const queue = createQueue({ concurrency: 1, logger, retry: { retries: 3, delayMs: 20, maxDelayMs: 40 }, random: () => 1, ...options });
  queues.push(queue);
  return queue;
}

/** A job as a previous process left it in the store: running under its lease. */
function leftRunning(store: JobStore, kind: AnyJob['kind'], mandate: string): AnyJob {
  const job: AnyJob = {
    id: `${kind}-${mandate}`,
    kind,
    mandate,
    params: null,
    progress: { bytes: 100, total: null },
    trigger: 'schedule',
    state: 'running',
    priority: 5,
    attempts: 1,
    not_before: null,
    wait_ms: 0,
    created_at: new Date().toISOString(),
    started_at: new Date().toISOString(),
    finished_at: null,
    error: null,
    result: null,
  };
  store.save(job);
  store.lease(job.id, 'gone-host:1:1', new Date(Date.now() + 60_000));
  return job;
}

describe('retries', () => {
  it('tries a transient failure again with backoff, and records every attempt', async () => {
    const starts: number[] = [];
    const queue = queueOf({
      run: () => {
        starts.push(Date.now());
        return Promise.resolve(starts.length < 3 ? failure(true) : ok());
      },
    });
    queue.start();
    const job = queue.submit({ kind: 'verify', mandate: 'db', trigger: 'api' });
    const done = await queue.wait(job.id);
    expect(done.state).toBe('succeeded');
    expect(done.attempts).toBe(3);
    // Full delays with random() = 1: 20 ms, then 40 ms (capped).
    expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(19);
    expect((starts[2] ?? 0) - (starts[1] ?? 0)).toBeGreaterThanOrEqual(39);
    const history = queue.history(job.id).map((e) => `${e.attempt}:${e.type}`);
    expect(history).toEqual(['0:queued', '1:started', '1:retrying', '2:started', '2:retrying', '3:started', '3:succeeded']);
    expect(queue.history(job.id)[2]?.message).toMatch(/S3 answered 503; attempt 2 of 4 at /);
  });

  it('gives up after queue.retries, loudly', async () => {
    let runs = 0;
    const queue = queueOf({ run: () => Promise.resolve((runs++, failure(true))), retry: { retries: 2, delayMs: 5, maxDelayMs: 5 } });
    queue.start();
    const done = await queue.wait(queue.submit({ kind: 'verify', mandate: 'db', trigger: 'api' }).id);
    expect(done.state).toBe('failed');
    expect(done.error?.message).toBe('S3 answered 503');
    expect(runs).toBe(3);
  });

  it('never retries a permanent failure, a thrown permanent error or a restore', async () => {
    let runs = 0;
    const queue = queueOf({
      run: (job) => {
        runs++;
        if (job.kind === 'restore') return Promise.resolve(failure(true));
        if (job.mandate === 'thrown') return Promise.reject(new BackerError('DUMP_FAILED', 'Access denied for user root', { component: 'test', permanent: true }));
        return Promise.resolve(failure(false));
      },
    });
    queue.start();
    const jobs = [
      queue.submit({ kind: 'backup', mandate: 'plain', trigger: 'api' }),
      queue.submit({ kind: 'backup', mandate: 'thrown', trigger: 'api' }),
      queue.submit({ kind: 'restore', mandate: 'r', trigger: 'api' }),
    ];
    const done = await Promise.all(jobs.map((j) => queue.wait(j.id)));
    expect(done.map((j) => `${j.state}:${j.attempts}`)).toEqual(['failed:1', 'failed:1', 'failed:1']);
    expect(runs).toBe(3);
  });

  it('retries a thrown transient error (Docker unavailable)', async () => {
    let runs = 0;
    const queue = queueOf({
      run: () => (++runs === 1 ? Promise.reject(new BackerError('DOCKER_UNAVAILABLE', 'connect ECONNREFUSED /var/run/docker.sock', { component: 'test' })) : Promise.resolve(ok())),
    });
    queue.start();
    const done = await queue.wait(queue.submit({ kind: 'verify', mandate: 'db', trigger: 'api' }).id);
    expect(done.state).toBe('succeeded');
    expect(done.attempts).toBe(2);
  });
});

describe('the stall watchdog', () => {
  it('fails a job whose bytes stop moving, and the mandate runs again', async () => {
    const queue = queueOf({
      heartbeatMs: 10,
      stallTimeoutMs: 60,
      run: (job, context: JobRunContext) => {
        if (job.mandate === 'quick') return Promise.resolve(ok());
        context.progress({ bytes: 1, total: null });
        // A hung dump: never ends until aborted.
        return new Promise((_resolve, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason as Error), { once: true }));
      },
    });
    queue.start();
    const hung = queue.submit({ kind: 'backup', mandate: 'hung', trigger: 'api' });
    const after = queue.submit({ kind: 'backup', mandate: 'quick', trigger: 'api' });
    const done = await queue.wait(hung.id);
    expect(done.state).toBe('failed');
    expect(done.error?.code).toBe('JOB_STALLED');
    expect(done.error?.message).toMatch(/no progress for 60 ms \(queue\.stall_timeout\)/);
    expect(done.attempts).toBe(1);
    expect((await queue.wait(after.id)).state).toBe('succeeded');
  });

  it('leaves a job alone while its bytes move', async () => {
    const queue = queueOf({
      heartbeatMs: 10,
      stallTimeoutMs: 50,
      run: async (_job, context) => {
        for (let i = 1; i <= 12; i++) {
          context.progress({ bytes: i, total: null });
          await sleep(15);
        }
        return ok();
      },
    });
    queue.start();
    expect((await queue.wait(queue.submit({ kind: 'backup', mandate: 'slow', trigger: 'api' }).id)).state).toBe('succeeded');
  });
});

describe('a durable store across processes', () => {
  it('a shutdown leaves queued jobs queued and queues a running backup again; the next queue runs both', async () => {
    const store = createMemoryJobStore();
    const first = queueOf({ store, durable: true, run: (_job, c) => new Promise((_r, reject) => c.signal.addEventListener('abort', () => reject(c.signal.reason as Error), { once: true })) });
    first.start();
    const running = first.submit({ kind: 'backup', mandate: 'a', trigger: 'schedule' });
    const queued = first.submit({ kind: 'backup', mandate: 'b', trigger: 'schedule' });
    await sleep(5);
    await first.close();
    expect(store.get(running.id)).toMatchObject({ state: 'queued', attempts: 1 });
    expect(store.get(queued.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(store.events(running.id).map((e) => e.type)).toEqual(['queued', 'started', 'interrupted']);

    const second = queueOf({ store, durable: true, run: () => Promise.resolve(ok()) });
    second.start();
    expect((await second.wait(running.id)).attempts).toBe(2);
    expect((await second.wait(queued.id)).state).toBe('succeeded');
  });

  it('takes over what a killed process left running: backups again, restores interrupted with their safety backup', async () => {
    const store = createMemoryJobStore();
    const backup = leftRunning(store, 'backup', 'db');
    const restore = leftRunning(store, 'restore', 'db2');
    store.addEvent(restore.id, { at: new Date().toISOString(), attempt: 1, type: 'note', message: 'safety backup db2-2026-11-29T10-00-00 taken' });
    const ran: string[] = [];
    const queue = queueOf({ store, durable: true, run: (job) => (ran.push(job.id), Promise.resolve(ok())) });
    queue.start();
    const done = await queue.wait(backup.id);
    expect(done).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(store.events(backup.id).map((e) => `${e.attempt}:${e.type}`)).toEqual(['1:interrupted', '2:started', '2:succeeded']);
    const interrupted = queue.get(restore.id);
    expect(interrupted?.state).toBe('interrupted');
    expect(interrupted?.error?.code).toBe('JOB_INTERRUPTED');
    expect(interrupted?.error?.message).toContain('not re-run automatically');
    expect(interrupted?.error?.message).toContain('backer restore db2 db2-2026-11-29T10-00-00');
    expect(ran).toEqual([backup.id]);
  });
});

describe('priority', () => {
  it('runs higher priority first, manual before scheduled at the same priority', async () => {
    const order: string[] = [];
    const priorities: Record<string, number> = { low: 2, normal: 5, high: 8, manual: 5 };
    const queue = queueOf({
      needs: (m) => ({ targets: [], docker: false, intervalMs: null, priority: priorities[m] ?? 5 }),
      run: (job) => (order.push(job.mandate), Promise.resolve(ok())),
    });
    const jobs = [
      queue.submit({ kind: 'backup', mandate: 'low', trigger: 'schedule' }),
      queue.submit({ kind: 'backup', mandate: 'normal', trigger: 'schedule' }),
      queue.submit({ kind: 'backup', mandate: 'manual', trigger: 'api' }),
      queue.submit({ kind: 'backup', mandate: 'high', trigger: 'schedule' }),
    ];
    expect(jobs.map((j) => j.priority)).toEqual([2, 5, 5, 8]);
    queue.start();
    await Promise.all(jobs.map((j) => queue.wait(j.id)));
    expect(order).toEqual(['high', 'manual', 'normal', 'low']);
  });
});

describe('queue stats', () => {
  it('counts running, queued, retrying, failures and waits', async () => {
    const queue = queueOf({ concurrency: 1, run: (job) => Promise.resolve(job.mandate === 'bad' ? failure(false) : ok()) });
    queue.start();
    await queue.wait(queue.submit({ kind: 'verify', mandate: 'bad', trigger: 'api' }).id);
    await queue.wait(queue.submit({ kind: 'verify', mandate: 'good', trigger: 'api' }).id);
    const stats = queue.stats();
    expect(stats).toMatchObject({ running: 0, queued: 0, retrying: 0, concurrency: 1, failures_24h: 1, overloaded: [] });
    expect(stats.wait_ms_p50).not.toBeNull();
    expect(stats.wait_ms_p95).toBeGreaterThanOrEqual(stats.wait_ms_p50 ?? 0);
  });
});
