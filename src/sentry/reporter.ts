import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { NodeOptions } from '@sentry/node';
import { onEscapedError } from '../daemon/crash-guard.js';
import { BackerError, describeError } from '../errors.js';
import type { EventBus, BackerEvent } from '../events/bus.js';
import type { Logger, SecretRegistry } from '../logging/logger.js';
import type { AnyJob } from '../queue/types.js';
import { BACKER_VERSION } from '../util/version.js';
import { dsnProblem, type SentryConfig } from './schema.js';

type SentryNode = typeof import('@sentry/node');
type MonitorConfig = NonNullable<Parameters<SentryNode['captureCheckIn']>[1]>;
type ErrorEvent = Parameters<NonNullable<NodeOptions['beforeSend']>>[0];
type TransactionEvent = Parameters<NonNullable<NodeOptions['beforeSendTransaction']>>[0];

export interface SentryOptions {
  config: SentryConfig;
  /** dsn_file is relative to the config file's directory. */
  configFile: string;
  /** Every event is scrubbed of these before it leaves; the DSN is added to them. */
  secrets: SecretRegistry;
  events: EventBus;
  /** A mandate's cron (the Crons monitor's schedule); undefined when the mandate is gone. */
  intervalOf(mandate: string): string | undefined;
  logger: Logger;
}

export interface SentryReporter {
  /** Sends what is pending (at most a few seconds) and stops reporting. Idempotent. */
  close(): Promise<void>;
}

const COMPONENT = 'sentry';
/** How long close() waits for pending events. */
const FLUSH_MS = 5000;
/** A backup may run this long (minutes) before Sentry Crons calls it timed out. */
const MAX_RUNTIME_MINUTES = 24 * 60;

async function readDsn(config: SentryConfig, configFile: string): Promise<string> {
  if (config.dsn !== undefined) return config.dsn.trim();
  const path = resolve(dirname(configFile), config.dsn_file ?? '');
  const dsn = (await readFile(path, 'utf8').catch((err: unknown) => {
    throw new BackerError('CONFIG_INVALID', `sentry.dsn_file ${path} cannot be read`, { component: COMPONENT, details: { path }, cause: err, permanent: true });
  })).trim();
  const problem = dsnProblem(dsn);
  if (problem !== null) throw new BackerError('CONFIG_INVALID', `sentry.dsn_file ${path}: ${problem}`, { component: COMPONENT, details: { path }, permanent: true });
  return dsn;
}

/**
 * What leaves for Sentry: no request data, user, breadcrumbs or extra (they could carry
 * environment values, argv or headers), and every known secret replaced, wherever it hides
 * (serialized, scrubbed, parsed again).
 */
export function scrubEvent<E extends ErrorEvent | TransactionEvent>(event: E, secrets: SecretRegistry): E {
  const { request: _request, user: _user, breadcrumbs: _breadcrumbs, extra: _extra, ...rest } = event;
  return JSON.parse(secrets.scrub(JSON.stringify(rest))) as E;
}

/** A Sentry Crons slug from a mandate name: lowercase letters, digits, `-` and `_`, at most 50. */
export function monitorSlug(mandate: string): string {
  return `backer-${mandate.toLowerCase().replace(/[^a-z0-9_-]+/g, '-')}`.slice(0, 50);
}

/** Sentry's crontab has five fields: a six-field cron (seconds first) loses its seconds. */
export function monitorConfig(cron: string): MonitorConfig {
  const fields = cron.trim().split(/\s+/);
  const value = (fields.length === 6 ? fields.slice(1) : fields).join(' ');
  return { schedule: { type: 'crontab', value }, timezone: 'UTC', maxRuntime: MAX_RUNTIME_MINUTES };
}

function init(Sentry: SentryNode, config: SentryConfig, dsn: string, secrets: SecretRegistry): void {
  Sentry.init({
    dsn,
    ...(config.environment === undefined ? {} : { environment: config.environment }),
    release: config.release ?? `backer@${BACKER_VERSION}`,
    // None of the defaults: console, http and fetch breadcrumbs, request data, context lines,
    // local variables, modules, process and child-process hooks could carry argv, env or secrets.
    defaultIntegrations: false,
    integrations: [Sentry.linkedErrorsIntegration(), Sentry.dedupeIntegration()],
    maxBreadcrumbs: 0,
    beforeBreadcrumb: () => null,
    // No user, cookies, headers, bodies or query strings: Backer sends none, and none may slip in.
    dataCollection: { userInfo: false, cookies: false, httpHeaders: false, httpBodies: [], urlQueryParams: false },
    sendClientReports: false,
    enableRuntimeChannelInjection: false,
    beforeSend: (event) => scrubEvent(event, secrets),
    beforeSendTransaction: (event) => scrubEvent(event, secrets),
  });
}

/** A failed job as one Sentry event, grouped by mandate, kind and error code. */
function reportFailedJob(Sentry: SentryNode, job: AnyJob): void {
  const code = job.error?.code ?? 'INTERNAL';
  Sentry.captureMessage(`${job.kind} of ${job.mandate} failed: ${code}: ${job.error?.message ?? 'no error recorded'}`, {
    level: 'error',
    tags: { mandate: job.mandate, job_id: job.id, kind: job.kind, error_code: code, trigger: job.trigger },
    fingerprint: ['backer-job-failed', job.mandate, job.kind, code],
  });
}

/** Sentry Crons: in_progress when a backup starts, ok or error when it ends, one monitor per mandate. */
function cronsListener(Sentry: SentryNode, options: SentryOptions): (event: BackerEvent) => void {
  const open = new Map<string, { id: string; started: number }>();
  return (event) => {
    if (!('job' in event) || event.job.kind !== 'backup') return;
    const job = event.job;
    const slug = monitorSlug(job.mandate);
    if (event.type === 'job.started') {
      const cron = options.intervalOf(job.mandate);
      const id = Sentry.captureCheckIn({ monitorSlug: slug, status: 'in_progress' }, cron === undefined ? undefined : monitorConfig(cron));
      open.set(job.id, { id, started: Date.now() });
      return;
    }
    const ended = ['job.succeeded', 'job.failed', 'job.retrying', 'job.cancelled', 'job.interrupted'].includes(event.type);
    const checkIn = open.get(job.id);
    if (!ended || checkIn === undefined) return;
    open.delete(job.id);
    const status = event.type === 'job.succeeded' ? 'ok' : 'error';
    Sentry.captureCheckIn({ checkInId: checkIn.id, monitorSlug: slug, status, duration: (Date.now() - checkIn.started) / 1000 });
  };
}

/**
 * Starts reporting to Sentry (`sentry:` in the config): failed jobs, errors that escaped every
 * handler (src/daemon/crash-guard.ts), and with `crons: true` a check-in per backup run. The SDK
 * is loaded only here, so a daemon without `sentry:` never loads it.
 */
export async function startSentry(options: SentryOptions): Promise<SentryReporter> {
  const dsn = await readDsn(options.config, options.configFile);
  options.secrets.add(dsn);
  const Sentry = await import('@sentry/node');
  init(Sentry, options.config, dsn, options.secrets);
  const crons = options.config.crons ? cronsListener(Sentry, options) : null;
  const stopBus = options.events.on((event) => {
    try {
      if (event.type === 'job.failed') reportFailedJob(Sentry, event.job);
      crons?.(event);
    } catch (err) {
      options.logger.warn({ component: COMPONENT, err: describeError(err) }, 'reporting to Sentry failed');
    }
  });
  const stopCrash = onEscapedError((err, kind, mandate) => {
    Sentry.captureException(err, { level: 'fatal', tags: { kind: 'unexpected_error', escaped: kind, ...(mandate === undefined ? {} : { mandate }) } });
  });
  options.logger.info({ component: COMPONENT, crons: options.config.crons, environment: options.config.environment ?? null }, 'reporting failed jobs and unexpected errors to Sentry');
  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        stopBus();
        stopCrash();
        const flushed = await Sentry.close(FLUSH_MS);
        if (!flushed) options.logger.warn({ component: COMPONENT }, `Sentry did not take every pending event within ${FLUSH_MS / 1000}s`);
      })();
      return closing;
    },
  };
}
