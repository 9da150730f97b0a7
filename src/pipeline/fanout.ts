import { PassThrough, Writable } from 'node:stream';

/**
 * One input, several outputs (one per target) with shared backpressure: a chunk is accepted
 * only when every live branch accepted it, so the slowest target sets the pace and memory stays
 * bounded. A branch whose target failed is detached; the others go on. When every branch has
 * been detached the fan-out itself fails.
 */
export interface Fanout {
  writable: Writable;
  branches: PassThrough[];
  detach(index: number, reason: Error): void;
}

export function createFanout(count: number, highWaterMark = 1024 * 1024): Fanout {
  const branches = Array.from({ length: count }, () => new PassThrough({ highWaterMark }));
  const live = new Set(branches);
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  for (const b of branches) {
    b.on('drain', notify);
    // Each target sees its branch's errors through its own pipeline; a branch destroyed before
    // its target started reading (a cancel in the first milliseconds) must not crash the daemon.
    b.on('error', () => undefined);
  }

  const waitForDrain = async (): Promise<void> => {
    while ([...live].some((b) => b.writableNeedDrain)) {
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };

  const allGone = (): Error => new Error('every target failed');

  const writable = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, callback) {
      if (live.size === 0) return callback(allGone());
      for (const b of live) b.write(chunk);
      waitForDrain().then(() => callback(live.size === 0 ? allGone() : null), callback);
    },
    final(callback) {
      const failed = live.size === 0;
      for (const b of live) b.end();
      // Ended branches belong to their targets now; destroy() after finish must not touch them.
      live.clear();
      callback(failed ? allGone() : null);
    },
    destroy(err, callback) {
      for (const b of live) b.destroy(err ?? new Error('the backup stream was aborted'));
      live.clear();
      notify();
      callback(err);
    },
  });

  return {
    writable,
    branches,
    detach(index, reason) {
      const b = branches[index];
      if (!b || !live.has(b)) return;
      live.delete(b);
      b.destroy(reason);
      notify();
    },
  };
}
