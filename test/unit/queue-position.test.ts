import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import { createQueue, type Queue } from '../../src/queue/queue.js';
import { backupRunner } from '../helpers/queue.js';

/** Queue positions (`GET /v1/jobs` `queue_position`): the order in which queued jobs get a slot. */

const logger = pino({ level: 'silent' });
const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
});

/** One slot; runs block until the queue closes. Priority per mandate: `urgent` 9, every other 5. */
function oneSlot(): Queue {
  const queue = createQueue({
    concurrency: 1,
    logger,
    needs: (mandate) => ({ targets: [], docker: false, intervalMs: null, priority: mandate === 'urgent' ? 9 : 5 }),
    run: backupRunner((_mandate, signal) => new Promise<BackupResult>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true }))),
  });
  queues.push(queue);
  queue.start();
  return queue;
}

describe('queue positions', () => {
  it('numbers the waiting jobs in the order they get a slot: priority first, then manual before scheduled, then the oldest', () => {
    const queue = oneSlot();
    const running = queue.enqueue('first', 'api');
    const scheduled = queue.enqueue('nightly', 'schedule');
    const manual = queue.enqueue('manual', 'api');
    const urgent = queue.enqueue('urgent', 'schedule');
    expect(queue.get(running.id)?.state).toBe('running');
    const positions = queue.positions();
    expect(positions.get(running.id)).toBeUndefined();
    expect([urgent, manual, scheduled].map((j) => positions.get(j.id))).toEqual([1, 2, 3]);
  });

  it('a cancelled job leaves the order and the ones behind it move up', () => {
    const queue = oneSlot();
    queue.enqueue('first', 'api');
    const a = queue.enqueue('a', 'api');
    const b = queue.enqueue('b', 'api');
    expect(queue.positions().get(b.id)).toBe(2);
    queue.cancel(a.id);
    expect(queue.positions().get(b.id)).toBe(1);
    expect(queue.positions().has(a.id)).toBe(false);
  });
});
