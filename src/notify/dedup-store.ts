import type { Database } from 'better-sqlite3';
import type { Notification } from './events.js';

/** The events that open a problem: one notification when it starts, reminders while it lasts. */
export const PROBLEM_EVENTS = ['backup_failed', 'stale', 'verification_failed'] as const;
export type ProblemEvent = (typeof PROBLEM_EVENTS)[number];

/** A problem a destination was told about (or would have been, had it wanted the event). */
export interface OpenProblem {
  destination: string;
  mandate: string;
  event: ProblemEvent;
  since: string;
  /** null: not sent (the destination does not want this event, or its level). */
  last_sent_at: string | null;
  /** The latest notification of the problem: what a reminder repeats. */
  notification: Notification;
}

interface Row {
  destination: string;
  mandate: string;
  event: string;
  since: string;
  last_sent_at: string | null;
  notification: string;
}

const fromRow = (r: Row): OpenProblem => ({ ...r, event: r.event as ProblemEvent, notification: JSON.parse(r.notification) as Notification });

/** The open problems in state.db (table notify_open, migration 3): a restart neither repeats nor forgets them. */
export interface DedupStore {
  get(destination: string, mandate: string, event: ProblemEvent): OpenProblem | undefined;
  /** Inserts or replaces the problem. */
  put(problem: OpenProblem): void;
  /** Removes the problems of these events and returns them. */
  resolve(destination: string, mandate: string, events: readonly ProblemEvent[]): OpenProblem[];
  all(): OpenProblem[];
  /** Forgets the problems of mandates that no longer exist. */
  retainMandates(mandates: readonly string[]): void;
}

export function createDedupStore(db: Database): DedupStore {
  const get = db.prepare<[string, string, string], Row>('SELECT * FROM notify_open WHERE destination = ? AND mandate = ? AND event = ?');
  const put = db.prepare<[Row]>(
    'INSERT OR REPLACE INTO notify_open (destination, mandate, event, since, last_sent_at, notification) VALUES (@destination, @mandate, @event, @since, @last_sent_at, @notification)',
  );
  const remove = db.prepare<[string, string, string]>('DELETE FROM notify_open WHERE destination = ? AND mandate = ? AND event = ?');
  const all = db.prepare<[], Row>('SELECT * FROM notify_open ORDER BY since');
  return {
    get(destination, mandate, event) {
      const row = get.get(destination, mandate, event);
      return row === undefined ? undefined : fromRow(row);
    },
    put(p) {
      put.run({ ...p, notification: JSON.stringify(p.notification) });
    },
    resolve(destination, mandate, events) {
      return db.transaction(() =>
        events.flatMap((event) => {
          const row = get.get(destination, mandate, event);
          if (row === undefined) return [];
          remove.run(destination, mandate, event);
          return [fromRow(row)];
        }),
      )();
    },
    all: () => all.all().map(fromRow),
    retainMandates(mandates) {
      const keep = new Set(mandates);
      db.transaction(() => {
        for (const row of all.all()) if (!keep.has(row.mandate)) remove.run(row.destination, row.mandate, row.event);
      })();
    },
  };
}
