import { createApi } from '../api/app.js';
import { testMandate } from '../checks/mandate-test.js';
import { startSentry, type SentryReporter } from '../sentry/reporter.js';
import { sentryOptions } from '../sentry/options.js';
import { tokenSecrets } from '../api/config.js';
import { createApiServer, createTcpApiServer, type ApiServer } from '../api/server.js';
import { createUi } from '../api/ui.js';
import { createMetrics } from '../metrics/metrics.js';
import { createMetricsServer } from '../metrics/server.js';
import { metricsListen } from '../metrics/schema.js';
import { createLogger, SecretRegistry } from '../logging/logger.js';
import { createQueue, type Queue } from '../queue/queue.js';
import { createScheduler, type Scheduler } from '../scheduler/scheduler.js';
import { triggerScheduledVerify } from '../scheduler/verify-trigger.js';
import { stoppedContainersDir } from '../state/stopped-containers.js';
import { createEventBus, type EventBus } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import type { JobNeeds } from '../queue/queue.js';
import type { JobStore } from '../queue/types.js';
import { claimDataDir, releaseDataDir } from '../state/daemon-lock.js';
import { openStateDb, type StateDb } from '../state/db.js';
import { createSqliteJobStore } from '../state/job-store.js';
import { createStatusParts } from '../status/index.js';
import type { ReadinessProbe, StatusMonitor, TargetUsageMonitor } from '../status/types.js';
import { createNotifier } from '../notify/notifier.js';
import { createHistoryPruner } from './history.js';
import { startSweep, type SweepSummary } from './sweep.js';
import { createJobRunner, createRestorePlanner } from './jobs.js';
import { createRecovery } from './recovery.js';
import { createServices, type ServiceOptions, type Services } from './services.js';

export interface Daemon {
  services: Services;
  queue: Queue;
  /** Typed job events (job.queued/started/progress/succeeded/failed/cancelled). */
  events: EventBus;
  scheduler: Scheduler;
  /** Mandate health (src/status/monitor.ts), target usage and the daemon's readiness. */
  status: StatusMonitor;
  usage: TargetUsageMonitor;
  readiness: ReadinessProbe;
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

/** The state database, the data_dir lock and the durable job store (closed in reverse). */
function openState(options: DaemonOptions, logger: Logger): { state: StateDb; store: JobStore } {
  const state = openStateDb(options.config.data_dir, logger.child({ component: 'state' }));
  try {
    claimDataDir(state);
  } catch (err) {
    state.close();
    throw err;
  }
  return { state, store: createSqliteJobStore(state) };
}

/** What a mandate's jobs need from the queue's limits, and their priority. */
function jobNeeds(services: Services, scheduler: Scheduler): (mandate: string) => JobNeeds {
  return (name) => {
    const m = services.mandate(name);
    return { targets: m.targets, docker: m.source.container !== null, intervalMs: scheduler.intervalMs(name), priority: m.priority };
  };
}

function createDaemonQueue(services: Services, store: JobStore, scheduler: Scheduler, events: EventBus): Queue {
  const { config } = services;
  const { queue } = config;
  return createQueue({
    concurrency: queue.concurrency,
    run: createJobRunner(services),
    store,
    durable: true,
    events,
    needs: jobNeeds(services, scheduler),
    limits: {
      perTarget: new Map(config.targets.flatMap((t) => (t.concurrency === undefined ? [] : [[t.name, t.concurrency] as const]))),
      docker: config.docker.concurrency ?? null,
    },
    retry: { retries: queue.retries, delayMs: queue.retry_delay, maxDelayMs: queue.retry_delay_max },
    stallTimeoutMs: queue.stall_timeout,
    agingMs: queue.aging,
    logger: services.logger.child({ component: 'queue' }),
  });
}

/** When this process started: uploads begun before it belong to a process that is gone. */
const processStart = new Date(Date.now() - Math.round(process.uptime() * 1000));

export function createDaemon(options: DaemonOptions): Daemon {
  // The scheduler's trigger reaches the queue only when a cron fires, after start().
  const secrets = options.secrets ?? new SecretRegistry();
  const logger = options.logger ?? createLogger({ level: options.config.log.level, format: options.config.log.format, secrets });
  const { state, store } = openState(options, logger);
  const schedulerLogger = logger.child({ component: 'scheduler' });
  const scheduler: Scheduler = createScheduler({
    trigger: (m, run, info) => {
      if (run.kind === 'backup') queue.submit({ kind: 'backup', mandate: m, trigger: info.catchUp ? 'catch_up' : 'schedule' });
      else triggerScheduledVerify(queue, m, run.level, schedulerLogger);
    },
    fires: { claim: (m, kind, at) => store.claimFire(m, kind, at), last: (m, kind) => store.lastFire(m, kind) },
    catchUp: { mode: options.config.schedule.catch_up, windowMs: options.config.schedule.catch_up_window },
    logger: schedulerLogger,
    paused: options.schedulesPaused ?? false,
  });
  const events = createEventBus();
  const services = createServices({
    ...options,
    secrets,
    logger,
    onSnapshot: (s) => {
      scheduler.update(s.mandates);
      events.emit({ type: 'mandates.changed', mandates: s.mandates.map((m) => m.name), skipped: s.skipped.map((m) => m.name) });
    },
  });
  const queue = createDaemonQueue(services, store, scheduler, events);
  // Notifications listen to the bus; delivery is asynchronous and never blocks or fails a job.
  const notifier = createNotifier({ config: options.config, events, secrets, logger, state, mandateTargets: (m) => services.discovery.current().mandates.find((x) => x.name === m)?.targets ?? [] });
  const history = createHistoryPruner(store, options.config.state.history_days, services.logger.child({ component: 'state' }));
  let started!: { resolve: () => void; reject: (err: unknown) => void };
  const ready = new Promise<void>((resolve, reject) => (started = { resolve, reject }));
  // Requests that arrive while a failed start shuts down get its error; nobody else awaits it.
  ready.catch(() => undefined);
  // `backer mandates test` runs are cut short when the daemon stops.
  const checksAbort = new AbortController();
  const statusParts = createStatusParts({ services, queue, events, state });
  const { status, usage, readiness } = statusParts;
  const metrics = createMetrics({ queue, discovery: services.discovery, scheduler, events, status, usage, readiness });
  const metricsAt = metricsListen(options.config.metrics);
  const metricsServer = metricsAt === null ? null : createMetricsServer(metrics, metricsAt, services.logger.child({ component: 'metrics' }));
  const apiConfig = options.config.api;
  for (const raw of tokenSecrets(apiConfig.tokens)) secrets.add(raw);
  const apiApp = createApi({ services, queue, scheduler, ready, events, restores: createRestorePlanner(services), status, usage, readiness, metrics, checks: (name) => testMandate(services.mandate(name), services.pipeline, checksAbort.signal), logger: services.logger.child({ component: 'api' }), tokens: apiConfig.tokens });
  const api: ApiServer = createApiServer(apiApp, apiConfig.socket);
  const ui = apiConfig.listen !== null && options.config.ui.enabled ? createUi({ dir: options.config.ui.dir, logger: services.logger.child({ component: 'ui' }) }) : undefined;
  const tcpApi = apiConfig.listen === null ? null : createTcpApiServer(apiApp, { listen: apiConfig.listen, tls: apiConfig.tls }, ui);
  const recovery = createRecovery({
    docker: services.docker,
    dir: stoppedContainersDir(options.config.data_dir),
    logger: services.logger.child({ component: 'recovery' }),
  });
  let closing: Promise<void> | undefined;
  /** The start-up sweep's orphan reports, which may still run after start (they use the targets). */
  let sweeping: Promise<SweepSummary> | undefined;

  let sentry: SentryReporter | undefined;

  async function startInOrder(): Promise<void> {
    // First: errors of the rest of the start are reported too.
    if (options.config.sentry !== undefined) sentry = await startSentry(sentryOptions(services, events, options.config.sentry));
    await api.start();
    await tcpApi?.start();
    await ui?.check();
    if (tcpApi) services.logger.info({ component: 'api', url: tcpApi.url(), tokens: apiConfig.tokens.length }, `API listening on ${tcpApi.url()}`);
    await metricsServer?.start();
    // Before any backup can run: containers a killed run left stopped start again, its helpers go.
    await recovery.start();
    // Temp files and unfinished uploads of runs that died with their process; orphans are reported.
    // The sweep (it lists every target) and discovery (Docker) run side by side: neither runs a
    // backup, and the queue starts after both the clean-up and discovery; the orphan reports
    // (they only log) go on meanwhile (issue 11: 500 containers beside 10,000 backups).
    const sweep = startSweep(services.targets, services.logger.child({ component: 'sweep' }), processStart);
    sweeping = sweep.done;
    history.start();
    // Jobs left queued by the previous process need their mandates: discovery first.
    notifier.start();
    const settled = await Promise.allSettled([sweep.cleaned, services.discovery.start()]);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    queue.start();
    // Mandate health needs discovery's snapshot and the queue's jobs taken over.
    statusParts.start();
    for (const m of options.runOnStart ?? []) queue.enqueue(m, 'startup');
    services.logger.info({ socket: options.config.api.socket, mandates: services.discovery.current().mandates.length }, 'backer daemon started');
  }

  return {
    services,
    queue,
    events,
    scheduler,
    status,
    usage,
    readiness,
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
        checksAbort.abort();
        await api.close();
        await tcpApi?.close();
        await statusParts.close();
        await metricsServer?.close();
        metrics.close();
        recovery.close();
        await scheduler.close();
        await queue.close();
        await notifier.close();
        history.close();
        await sweeping;
        await services.close();
        releaseDataDir(state);
        state.close();
        // Last: the failures of jobs that shutdown ended are sent too.
        await sentry?.close();
        services.logger.info('backer daemon stopped');
      })();
      return closing;
    },
  };
}
