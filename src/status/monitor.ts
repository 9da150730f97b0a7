import { performance } from 'node:perf_hooks';
import type { Snapshot } from '../discovery/snapshot.js';
import { describeError } from '../errors.js';
import type { EventBus, BackerEvent } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import type { BackupResult } from '../pipeline/run-backup.js';
import type { Queue } from '../queue/queue.js';
import type { AnyJob } from '../queue/types.js';
import { computeHealth, expectedIntervalMs, type HealthInput } from './rules.js';
import type { SeenMandate, SeenStore } from './seen-store.js';
import { checkSize, SIZE_HISTORY } from './size.js';
import type { MandateHealth, StatusMonitor } from './types.js';
import { byCodeUnit } from '../util/compare.js';

/** Default `status.check_interval`: how often every mandate's status is computed again. */
export const DEFAULT_STATUS_TICK_MS = 60_000;
/** A schedule's expected interval is computed again after this long (a cron's gaps can vary over a day). */
const INTERVAL_CACHE_MS = 3_600_000;

export interface StatusMonitorOptions {
  queue: Pick<Queue, 'mandateStats' | 'page'>;
  /** Discovery's current snapshot: the mandates that run and the skipped ones. */
  discovery: { current(): Snapshot };
  events: EventBus;
  /** first_seen_at and the last announced status, kept across restarts (src/status/seen-store.ts). */
  seen: SeenStore;
  logger: Logger;
  /** Default: the system clock. */
  clock?: () => Date;
  /** Default: DEFAULT_STATUS_TICK_MS (one minute). */
  tickMs?: number;
}

const BACKUP_EVENTS: ReadonlySet<BackerEvent['type']> = new Set(['job.started', 'job.succeeded', 'job.failed', 'job.cancelled', 'job.interrupted', 'job.retrying', 'job.queued']);

/**
 * Keeps every mandate's health (src/status/types.ts) and announces changes as `mandate.status`.
 *
 * Computed at start() (after discovery's first snapshot), after every state change of a backup
 * job, on `mandates.changed` (a new discovery snapshot) and every `tickMs`: a mandate whose due
 * time passed while the daemon was down is therefore stale at start already.
 *
 * `mandate.status` is emitted when a mandate's status differs from the status last announced,
 * which is persisted in state.db (`mandate_seen.last_status`): a restart does not announce the
 * same status again, while a change that happened during the downtime (e.g. it went stale) is
 * announced once at start with `previous` = the status before the downtime. `previous` is null
 * only for a mandate this state.db never saw before (its first status, usually
 * `never_succeeded`): notifications should not treat that as a change worth telling.
 *
 * Also emits `mandate.size_anomaly` after a successful backup whose raw size is out of the
 * mandate's `min_size` / `size_change_alert` bounds (src/status/size.ts).
 */
export function createStatusMonitor(options: StatusMonitorOptions): StatusMonitor {
  const { queue, discovery, events, seen, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const tickMs = options.tickMs ?? DEFAULT_STATUS_TICK_MS;
  let health = new Map<string, MandateHealth>();
  const seenRows = new Map<string, SeenMandate>();
  const running = new Set<string>();
  const intervals = new Map<string, { at: number; ms: number | null }>();
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let started = false;
  let closed = false;
  let version = 0;

  const intervalOf = (cron: string | null, now: Date): number | null => {
    if (cron === null) return null;
    const cached = intervals.get(cron);
    if (cached !== undefined && now.getTime() - cached.at < INTERVAL_CACHE_MS) return cached.ms;
    const ms = expectedIntervalMs(cron, now);
    intervals.set(cron, { at: now.getTime(), ms });
    return ms;
  };

  const seenOf = (mandate: string, now: Date): SeenMandate => {
    const known = seenRows.get(mandate);
    if (known !== undefined) return known;
    const row = seen.touch(mandate, now);
    seenRows.set(mandate, row);
    return row;
  };

  /** Mandates seen for the first time: recorded in one transaction (500 containers at start). */
  const touchNew = (snapshot: Snapshot, now: Date): void => {
    const fresh = [...snapshot.mandates, ...snapshot.skipped].map((m) => m.name).filter((name) => !seenRows.has(name));
    if (fresh.length === 0) return;
    for (const row of seen.touchAll([...new Set(fresh)], now)) seenRows.set(row.mandate, row);
  };

  const inputs = (now: Date): HealthInput[] => {
    const snapshot = discovery.current();
    touchNew(snapshot, now);
    const base = (mandate: string): Pick<HealthInput, 'mandate' | 'stats' | 'first_seen_at' | 'running'> => ({
      mandate,
      stats: queue.mandateStats(mandate),
      first_seen_at: seenOf(mandate, now).first_seen_at,
      running: running.has(mandate),
    });
    const runs = snapshot.mandates.map((m): HealthInput => ({ ...base(m.name), skipped: null, interval: m.interval, max_age_ms: m.alerts.max_age_ms }));
    const skipped = snapshot.skipped.map(
      (m): HealthInput => ({ ...base(m.name), skipped: m.problems.map((p) => `${p.where}: ${p.message}`).join('; '), interval: null, max_age_ms: null }),
    );
    return [...runs, ...skipped];
  };

  /** Persists every changed status in one transaction, then logs and emits each `mandate.status`. */
  const announce = (all: Iterable<MandateHealth>, now: Date): void => {
    const changed = [...all].flatMap((h) => {
      const row = seenOf(h.mandate, now);
      return row.last_status === h.status ? [] : [{ h, row }];
    });
    if (changed.length === 0) return;
    seen.setStatuses(changed.map(({ h }) => ({ mandate: h.mandate, status: h.status })), now);
    for (const { h, row } of changed) {
      const previous = row.last_status;
      seenRows.set(h.mandate, { ...row, last_status: h.status, status_changed_at: now.toISOString() });
      const level = h.status === 'ok' || h.status === 'never_succeeded' ? 'info' : 'warn';
      logger[level]({ mandate: h.mandate, status: h.status, previous, reason: h.reason }, `mandate ${h.mandate} is ${h.status}${h.reason === null ? '' : `: ${h.reason}`}`);
      events.emit({ type: 'mandate.status', mandate: h.mandate, status: h.status, previous, health: h });
    }
  };

  const recompute = (): void => {
    if (!started || closed) return;
    try {
      const now = clock();
      const next = new Map<string, MandateHealth>();
      for (const input of inputs(now)) {
        // A name both run and skipped cannot happen (discovery keeps one); the running one wins.
        if (next.has(input.mandate)) continue;
        next.set(input.mandate, computeHealth(input, intervalOf(input.interval, now), now));
      }
      health = next;
      version++;
      announce(next.values(), now);
    } catch (err) {
      // Called from event listeners: an error here must never reach the queue that emitted the event.
      logger.error({ err: describeError(err) }, 'mandate status could not be computed');
    }
  };

  const sizeAnomaly = (job: AnyJob): void => {
    const spec = discovery.current().mandates.find((m) => m.name === job.mandate);
    const raw = (job.result as BackupResult | null)?.raw_size;
    if (spec === undefined || typeof raw !== 'number') return;
    const { min_size_bytes, size_change_percent } = spec.alerts;
    if (min_size_bytes === null && size_change_percent === null) return;
    const earlier = queue
      .page({ mandate: job.mandate, kind: 'backup', state: 'succeeded', limit: SIZE_HISTORY + 1 })
      .jobs.filter((j) => j.id !== job.id)
      .map((j) => (j.result as BackupResult | null)?.raw_size)
      .filter((s): s is number => typeof s === 'number');
    const check = checkSize(raw, earlier, spec.alerts);
    if (check.reason === null) return;
    logger.warn({ mandate: job.mandate, job_id: job.id, raw_bytes: raw, median_bytes: check.median_bytes }, `backup size anomaly of ${job.mandate}: ${check.reason}`);
    events.emit({ type: 'mandate.size_anomaly', mandate: job.mandate, job_id: job.id, raw_bytes: raw, median_bytes: check.median_bytes, min_bytes: min_size_bytes, reason: check.reason });
  };

  const onEvent = (event: BackerEvent): void => {
    if (event.type === 'mandates.changed') return recompute();
    if (!('job' in event) || event.job.kind !== 'backup' || !BACKUP_EVENTS.has(event.type)) return;
    if (event.type === 'job.started') running.add(event.job.mandate);
    else running.delete(event.job.mandate);
    if (event.type === 'job.succeeded') {
      try {
        sizeAnomaly(event.job);
      } catch (err) {
        logger.error({ err: describeError(err), mandate: event.job.mandate }, 'backup size could not be checked');
      }
    }
    recompute();
  };

  return {
    current: () => [...health.values()].sort((a, b) => byCodeUnit(a.mandate, b.mandate)),
    get: (mandate) => health.get(mandate),
    version: () => version,
    start() {
      if (started || closed) return;
      started = true;
      for (const row of seen.all()) seenRows.set(row.mandate, row);
      for (const job of queue.page({ kind: 'backup', state: 'running', limit: 1000 }).jobs) running.add(job.mandate);
      unsubscribe = events.on(onEvent);
      const t0 = performance.now();
      recompute();
      // The start-up's mark (issue 11): at_ms since the process started.
      logger.info({ mandates: health.size, ms: Math.round((performance.now() - t0) * 10) / 10, at_ms: Math.round(performance.now()) }, 'startup: first status computed');
      timer = setInterval(recompute, tickMs);
      timer.unref();
    },
    close() {
      closed = true;
      clearInterval(timer);
      unsubscribe?.();
    },
  };
}
