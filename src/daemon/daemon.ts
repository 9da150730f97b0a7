import { createApi } from '../api/app.js';
import { createApiServer, type ApiServer } from '../api/server.js';
import { createLogger, SecretRegistry } from '../logging/logger.js';
import { createQueue, type Queue } from '../queue/queue.js';
import { createScheduler, type Scheduler } from '../scheduler/scheduler.js';
import { triggerScheduledVerify } from '../scheduler/verify-trigger.js';
import { stoppedContainersDir } from '../state/stopped-containers.js';
import { createEventBus, type EventBus } from '../events/bus.js';
import { createJobRunner, createRestorePlanner } from './jobs.js';
import { createRecovery } from './recovery.js';
import { createServices, type ServiceOptions, type Services } from './services.js';

export interface Daemon {
  services: Services;
  queue: Queue;
  /** Typed job events (job.queued/started/progress/succeeded/failed/cancelled). */
  events: EventBus;
  scheduler: Scheduler;
  start(): Promise<void>;
  /** Stops in reverse order: API, recovery retries, scheduler, discovery, queue (running backups are aborted and cleaned up). Idempotent. */
  close(): Promise<void>;
}

export interface DaemonOptions extends ServiceOptions {
  /** Mandates to back up once right after start (the demo uses this). */
  runOnStart?: string[];
  /** Compute schedules (backups and verifications) but never fire them (tests trigger jobs themselves). Default false. */
  schedulesPaused?: boolean;
}

export function createDaemon(options: DaemonOptions): Daemon {
  // The scheduler's trigger reaches the queue only when a cron fires, after start().
  const secrets = options.secrets ?? new SecretRegistry();
  const logger = options.logger ?? createLogger({ level: options.config.log.level, format: options.config.log.format, secrets });
  const schedulerLogger = logger.child({ component: 'scheduler' });
  const scheduler: Scheduler = createScheduler({
    trigger: (m, run) => {
      if (run.kind === 'backup') queue.enqueue(m, 'schedule');
      else triggerScheduledVerify(queue, m, run.level, schedulerLogger);
    },
    logger: schedulerLogger,
    paused: options.schedulesPaused ?? false,
  });
  const services = createServices({ ...options, secrets, logger, onSnapshot: (s) => scheduler.update(s.mandates) });
  const events = createEventBus();
  const queue = createQueue({
    concurrency: options.config.queue.concurrency,
    run: createJobRunner(services),
    events,
    logger: services.logger.child({ component: 'queue' }),
  });
  let started!: { resolve: () => void; reject: (err: unknown) => void };
  const ready = new Promise<void>((resolve, reject) => (started = { resolve, reject }));
  // Requests that arrive while a failed start shuts down get its error; nobody else awaits it.
  ready.catch(() => undefined);
  const api: ApiServer = createApiServer(createApi({ services, queue, scheduler, ready, events, restores: createRestorePlanner(services) }), options.config.api.socket);
  const recovery = createRecovery({
    docker: services.docker,
    dir: stoppedContainersDir(options.config.data_dir),
    logger: services.logger.child({ component: 'recovery' }),
  });
  let closing: Promise<void> | undefined;

  async function startInOrder(): Promise<void> {
    await api.start();
    // Before any backup can run: containers a killed run left stopped start again, its helpers go.
    await recovery.start();
    queue.start();
    await services.discovery.start();
    for (const m of options.runOnStart ?? []) queue.enqueue(m, 'startup');
    services.logger.info({ socket: options.config.api.socket, mandates: services.discovery.current().mandates.length }, 'backer daemon started');
  }

  return {
    services,
    queue,
    events,
    scheduler,
    async start() {
      try {
        await startInOrder();
        started.resolve();
      } catch (err) {
        started.reject(err);
        throw err;
      }
    },
    close() {
      closing ??= (async () => {
        services.logger.info('backer daemon stopping');
        await api.close();
        recovery.close();
        await scheduler.close();
        await queue.close();
        await services.close();
        services.logger.info('backer daemon stopped');
      })();
      return closing;
    },
  };
}
