import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { progressLine } from '../../src/cli/follow.js';
import { createEventBus, type BackerEvent } from '../../src/events/bus.js';
import { createQueue, type JobRunContext, type Queue } from '../../src/queue/queue.js';
import type { AnyJob, JobOutcome } from '../../src/queue/types.js';
import { emptyRestoreResult, emptyVerifyResult } from '../helpers/queue.js';

const logger = pino({ level: 'silent' });
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Run {
  job: AnyJob;
  context: JobRunContext;
  finish(outcome: JobOutcome): void;
}

const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

function harness(concurrency = 4): { queue: Queue; runs: Run[]; events: BackerEvent[] } {
  const runs: Run[] = [];
  const events: BackerEvent[] = [];
  const bus = createEventBus();
  bus.on((e) => events.push(e));
  const queue = createQueue({
    concurrency,
    logger,
    events: bus,
    run: (job, context) =>
      new Promise<JobOutcome>((resolve, reject) => {
        context.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        runs.push({ job, context, finish: resolve });
      }),
  });
  queues.push(queue);
  queue.start();
  return { queue, runs, events };
}

const ok = (kind: 'restore' | 'verify'): JobOutcome => ({ status: 'succeeded', error: null, result: kind === 'restore' ? emptyRestoreResult() : emptyVerifyResult() });

describe('job kinds', () => {
  it('every kind waits for the mandate\'s running job: a restore never runs beside a backup of its mandate', async () => {
    const { queue, runs } = harness();
    const backup = queue.enqueue('db', 'api');
    const restore = queue.submit({ kind: 'restore', mandate: 'db', trigger: 'api', params: { backup: 'latest' } });
    const other = queue.submit({ kind: 'verify', mandate: 'other', trigger: 'api', params: { level: 'hash' } });
    await settle();
    expect(runs.map((r) => [r.job.kind, r.job.mandate])).toEqual([['backup', 'db'], ['verify', 'other']]);
    expect(queue.get(restore.id)?.state).toBe('queued');
    runs[0]?.finish({ status: 'succeeded', error: null, result: { uuid: 'u', name: 'n', status: 'succeeded', error: null, raw_size: 1, targets: [], retryable: false } });
    await settle();
    await settle();
    expect(runs.map((r) => r.job.id)).toEqual([backup.id, other.id, restore.id]);
    expect(runs[2]?.job.params).toEqual({ backup: 'latest' });
  });

  it('only backups coalesce: two restores of one mandate are two jobs', () => {
    const { queue } = harness(1);
    queue.enqueue('busy', 'api');
    const a = queue.submit({ kind: 'restore', mandate: 'db', trigger: 'api', params: {} });
    const b = queue.submit({ kind: 'restore', mandate: 'db', trigger: 'api', params: {} });
    expect(a.id).not.toBe(b.id);
    expect(queue.enqueue('db', 'api').id).toBe(queue.enqueue('db', 'api').id);
    expect(queue.list({ kind: 'restore' }).map((j) => j.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('sends typed events: queued, started, progress (kept on the job), succeeded', async () => {
    const { queue, runs, events } = harness();
    const job = queue.submit({ kind: 'verify', mandate: 'db', trigger: 'api', params: { level: 'decode' } });
    await settle();
    runs[0]?.context.progress({ bytes: 512, total: 1024 });
    expect(queue.get(job.id)?.progress).toEqual({ bytes: 512, total: 1024 });
    runs[0]?.finish(ok('verify'));
    await queue.wait(job.id);
    expect(events.map((e) => e.type)).toEqual(['job.queued', 'job.started', 'job.progress', 'job.succeeded']);
    const done = events[3];
    expect(done?.type === 'job.succeeded' ? done.job.result : null).toEqual(emptyVerifyResult());
    expect(queue.get(job.id)?.progress).toEqual({ bytes: 512, total: 1024 });
  });

  it('a failed outcome is a failed job with its error; a cancelled one says cancelled', async () => {
    const { queue, runs, events } = harness();
    const failed = queue.submit({ kind: 'restore', mandate: 'a', trigger: 'api', params: {} });
    const cancelled = queue.submit({ kind: 'restore', mandate: 'b', trigger: 'api', params: {} });
    await settle();
    runs[0]?.finish({ status: 'failed', error: { code: 'RESTORE_FAILED', message: 'boom' }, result: emptyRestoreResult() });
    queue.cancel(cancelled.id);
    expect((await queue.wait(failed.id)).error).toEqual({ code: 'RESTORE_FAILED', message: 'boom' });
    expect((await queue.wait(cancelled.id)).state).toBe('cancelled');
    expect(events.filter((e) => e.type === 'job.failed' || e.type === 'job.cancelled').map((e) => e.type).sort()).toEqual(['job.cancelled', 'job.failed']);
  });
});

describe('progress line', () => {
  const job = (bytes: number, total: number | null): AnyJob => ({
    id: 'j', kind: 'restore', mandate: 'db', params: null, progress: { bytes, total }, trigger: 'cli', state: 'running',
    priority: 5, attempts: 1, not_before: null, wait_ms: null, created_at: '', started_at: null, finished_at: null, error: null, result: null,
  });

  it('shows a bar, the share, the rate and an ETA when the total is known', () => {
    expect(progressLine(job(512 * 1024, 1024 * 1024), 2)).toBe('restore db: [###############...............] 50% 512.0 KiB/1.0 MiB 256.0 KiB/s ETA 2s');
  });

  it('shows bytes and rate without a total', () => {
    expect(progressLine(job(2048, null), 1)).toBe('restore db: 2.0 KiB 2.0 KiB/s');
  });
});
