import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import type { BackerConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { SourceRegistry } from '../sources/registry.js';
import { performance } from 'node:perf_hooks';
import { buildSnapshot, type InspectCache, type ParseCache, type Snapshot, type SnapshotTimings } from './snapshot.js';

export interface DiscoveryOptions {
  docker: Docker | null;
  config: BackerConfig;
  configFile: string;
  sources: SourceRegistry;
  logger: Logger;
  onSnapshot(snapshot: Snapshot): void;
  /** Full re-list even without events, in ms. Default 60000. */
  resyncMs?: number;
  /** First retry after Docker could not be reached, in ms, doubling up to retryMaxMs. Default 5000. */
  retryBaseMs?: number;
  /** Longest retry interval, in ms. Default 300000 (5 min). */
  retryMaxMs?: number;
}

export interface Discovery {
  start(): Promise<void>;
  current(): Snapshot;
  /** Re-lists now; resolves with the (possibly unchanged) snapshot. */
  refresh(): Promise<Snapshot>;
  close(): Promise<void>;
}

const RELEVANT = new Set(['create', 'start', 'stop', 'die', 'destroy', 'rename', 'update', 'pause', 'unpause']);

/**
 * Level-triggered: any container event schedules a re-list of all containers; only the container
 * the event names is inspected again (the others' environments are kept by id). The periodic
 * resync re-lists without inspecting again what it knows (an environment cannot change under the
 * same container id), so an idle daemon with 500 containers makes one list call per resync, not
 * 500 inspections; refresh() (SIGHUP) and every event-stream gap re-inspect all. Identical
 * snapshots are dropped. Bad labels are reported once per change and never stop the daemon.
 */
export function createDiscovery(options: DiscoveryOptions): Discovery {
  let snapshot: Snapshot = { mandates: [], problems: [], docker_error: null, skipped: [] };
  let fingerprint = '';
  let events: Readable | undefined;
  let timer: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let closed = false;
  let inflight: Promise<Snapshot> | undefined;
  let again = false;
  const inspected: InspectCache = new Map();
  const parsed: ParseCache = new Map();
  /** The next re-list inspects every container again. */
  let full = true;
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;
  // Logged on changes only: without Docker, one line, not one every few seconds.
  let dockerState: 'unknown' | 'reachable' | 'unreachable' = 'unknown';
  const dockerDown = (err: string): void => {
    if (dockerState !== 'unreachable') options.logger.warn({ err }, 'Docker is not reachable; only static mandates without containers are available; retrying with backoff');
    dockerState = 'unreachable';
  };
  const dockerUp = (): void => {
    if (dockerState === 'unreachable') options.logger.info('Docker is reachable again');
    dockerState = 'reachable';
    // The re-list got through while the event subscription waits for its next try: try it now.
    if (retryTimer !== undefined && events === undefined && !closed) {
      clearTimeout(retryTimer);
      retryTimer = undefined;
      void subscribe();
    }
  };

  let firstSnapshot = true;
  /** The first snapshot's marks (start-up, issue 11) at info; later ones at debug. `at_ms`: since the process started. */
  const logTimings = (t: SnapshotTimings): void => {
    const round = (ms: number): number => Math.round(ms * 10) / 10;
    const fields = { list_ms: round(t.list_ms), inspect_ms: round(t.inspect_ms), inspected: t.inspected, parse_ms: round(t.parse_ms), parsed: t.parsed, at_ms: Math.round(performance.now()) };
    if (firstSnapshot) options.logger.info(fields, 'startup: first snapshot built');
    else options.logger.debug(fields, 'snapshot built');
    firstSnapshot = false;
  };

  const publish = (next: Snapshot): void => {
    const fp = JSON.stringify(next);
    if (fp === fingerprint) return;
    const previousProblems = new Set(snapshot.problems.map((p) => `${p.where}: ${p.message}`));
    fingerprint = fp;
    snapshot = next;
    for (const p of next.problems) {
      if (!previousProblems.has(`${p.where}: ${p.message}`)) options.logger.error({ where: p.where }, `${p.where}: ${p.message}`);
    }
    options.logger.info({ mandates: next.mandates.map((m) => m.name) }, 'mandates updated');
    options.onSnapshot(next);
  };

  const refresh = (): Promise<Snapshot> => {
    if (inflight) {
      again = true;
      return inflight;
    }
    inflight = (async () => {
      try {
        do {
          again = false;
          if (full) inspected.clear();
          full = false;
          const timings: SnapshotTimings = { list_ms: 0, inspect_ms: 0, inspected: 0, parse_ms: 0, parsed: 0 };
          const next = await buildSnapshot(options.docker, options.config, options.sources, options.configFile, undefined, inspected, parsed, timings);
          logTimings(timings);
          // With Docker disabled (docker null) nothing is said about it.
          if (options.docker && next.docker_error !== null) dockerDown(next.docker_error);
          else if (options.docker) dockerUp();
          publish(next);
        } while (again && !closed);
      } catch (err) {
        options.logger.error({ err: describeError(err) }, 'discovery failed');
      } finally {
        inflight = undefined;
      }
      return snapshot;
    })();
    return inflight;
  };

  const refreshAll = (): Promise<Snapshot> => {
    full = true;
    return refresh();
  };

  const schedule = (): void => {
    if (closed || debounce) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      void refresh();
    }, 250);
  };

  const retryLater = (): void => {
    if (closed || retryTimer !== undefined) return;
    const delay = Math.min((options.retryBaseMs ?? 5000) * 2 ** failures, options.retryMaxMs ?? 300_000);
    failures++;
    options.logger.debug({ retry_in_ms: delay }, 'subscribing to Docker events again later');
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void subscribe();
    }, delay);
    retryTimer.unref();
  };

  async function subscribe(): Promise<void> {
    if (closed || !options.docker || events !== undefined) return;
    try {
      const stream = (await options.docker.getEvents({ filters: { type: ['container'] } })) as unknown as Readable;
      events = stream;
      // Containers may have changed while no events came in: re-list after every gap.
      const gap = failures > 0;
      failures = 0;
      dockerUp();
      if (gap) {
        full = true;
        schedule();
      }
      stream.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line.trim()) continue;
          try {
            const event = JSON.parse(line) as { Action?: string; id?: string; Actor?: { ID?: string } };
            if (!event.Action || !RELEVANT.has(event.Action.split(':')[0] ?? '')) continue;
            const id = event.Actor?.ID ?? event.id;
            if (id) inspected.delete(id);
            else full = true;
            schedule();
          } catch {
            full = true;
            schedule();
          }
        }
      });
      const reconnect = (): void => {
        if (closed || events !== stream) return;
        events = undefined;
        retryLater();
        full = true;
        schedule();
      };
      stream.on('error', reconnect);
      stream.on('end', reconnect);
      stream.on('close', reconnect);
    } catch (err) {
      dockerDown(describeError(err));
      retryLater();
    }
  }

  return {
    async start() {
      await subscribe();
      await refreshAll();
      timer = setInterval(() => void refresh(), options.resyncMs ?? 60_000);
      timer.unref();
    },
    current: () => snapshot,
    refresh: refreshAll,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      if (retryTimer) clearTimeout(retryTimer);
      if (debounce) clearTimeout(debounce);
      const stream = events;
      events = undefined;
      stream?.destroy();
      await inflight;
    },
  };
}
