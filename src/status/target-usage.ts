import { describeError, errorCode } from '../errors.js';
import type { BackerEvent, EventBus } from '../events/bus.js';
import type { Logger } from '../logging/logger.js';
import { listBackups } from '../manifests/store.js';
import type { AnyJob } from '../queue/types.js';
import type { Target } from '../targets/types.js';
import type { TargetUsage, TargetUsageMonitor } from './types.js';
import { byCodeUnit } from '../util/compare.js';

/** Default: every target is listed again every 10 minutes. */
export const DEFAULT_USAGE_INTERVAL_MS = 600_000;
/** Several jobs ending at once on one target cause one listing. */
const DEFAULT_DEBOUNCE_MS = 2_000;

export interface TargetUsageOptions {
  targets: ReadonlyMap<string, Target>;
  events: EventBus;
  logger: Logger;
  /** Default: DEFAULT_USAGE_INTERVAL_MS. */
  intervalMs?: number;
  /** Which targets a mandate's jobs write to (backups; retention deletes there too). Default: all of them. */
  targetsOf?: (mandate: string) => readonly string[];
  /** Default: the system clock. */
  clock?: () => Date;
  /** A listing after a job waits this long for other jobs ending on the same target. Default: 2 s. */
  debounceMs?: number;
}

const FINISHED: ReadonlySet<BackerEvent['type']> = new Set(['job.succeeded', 'job.failed', 'job.cancelled', 'job.interrupted']);

/** The targets a finished job may have written to or deleted from; backups and their retention only. */
function touchedTargets(job: AnyJob, all: readonly string[], targetsOf: (mandate: string) => readonly string[]): string[] {
  if (job.kind !== 'backup') return [];
  const fromResult = (job.result as { targets?: { target?: unknown }[] } | null)?.targets?.map((t) => t.target).filter((t): t is string => typeof t === 'string');
  if (fromResult !== undefined && fromResult.length > 0) return fromResult.filter((t) => all.includes(t));
  try {
    return targetsOf(job.mandate).filter((t) => all.includes(t));
  } catch {
    // The mandate is gone (a container removed): list every target rather than none.
    return [...all];
  }
}

/**
 * Counts and bytes per target (src/status/types.ts TargetUsage) from its manifests: listed at
 * start, after each backup job that ended on the target (debounced: a backup and its retention
 * list once), and every `intervalMs`. A target that cannot be listed is unhealthy with the error;
 * the figures of its last good listing stay. Never throws out of a listing.
 */
export function createTargetUsage(options: TargetUsageOptions): TargetUsageMonitor {
  const { targets, events, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const names = [...targets.keys()];
  const targetsOf = options.targetsOf ?? (() => names);
  const usage = new Map<string, TargetUsage>(
    [...targets.values()].map((t) => [t.name, { target: t.name, type: t.type, backups: 0, bytes: 0, problems: 0, healthy: true, error: null, checked_at: null }]),
  );
  const inflight = new Map<string, Promise<void>>();
  const pending = new Map<string, NodeJS.Timeout>();
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let closed = false;

  const listOne = async (target: Target): Promise<void> => {
    const previous = usage.get(target.name);
    if (previous === undefined) return;
    try {
      const listing = await listBackups(target);
      const bytes = listing.backups.reduce((sum, b) => sum + b.manifest.artifact.size, 0);
      usage.set(target.name, { ...previous, backups: listing.backups.length, bytes, problems: listing.problems.length, healthy: true, error: null, checked_at: clock().toISOString() });
      if (!previous.healthy) logger.info({ target: target.name }, `target ${target.name} can be listed again`);
    } catch (err) {
      const error = { code: errorCode(err), message: describeError(err) };
      if (previous.healthy || previous.error?.message !== error.message) logger.warn({ target: target.name, err: error.message }, `target ${target.name} cannot be listed`);
      // checked_at stays: it dates the figures, which are those of the last good listing.
      usage.set(target.name, { ...previous, healthy: false, error });
    }
  };

  /** One listing per target at a time: a refresh while one runs waits for it, then lists again. */
  const refreshOne = (target: Target): Promise<void> => {
    const running = inflight.get(target.name) ?? Promise.resolve();
    const next = running.then(() => (closed ? undefined : listOne(target))).finally(() => {
      if (inflight.get(target.name) === next) inflight.delete(target.name);
    });
    inflight.set(target.name, next);
    return next;
  };

  const refresh = async (name?: string): Promise<void> => {
    const chosen = [...targets.values()].filter((t) => name === undefined || t.name === name);
    await Promise.all(chosen.map(refreshOne));
  };

  const later = (name: string): void => {
    if (closed || pending.has(name)) return;
    const t = setTimeout(() => {
      pending.delete(name);
      void refresh(name);
    }, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    t.unref();
    pending.set(name, t);
  };

  const onEvent = (event: BackerEvent): void => {
    if (!FINISHED.has(event.type) || !('job' in event)) return;
    for (const name of touchedTargets(event.job, names, targetsOf)) later(name);
  };

  return {
    current: () => [...usage.values()].sort((a, b) => byCodeUnit(a.target, b.target)),
    get: (name) => usage.get(name),
    refresh,
    start() {
      if (timer !== undefined || closed) return;
      unsubscribe = events.on(onEvent);
      void refresh();
      timer = setInterval(() => void refresh(), options.intervalMs ?? DEFAULT_USAGE_INTERVAL_MS);
      timer.unref();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
      unsubscribe?.();
      await Promise.all([...inflight.values()]);
    },
  };
}
