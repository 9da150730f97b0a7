import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BackerError } from '../../src/errors.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import { createQueue, type Queue } from '../../src/queue/queue.js';
import { createMemoryJobStore } from '../../src/queue/memory-store.js';
import type { Job } from '../../src/queue/types.js';
import { backupRunner } from '../helpers/queue.js';

const logger = pino({ level: 'silent' });

interface Call {
  mandate: string;
  signal: AbortSignal;
  resolve(result: BackupResult): void;
  reject(err: Error): void;
}

const asError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));

/** What `fn` throws (it must throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function result(status: BackupResult['status'] = 'succeeded', error: BackupResult['error'] = null): BackupResult {
  return { uuid: '00000000-0000-4000-8000-000000000000', name: 'backup', status, error, raw_size: 0, targets: [], retryable: false };
}

/** Lets the queue's promise chains (await run → update → finally → pump) settle. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A queue whose `run` blocks until the test settles it, recording how many runs overlap
 * overall and per mandate. An aborted run rejects with the abort reason, like the pipeline.
 */
function harness(concurrency: number): { queue: Queue; calls: Call[]; peak: () => number; overlapped: () => boolean } {
  const calls: Call[] = [];
  const active = new Map<string, number>();
  let total = 0;
  let peak = 0;
  let overlapped = false;
  const queue = createQueue({
    concurrency,
    logger,
    run: backupRunner((mandate, signal) => {
      total++;
      peak = Math.max(peak, total);
      const here = (active.get(mandate) ?? 0) + 1;
      if (here > 1) overlapped = true;
      active.set(mandate, here);
      const done = (): void => {
        total--;
        active.set(mandate, (active.get(mandate) ?? 1) - 1);
      };
      return new Promise<BackupResult>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(asError(signal.reason)), { once: true });
        calls.push({ mandate, signal, resolve, reject });
      }).finally(done);
    }),
  });
  queues.push(queue);
  return { queue, calls, peak: () => peak, overlapped: () => overlapped };
}

const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function call(calls: Call[], index: number): Call {
  const c = calls[index];
  if (!c) throw new Error(`run was called ${calls.length} times, expected call #${index}`);
  return c;
}

describe('queue', () => {
  it('never runs more jobs at once than its concurrency', async () => {
    const { queue, calls, peak } = harness(2);
    queue.start();
    const jobs = ['a', 'b', 'c', 'd', 'e'].map((m) => queue.enqueue(m, 'api'));
    await settle();
    expect(calls.map((c) => c.mandate)).toEqual(['a', 'b']);
    expect(jobs.map((j) => queue.get(j.id)?.state)).toEqual(['running', 'running', 'queued', 'queued', 'queued']);

    call(calls, 0).resolve(result());
    await settle();
    expect(calls.map((c) => c.mandate)).toEqual(['a', 'b', 'c']);
    expect(queue.get(jobs[0]?.id ?? '')?.state).toBe('succeeded');

    for (let i = 1; i < 5; i++) {
      call(calls, i).resolve(result());
      await settle();
    }
    const finished = await Promise.all(jobs.map((j) => queue.wait(j.id)));
    expect(finished.map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(peak()).toBe(2);
  });

  it('does not start jobs before start()', async () => {
    const { queue, calls } = harness(2);
    const job = queue.enqueue('a', 'schedule');
    await settle();
    expect(calls).toHaveLength(0);
    expect(queue.get(job.id)?.state).toBe('queued');
    queue.start();
    await settle();
    expect(calls).toHaveLength(1);
  });

  it('never runs two jobs of the same mandate at once, but lets other mandates pass', async () => {
    const { queue, calls, overlapped } = harness(3);
    queue.start();
    const first = queue.enqueue('a', 'schedule');
    await settle();
    const second = queue.enqueue('a', 'api');
    const other = queue.enqueue('b', 'api');
    await settle();
    expect(calls.map((c) => c.mandate)).toEqual(['a', 'b']);
    expect(queue.get(second.id)?.state).toBe('queued');

    call(calls, 0).resolve(result());
    await settle();
    expect(queue.get(first.id)?.state).toBe('succeeded');
    expect(calls.map((c) => c.mandate)).toEqual(['a', 'b', 'a']);
    expect(queue.get(second.id)?.state).toBe('running');

    call(calls, 1).resolve(result());
    call(calls, 2).resolve(result());
    expect((await queue.wait(second.id)).state).toBe('succeeded');
    expect((await queue.wait(other.id)).state).toBe('succeeded');
    expect(overlapped()).toBe(false);
  });

  it('coalesces a trigger with the queued job of the same mandate', () => {
    const { queue } = harness(1);
    const first = queue.enqueue('a', 'schedule');
    const again = queue.enqueue('a', 'api');
    expect(again.id).toBe(first.id);
    expect(again.trigger).toBe('schedule');
    expect(queue.list({ mandate: 'a' })).toHaveLength(1);
  });

  it('queues exactly one job behind a running one, and runs it afterwards', async () => {
    const { queue, calls } = harness(2);
    queue.start();
    const running = queue.enqueue('a', 'schedule');
    await settle();
    expect(queue.get(running.id)?.state).toBe('running');

    const waiting = queue.enqueue('a', 'api');
    expect(waiting.id).not.toBe(running.id);
    expect(waiting.state).toBe('queued');
    expect(queue.enqueue('a', 'cli').id).toBe(waiting.id);
    expect(queue.list({ mandate: 'a' })).toHaveLength(2);

    call(calls, 0).resolve(result());
    await settle();
    expect(calls).toHaveLength(2);
    call(calls, 1).resolve(result());
    const done = await queue.wait(waiting.id);
    expect(done.state).toBe('succeeded');
    expect(done.started_at).not.toBeNull();
    expect(done.finished_at).not.toBeNull();
  });

  it('wait() resolves once the job is terminal, and at once for a finished job', async () => {
    const { queue, calls } = harness(1);
    queue.start();
    const job = queue.enqueue('a', 'api');
    let resolved = false;
    const waiting = queue.wait(job.id).then((j) => {
      resolved = true;
      return j;
    });
    await settle();
    expect(resolved).toBe(false);
    const r = result();
    call(calls, 0).resolve(r);
    const done = await waiting;
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual(r);
    expect(done.error).toBeNull();
    expect((await queue.wait(job.id)).state).toBe('succeeded');
  });

  it('wait() and cancel() of an unknown job fail with JOB_NOT_FOUND', () => {
    const { queue } = harness(1);
    expect(thrown(() => queue.wait('nope'))).toMatchObject({ code: 'JOB_NOT_FOUND' });
    expect(thrown(() => queue.cancel('nope'))).toMatchObject({ code: 'JOB_NOT_FOUND' });
  });

  it('a run that throws a BackerError fails the job with its code and message', async () => {
    const { queue, calls } = harness(1);
    queue.start();
    const job = queue.enqueue('a', 'api');
    await settle();
    call(calls, 0).reject(new BackerError('DUMP_FAILED', 'mysqldump exited with 2', { component: 'test' }));
    const done = await queue.wait(job.id);
    expect(done.state).toBe('failed');
    expect(done.error).toEqual({ code: 'DUMP_FAILED', message: 'mysqldump exited with 2' });
    expect(done.result).toBeNull();
  });

  it('a run that throws anything else fails the job as INTERNAL, with the chain of causes', async () => {
    const { queue, calls } = harness(1);
    queue.start();
    const job = queue.enqueue('a', 'api');
    await settle();
    call(calls, 0).reject(new Error('outer', { cause: new Error('inner') }));
    const done = await queue.wait(job.id);
    expect(done.state).toBe('failed');
    expect(done.error).toEqual({ code: 'INTERNAL', message: 'outer: inner' });
  });

  it('a run that throws synchronously fails the job instead of the queue', async () => {
    const queue = createQueue({
      concurrency: 1,
      logger,
      run: () => {
        throw new BackerError('TARGET_NOT_FOUND', 'no target x', { component: 'test' });
      },
    });
    queues.push(queue);
    queue.start();
    const done = await queue.wait(queue.enqueue('a', 'api').id);
    expect(done.state).toBe('failed');
    expect(done.error?.code).toBe('TARGET_NOT_FOUND');
  });

  it('a result with status failed fails the job and keeps the result', async () => {
    const { queue, calls } = harness(1);
    queue.start();
    const job = queue.enqueue('a', 'api');
    await settle();
    const r = result('failed', { code: 'TARGET_WRITE_FAILED', message: 'disk full' });
    call(calls, 0).resolve(r);
    const done = await queue.wait(job.id);
    expect(done.state).toBe('failed');
    expect(done.error).toEqual({ code: 'TARGET_WRITE_FAILED', message: 'disk full' });
    expect(done.result).toEqual(r);
  });

  it('cancel() of a queued job cancels it and it never runs', async () => {
    const { queue, calls } = harness(1);
    queue.start();
    const blocker = queue.enqueue('a', 'api');
    const job = queue.enqueue('b', 'api');
    const cancelled = queue.cancel(job.id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.finished_at).not.toBeNull();
    expect((await queue.wait(job.id)).state).toBe('cancelled');

    // A new trigger for that mandate is a new job, not the cancelled one.
    const fresh = queue.enqueue('b', 'api');
    expect(fresh.id).not.toBe(job.id);

    call(calls, 0).resolve(result());
    await queue.wait(blocker.id);
    await settle();
    expect(calls.map((c) => c.mandate)).toEqual(['a', 'b']);
    call(calls, 1).resolve(result());
    expect((await queue.wait(fresh.id)).state).toBe('succeeded');
    expect(queue.get(job.id)?.started_at).toBeNull();
  });

  it('cancel() of a running job aborts its signal and ends it cancelled', async () => {
    const { queue, calls } = harness(1);
    queue.start();
    const job = queue.enqueue('a', 'api');
    await settle();
    const c = call(calls, 0);
    expect(c.signal.aborted).toBe(false);
    expect(queue.cancel(job.id).state).toBe('running');
    expect(c.signal.aborted).toBe(true);
    expect(c.signal.reason).toMatchObject({ code: 'JOB_CANCELLED' });
    const done = await queue.wait(job.id);
    expect(done.state).toBe('cancelled');
    expect(done.error?.code).toBe('JOB_CANCELLED');
    expect(done.finished_at).not.toBeNull();
  });

  it('a cancelled run that still returns a result ends cancelled, not succeeded', async () => {
    const queue = createQueue({
      concurrency: 1,
      logger,
      run: backupRunner((_mandate, signal) =>
        new Promise<BackupResult>((resolve) => signal.addEventListener('abort', () => resolve(result()), { once: true }))),
    });
    queues.push(queue);
    queue.start();
    const job = queue.enqueue('a', 'api');
    await settle();
    queue.cancel(job.id);
    expect((await queue.wait(job.id)).state).toBe('cancelled');
  });

  it('close() cancels queued jobs, aborts running ones and waits for their cleanup', async () => {
    let cleanedUp = false;
    const signals: AbortSignal[] = [];
    const queue = createQueue({
      concurrency: 1,
      logger,
      run: backupRunner((_mandate, signal) => {
        signals.push(signal);
        return new Promise<BackupResult>((_resolve, reject) => {
          signal.addEventListener(
            'abort',
            () => {
              // Cleanup (abort a multipart upload, remove a temp file) takes a while.
              setTimeout(() => {
                cleanedUp = true;
                reject(asError(signal.reason));
              }, 50);
            },
            { once: true },
          );
        });
      }),
    });
    queue.start();
    const running = queue.enqueue('a', 'api');
    const queued = queue.enqueue('b', 'api');
    await settle();
    expect(signals).toHaveLength(1);

    await queue.close();
    expect(cleanedUp).toBe(true);
    expect(signals[0]?.aborted).toBe(true);
    expect(queue.get(running.id)?.state).toBe('cancelled');
    expect(queue.get(queued.id)?.state).toBe('cancelled');
    expect(queue.get(queued.id)?.started_at).toBeNull();
    expect(signals).toHaveLength(1);

    await queue.close();
    expect(() => queue.enqueue('c', 'api')).toThrow(BackerError);
  });

  it('lists jobs newest first and filters by mandate', () => {
    const { queue } = harness(1);
    queue.start();
    const a = queue.enqueue('a', 'api');
    const b = queue.enqueue('b', 'api');
    const c = queue.enqueue('c', 'api');
    // Created within the same millisecond or not, the last one enqueued comes first.
    expect(queue.list().map((j) => j.id)).toEqual([c.id, b.id, a.id]);
    expect(queue.list({ mandate: 'b' }).map((j) => j.id)).toEqual([b.id]);
    expect(queue.list({ mandate: 'zzz' })).toEqual([]);
  });

  it('lists jobs by created_at across milliseconds', async () => {
    const { queue } = harness(1);
    const a = queue.enqueue('a', 'api');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const b = queue.enqueue('b', 'api');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const c = queue.enqueue('c', 'api');
    expect(queue.list().map((j) => j.id)).toEqual([c.id, b.id, a.id]);
    expect(queue.list().every((j, i, all) => i === 0 || (all[i - 1]?.created_at ?? '') >= j.created_at)).toBe(true);
  });
});

describe('memory job store', () => {
  const job = (id: string, state: Job['state']): Job => ({
    id,
    kind: 'backup',
    params: null,
    progress: null,
    mandate: 'm',
    trigger: 'api',
    state,
    priority: 5,
    attempts: 0,
    not_before: null,
    wait_ms: null,
    created_at: '2024-01-01T00:00:00.000Z',
    started_at: null,
    finished_at: null,
    error: null,
    result: null,
  });

  it('lists newest created first, and an update keeps a job in its place', () => {
    const store = createMemoryJobStore();
    store.save(job('1', 'queued'));
    store.save(job('2', 'queued'));
    store.save(job('1', 'running'));
    expect(store.list().jobs.map((j) => `${j.id}:${j.state}`)).toEqual(['2:queued', '1:running']);
  });

  it('forgets the oldest finished jobs beyond its limit, never a queued or running one', () => {
    const store = createMemoryJobStore(2);
    store.save(job('1', 'queued'));
    store.save(job('2', 'succeeded'));
    store.save(job('3', 'failed'));
    store.save(job('4', 'running'));
    expect(store.list().jobs.map((j) => j.id)).toEqual(['4', '1']);
    expect(store.get('2')).toBeUndefined();
  });
});
