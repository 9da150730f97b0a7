import type { BackerEvent, EventBus } from '../events/bus.js';
import type { Logger, SecretRegistry } from '../logging/logger.js';
import type { StateDb } from '../state/db.js';
import { compileNameGlob } from './glob.js';
import { createDedupStore, type DedupStore, type OpenProblem, type ProblemEvent } from './dedup-store.js';
import { DEFAULT_RETRY, deliver, destinationSecrets, liveDestination, type LiveDestination, type RetryPolicy } from './delivery.js';
import { levelAtLeast, type Notification } from './events.js';
import { actionsFor, FAILURE_PROBLEMS, type Action } from './mapping.js';
import type { NotificationConfig } from './schema.js';
import { buildNotification, type TemplateContext } from './templates.js';

export interface NotifierOptions {
  config: { notifications: readonly NotificationConfig[] };
  events: EventBus;
  secrets: SecretRegistry;
  logger: Logger;
  state: StateDb;
  clock?: () => Date;
  /** Default: 3 tries, 2s then 4s apart. */
  retry?: RetryPolicy;
  /** How often reminders are looked for. Default: 1 minute. */
  sweepMs?: number;
  /** The targets of a mandate, for events that do not name them (stale). */
  mandateTargets?: (mandate: string) => string[];
}

export interface Notifier {
  start(): void;
  /** Waits (a few seconds at most) for deliveries under way, then aborts the rest. Idempotent. */
  close(): Promise<void>;
  /** Resolves when no delivery is under way (tests). */
  idle(): Promise<void>;
}

interface Destination extends LiveDestination {
  mandates: RegExp[] | null;
}

const CLOSE_GRACE_MS = 5000;

function matchesMandate(d: Destination, mandate: string | null): boolean {
  return d.mandates === null || (mandate !== null && d.mandates.some((re) => re.test(mandate)));
}

function wants(d: Destination, n: Notification): boolean {
  return n.event !== 'test' && d.config.events.includes(n.event) && levelAtLeast(n.level, d.config.min_level) && matchesMandate(d, n.mandate);
}

export function createNotifier(options: NotifierOptions): Notifier {
  const clock = options.clock ?? (() => new Date());
  const retry = options.retry ?? DEFAULT_RETRY;
  const logger = options.logger.child({ component: 'notify' });
  const targets = options.mandateTargets ?? (() => []);
  const destinations: Destination[] = options.config.notifications.map((c) => ({ ...liveDestination(c), mandates: c.mandates?.map(compileNameGlob) ?? null }));
  for (const c of options.config.notifications) for (const s of destinationSecrets(c)) options.secrets.add(s);
  const store: DedupStore = createDedupStore(options.state.db);
  const abort = new AbortController();
  const chains = new Map<string, Promise<void>>();
  let unsubscribe: (() => void) | null = null;
  let sweep: NodeJS.Timeout | null = null;
  let closing: Promise<void> | undefined;

  /** One queue per destination: its messages arrive in order (failed before recovered), never blocking anything else. */
  function send(d: Destination, n: Notification): void {
    if (abort.signal.aborted) return;
    const previous = chains.get(d.config.name) ?? Promise.resolve();
    const next = previous
      .then(() => deliver(d, n, retry, logger, abort.signal))
      .then(
        () => undefined,
        (err: unknown) => logger.error({ err, destination: d.config.name }, 'notification delivery failed unexpectedly'),
      );
    chains.set(d.config.name, next);
    void next.finally(() => {
      if (chains.get(d.config.name) === next) chains.delete(d.config.name);
    });
  }

  function build(d: Destination, ctx: TemplateContext): Notification {
    return buildNotification(ctx, ctx.event === 'test' ? {} : d.config.templates[ctx.event]);
  }

  function oneShot(ctx: TemplateContext): void {
    for (const d of destinations) {
      const n = build(d, ctx);
      if (wants(d, n)) send(d, n);
    }
  }

  function isDue(d: Destination, p: OpenProblem, now: Date): boolean {
    return p.last_sent_at === null || now.getTime() - Date.parse(p.last_sent_at) >= d.config.repeat;
  }

  /** The first occurrence is sent; later ones only as a reminder once `repeat` has passed. */
  function problem(ctx: TemplateContext, mandate: string, event: ProblemEvent): void {
    const now = clock();
    for (const d of destinations) {
      if (!matchesMandate(d, mandate)) continue;
      const open = store.get(d.config.name, mandate, event);
      const n = build(d, { ...ctx, reminder: open !== undefined });
      const sending = wants(d, n) && (open === undefined || isDue(d, open, now));
      store.put({ destination: d.config.name, mandate, event, since: open?.since ?? now.toISOString(), last_sent_at: sending ? now.toISOString() : (open?.last_sent_at ?? null), notification: n });
      if (sending) send(d, n);
      else if (wants(d, n)) logger.debug({ destination: d.config.name, mandate, event }, 'notification not repeated before its reminder is due');
    }
  }

  /** Closes the problems; a destination that had a failure or staleness open hears of the recovery. */
  function resolve(mandate: string, events: readonly ProblemEvent[], ctx: TemplateContext | null): void {
    for (const d of destinations) {
      const closed = store.resolve(d.config.name, mandate, events);
      const failures = closed.filter((p) => FAILURE_PROBLEMS.includes(p.event));
      if (ctx === null || failures.length === 0) continue;
      const since = failures.map((p) => p.since).sort()[0] ?? '';
      const what = failures.map((p) => (p.event === 'stale' ? 'being stale' : 'failing')).join(' and ');
      const n = build(d, { ...ctx, event: 'backup_recovered', details: `${what} since ${since}` });
      if (wants(d, n)) send(d, n);
    }
  }

  function remind(): void {
    const now = clock();
    for (const p of store.all()) {
      const d = destinations.find((x) => x.config.name === p.destination);
      if (d === undefined || !wants(d, p.notification) || !isDue(d, p, now)) continue;
      const base = p.notification;
      const n: Notification = { ...base, reminder: true, at: now.toISOString(), title: base.reminder ? base.title : `Reminder: ${base.title}` };
      store.put({ ...p, last_sent_at: now.toISOString(), notification: n });
      send(d, n);
    }
  }

  function apply(action: Action): void {
    if (action.kind === 'once') oneShot(action.ctx);
    else if (action.kind === 'problem') problem(action.ctx, action.mandate, action.event);
    else if (action.kind === 'resolve') resolve(action.mandate, action.events, action.recovered);
    else store.retainMandates(action.mandates);
  }

  function guarded(e: BackerEvent): void {
    // A notification problem must never reach the emitter (the queue, the monitor).
    try {
      for (const action of actionsFor(e, clock().toISOString(), targets)) apply(action);
    } catch (err) {
      logger.error({ err, event: e.type }, 'notification handling failed');
    }
  }

  const idle = async (): Promise<void> => {
    while (chains.size > 0) await Promise.all([...chains.values()]);
  };

  return {
    start() {
      if (destinations.length === 0 || unsubscribe !== null) return;
      unsubscribe = options.events.on(guarded);
      sweep = setInterval(() => {
        try {
          remind();
        } catch (err) {
          logger.error({ err }, 'notification reminders failed');
        }
      }, options.sweepMs ?? 60_000);
      sweep.unref();
      logger.info({ destinations: destinations.map((d) => ({ name: d.config.name, url: d.redacted, events: d.config.events })) }, 'notifications ready');
    },
    idle,
    close() {
      closing ??= (async () => {
        unsubscribe?.();
        if (sweep !== null) clearInterval(sweep);
        const timer = new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref());
        await Promise.race([idle(), timer]);
        abort.abort();
        await idle();
      })();
      return closing;
    },
  };
}
