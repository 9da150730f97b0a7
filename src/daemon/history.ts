import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { JobStore } from '../queue/types.js';

const DAY_MS = 86_400_000;

export interface HistoryPruner {
  /** Prunes now, then once a day. */
  start(): void;
  close(): void;
}

/** Keeps `state.history_days` of finished jobs (and their events) in the state database. */
export function createHistoryPruner(store: JobStore, days: number, logger: Logger): HistoryPruner {
  let timer: NodeJS.Timeout | undefined;
  const prune = (): void => {
    try {
      const removed = store.prune(new Date(Date.now() - days * DAY_MS));
      if (removed > 0) logger.info({ removed, history_days: days }, 'pruned finished jobs older than the history window');
    } catch (err) {
      logger.error({ err: describeError(err) }, 'cannot prune the job history; retrying tomorrow');
    }
  };
  return {
    start() {
      prune();
      timer = setInterval(prune, DAY_MS);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
    },
  };
}
