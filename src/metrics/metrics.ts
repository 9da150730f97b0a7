import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Discovery } from '../discovery/discovery.js';
import type { EventBus, BackerEvent } from '../events/bus.js';
import type { Queue } from '../queue/queue.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ReadinessProbe, StatusMonitor, TargetUsageMonitor } from '../status/types.js';
import { BACKER_VERSION } from '../util/version.js';
import { defineMetrics, type MetricSet } from './definitions.js';
import { updateMandateGauges } from './mandate-gauges.js';

export interface MetricsDeps {
  queue: Pick<Queue, 'stats' | 'mandateStats' | 'page'>;
  discovery: Pick<Discovery, 'current'>;
  scheduler: Pick<Scheduler, 'intervalMs'>;
  events: EventBus;
  /** Mandate health (src/status): statuses, max age, first seen. */
  status: Pick<StatusMonitor, 'get'>;
  /** Counts, bytes and health per target (src/status). */
  usage: Pick<TargetUsageMonitor, 'current'>;
  /** The daemon's readiness (`backer_ready`). */
  readiness: ReadinessProbe;
}

/** The daemon's Prometheus metrics (own registry, not prom-client's global one). */
export interface Metrics {
  readonly registry: Registry;
  /** The exposition format's content type, for the HTTP answer. */
  readonly contentType: string;
  /** The exposition text: gauges read the current state now, counters and histograms come from job events. */
  text(): Promise<string>;
  /** Stops listening to the bus. Idempotent. */
  close(): void;
}

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

const TERMINAL = new Set<BackerEvent['type']>(['job.succeeded', 'job.failed', 'job.cancelled', 'job.interrupted']);

function onEvent(set: MetricSet, event: BackerEvent): void {
  if (event.type === 'job.started') {
    if (event.job.wait_ms !== null) set.jobWait.observe({ kind: event.job.kind }, event.job.wait_ms / 1000);
    return;
  }
  if (!TERMINAL.has(event.type) || !('job' in event)) return;
  const { job } = event;
  if (job.kind === 'backup') {
    set.backupsTotal.inc({ mandate: job.mandate, result: job.state });
    if (job.started_at !== null && job.finished_at !== null) {
      set.duration.observe({ mandate: job.mandate }, Math.max(0, Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000);
    }
  } else if (job.kind === 'restore') {
    set.restoreTotal.inc({ mandate: job.mandate, result: job.state });
  }
}

function updateTargets(set: MetricSet, deps: MetricsDeps): void {
  const usage = deps.usage.current();
  for (const metric of [set.stored, set.targetBytes, set.targetHealthy]) metric.reset();
  for (const t of usage) {
    set.targetHealthy.set({ target: t.target }, t.healthy ? 1 : 0);
    // Before the first good listing nothing is known: no figures rather than zeros that look real.
    if (t.checked_at === null) continue;
    set.stored.set({ target: t.target }, t.backups);
    set.targetBytes.set({ target: t.target }, t.bytes);
  }
}

async function updateDaemon(set: MetricSet, deps: MetricsDeps): Promise<void> {
  const stats = deps.queue.stats();
  set.queueJobs.set({ state: 'queued' }, stats.queued);
  set.queueJobs.set({ state: 'retrying' }, stats.retrying);
  set.queueJobs.set({ state: 'running' }, stats.running);
  set.ready.set((await deps.readiness.check()).ready ? 1 : 0);
  set.info.set({ version: BACKER_VERSION }, 1);
}

export function createMetrics(deps: MetricsDeps): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which `promtool check metrics` refuses; the same counts by type remain
  // (nodejs_active_handles{type}, nodejs_active_requests{type}, nodejs_active_resources{type}).
  for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  const set = defineMetrics(registry);
  const off = deps.events.on((event) => onEvent(set, event));
  return {
    registry,
    contentType: registry.contentType,
    async text() {
      updateMandateGauges(set, deps, Date.now());
      updateTargets(set, deps);
      await updateDaemon(set, deps);
      return registry.metrics();
    },
    close: off,
  };
}
