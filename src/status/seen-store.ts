import type { StateDb } from '../state/db.js';
import { MANDATE_STATUSES, type MandateStatus } from './types.js';
import { byCodeUnit } from '../util/compare.js';

/** One mandate as the status monitor remembers it across restarts (table `mandate_seen`, migration 2). */
export interface SeenMandate {
  mandate: string;
  first_seen_at: string;
  /** The status last announced (`mandate.status`), null before the first. */
  last_status: MandateStatus | null;
  status_changed_at: string | null;
}

/** When each mandate was first seen and its last announced status: in state.db, or in memory. */
export interface SeenStore {
  all(): SeenMandate[];
  /** Records `mandate` as seen at `at` unless it is known; returns the stored row. */
  touch(mandate: string, at: Date): SeenMandate;
  /** touch() for many mandates at once (one transaction: 500 new mandates at start are one write, not 500); the stored rows in the order given. */
  touchAll(mandates: readonly string[], at: Date): SeenMandate[];
  setStatus(mandate: string, status: MandateStatus, at: Date): void;
  /** setStatus() for many mandates at once (one transaction). */
  setStatuses(changes: readonly { mandate: string; status: MandateStatus }[], at: Date): void;
}

interface Row {
  mandate: string;
  first_seen_at: string;
  last_status: string | null;
  status_changed_at: string | null;
}

const toStatus = (value: string | null): MandateStatus | null => (MANDATE_STATUSES as readonly string[]).includes(value ?? '') ? (value as MandateStatus) : null;

const fromRow = (row: Row): SeenMandate => ({ ...row, last_status: toStatus(row.last_status) });

/**
 * The rows stay when a mandate disappears (a container removed for an upgrade keeps its clock when
 * it comes back); they are few (one per mandate name ever seen).
 */
export function createSqliteSeenStore(state: StateDb): SeenStore {
  const { db } = state;
  const selectAll = db.prepare<[], Row>('SELECT mandate, first_seen_at, last_status, status_changed_at FROM mandate_seen ORDER BY mandate');
  const selectOne = db.prepare<[string], Row>('SELECT mandate, first_seen_at, last_status, status_changed_at FROM mandate_seen WHERE mandate = ?');
  const insert = db.prepare<[string, string]>('INSERT INTO mandate_seen (mandate, first_seen_at) VALUES (?, ?) ON CONFLICT (mandate) DO NOTHING');
  const update = db.prepare<[string, string, string]>('UPDATE mandate_seen SET last_status = ?, status_changed_at = ? WHERE mandate = ?');
  const stored = (mandate: string, at: Date): SeenMandate => {
    const row = selectOne.get(mandate);
    return row === undefined ? { mandate, first_seen_at: at.toISOString(), last_status: null, status_changed_at: null } : fromRow(row);
  };
  const touchAll = db.transaction((mandates: readonly string[], at: Date): SeenMandate[] => {
    for (const mandate of mandates) insert.run(mandate, at.toISOString());
    return mandates.map((mandate) => stored(mandate, at));
  });
  return {
    all: () => selectAll.all().map(fromRow),
    touch(mandate, at) {
      insert.run(mandate, at.toISOString());
      return stored(mandate, at);
    },
    touchAll: (mandates, at) => touchAll(mandates, at),
    setStatus(mandate, status, at) {
      update.run(status, at.toISOString(), mandate);
    },
    setStatuses: db.transaction((changes: readonly { mandate: string; status: MandateStatus }[], at: Date) => {
      for (const { mandate, status } of changes) update.run(status, at.toISOString(), mandate);
    }),
  };
}

/** For one-shot commands and unit tests. */
export function createMemorySeenStore(): SeenStore {
  const rows = new Map<string, SeenMandate>();
  const setStatus = (mandate: string, status: MandateStatus, at: Date): void => {
    const row = rows.get(mandate);
    if (row !== undefined) rows.set(mandate, { ...row, last_status: status, status_changed_at: at.toISOString() });
  };
  const touch = (mandate: string, at: Date): SeenMandate => {
    const row = rows.get(mandate) ?? { mandate, first_seen_at: at.toISOString(), last_status: null, status_changed_at: null };
    rows.set(mandate, row);
    return { ...row };
  };
  return {
    all: () => [...rows.values()].sort((a, b) => byCodeUnit(a.mandate, b.mandate)),
    touch,
    touchAll: (mandates, at) => mandates.map((m) => touch(m, at)),
    setStatus,
    setStatuses: (changes, at) => {
      for (const { mandate, status } of changes) setStatus(mandate, status, at);
    },
  };
}
