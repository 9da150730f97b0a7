import { z } from '@hono/zod-openapi';
import { BackerError } from '../errors.js';
import type { BackerEvent, EventBus } from '../events/bus.js';
import type { ApiDeps } from './app.js';
import { defineRoute, type ApiApp, type ApiContext } from './route.js';
import { errors } from './schemas.js';

/**
 * `GET /v1/events`: every BackerEvent of the daemon's bus as server-sent events (`id:` increasing,
 * `event:` its type, `data:` its JSON scrubbed of secrets), for the CLI and the web UI. Nothing is
 * replayed: a client that reconnects reads the current state from the other routes.
 */

/** A comment line every so often keeps proxies from closing an idle stream. */
export const PING_INTERVAL_MS = 15_000;
/** `job.progress` at most this often per job; the newest one waiting is sent when the time comes. */
export const PROGRESS_INTERVAL_MS = 500;
/** Events a client may fall behind by before its stream is closed (a stuck client must not grow the daemon's memory). */
export const MAX_BACKLOG = 10_000;

export interface EventStreamOptions {
  bus: EventBus;
  scrub: (text: string) => string;
  /** Ids increase across every stream of this daemon. */
  nextId: () => number;
  /** The request's signal: aborted when the client goes away. */
  signal: AbortSignal;
  pingMs?: number;
  progressMs?: number;
}

/** The job an event concerns (null for mandate events). */
function jobOf(event: BackerEvent): string | null {
  if (event.type === 'job.progress') return event.job_id;
  if ('job' in event) return event.job.id;
  return null;
}

/** Passes events through, `job.progress` at most once per `intervalMs` per job (the newest one waiting is sent late). */
export function createProgressThrottle(send: (event: BackerEvent) => void, intervalMs: number): { push(event: BackerEvent): void; close(): void } {
  const last = new Map<string, number>();
  const waiting = new Map<string, { event: BackerEvent; timer: NodeJS.Timeout }>();
  const flush = (job: string): void => {
    const w = waiting.get(job);
    if (!w) return;
    clearTimeout(w.timer);
    waiting.delete(job);
    last.set(job, Date.now());
    send(w.event);
  };
  return {
    push(event) {
      const job = jobOf(event);
      if (event.type !== 'job.progress' || job === null) {
        // Whatever came before a job's next event is sent first, so that order holds.
        if (job !== null) {
          flush(job);
          if (event.type !== 'job.started' && event.type !== 'job.queued') last.delete(job);
        }
        send(event);
        return;
      }
      const since = Date.now() - (last.get(job) ?? 0);
      const pending = waiting.get(job);
      if (pending) {
        pending.event = event;
        return;
      }
      if (since >= intervalMs) {
        last.set(job, Date.now());
        send(event);
        return;
      }
      waiting.set(job, { event, timer: setTimeout(() => flush(job), intervalMs - since) });
    },
    close() {
      for (const w of waiting.values()) clearTimeout(w.timer);
      waiting.clear();
      last.clear();
    },
  };
}

/** One client's stream: subscribes to the bus, and unsubscribes (listener, timers) when the client goes or the stream is cancelled. */
export function eventStream(options: EventStreamOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let release = (): void => undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true;
        const write = (text: string): void => {
          if (!open) return;
          if ((controller.desiredSize ?? 0) <= -MAX_BACKLOG) {
            release();
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(text));
        };
        const send = (event: BackerEvent): void => write(`id: ${options.nextId()}\nevent: ${event.type}\ndata: ${options.scrub(JSON.stringify(event))}\n\n`);
        const throttle = createProgressThrottle(send, options.progressMs ?? PROGRESS_INTERVAL_MS);
        const off = options.bus.on((event) => throttle.push(event));
        const ping = setInterval(() => write(': ping\n\n'), options.pingMs ?? PING_INTERVAL_MS);
        release = () => {
          if (!open) return;
          open = false;
          off();
          throttle.close();
          clearInterval(ping);
          options.signal.removeEventListener('abort', release);
        };
        options.signal.addEventListener('abort', release, { once: true });
        if (options.signal.aborted) release();
        // Sent at once: the client knows it is subscribed (and proxies flush the headers).
        write(': connected\n\n');
      },
      cancel() {
        release();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 1 }),
  );
}

const eventsRoute = defineRoute('read', {
  method: 'get',
  path: '/v1/events',
  summary: 'Server-sent events: job.*, job.progress (at most 2 per second per job), mandate.status, mandate.size_anomaly, mandates.changed',
  request: { query: z.object({}).strict() },
  responses: {
    200: {
      content: { 'text/event-stream': { schema: z.string().openapi({ description: '`id:` increasing, `event:` the type, `data:` the event as JSON; `: ping` every 15 s' }) } },
      description: 'The event stream (never ends while the daemon runs)',
    },
    ...errors(400, 401, 403, 503),
  },
});

export function registerEventRoutes(app: ApiApp, deps: ApiDeps): void {
  let id = 0;
  app.openapi(eventsRoute, (c: ApiContext) => {
    const bus = deps.events;
    if (bus === undefined) throw new BackerError('INTERNAL', 'this API has no event bus', { component: 'api' });
    const body = eventStream({ bus, scrub: (t) => deps.services.secrets.scrub(t), nextId: () => ++id, signal: c.req.raw.signal });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } });
  });
}
