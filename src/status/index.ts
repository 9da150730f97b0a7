import type { Services } from '../daemon/services.js';
import type { EventBus } from '../events/bus.js';
import type { Queue } from '../queue/queue.js';
import type { StateDb } from '../state/db.js';
import { createStatusMonitor } from './monitor.js';
import { createReadiness } from './readiness.js';
import { createSqliteSeenStore } from './seen-store.js';
import { createTargetUsage } from './target-usage.js';
import type { ReadinessProbe, StatusMonitor, TargetUsageMonitor } from './types.js';

export type { MandateHealth, MandateStatus, Readiness, ReadinessProbe, StatusMonitor, TargetUsage, TargetUsageMonitor } from './types.js';

/** The daemon's status parts: mandate health, target usage, readiness (one start, one close). */
export interface StatusParts {
  status: StatusMonitor;
  usage: TargetUsageMonitor;
  readiness: ReadinessProbe;
  /** After discovery's first snapshot and the queue's start. */
  start(): void;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface StatusPartsOptions {
  services: Pick<Services, 'config' | 'discovery' | 'docker' | 'targets' | 'logger' | 'mandate'>;
  queue: Pick<Queue, 'mandateStats' | 'page'>;
  events: EventBus;
  state: StateDb;
}

export function createStatusParts(options: StatusPartsOptions): StatusParts {
  const { services, queue, events, state } = options;
  const status = createStatusMonitor({
    queue,
    discovery: services.discovery,
    events,
    seen: createSqliteSeenStore(state),
    logger: services.logger.child({ component: 'status' }),
    tickMs: services.config.status.check_interval,
  });
  const usage = createTargetUsage({
    targets: services.targets,
    events,
    logger: services.logger.child({ component: 'usage' }),
    targetsOf: (mandate) => services.mandate(mandate).targets,
  });
  const readiness = createReadiness({ docker: services.docker, state });
  let closing: Promise<void> | undefined;
  return {
    status,
    usage,
    readiness,
    start() {
      status.start();
      usage.start();
    },
    close() {
      closing ??= (async () => {
        status.close();
        await usage.close();
      })();
      return closing;
    },
  };
}
