import { dirname } from 'node:path';
import { BackerError } from '../errors.js';
import type { StateDb } from './db.js';
import { currentOwner, ownerAlive, type ProcessOwner } from './owner.js';

const LOCK_KEY = 'daemon_owner';

/** A stable string naming a process, for job leases: `host:pid:start`. */
export function ownerKey(owner: ProcessOwner): string {
  return `${owner.host}:${owner.pid}:${owner.start ?? '-'}`;
}

function parseOwner(text: string): ProcessOwner | null {
  try {
    const value = JSON.parse(text) as Partial<ProcessOwner>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string') return null;
    return { pid: value.pid, host: value.host, start: typeof value.start === 'string' ? value.start : null };
  } catch {
    return null;
  }
}

/** The daemon recorded as the data_dir's user, whether alive or not (null when none is). */
export function recordedOwner(state: StateDb): ProcessOwner | null {
  const row = state.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(LOCK_KEY);
  return row ? parseOwner(row.value) : null;
}

/** The daemon that uses the data_dir now: the recorded owner when that process still runs. */
export function liveOwner(state: StateDb): ProcessOwner | null {
  const owner = recordedOwner(state);
  return owner !== null && ownerAlive(owner) ? owner : null;
}

/** STATE_LOCKED: `owner` (alive) uses the data_dir whose state.db is at `path`. */
export function lockedError(path: string, owner: ProcessOwner): BackerError {
  return new BackerError('STATE_LOCKED', `another Backer daemon (pid ${owner.pid}) uses data_dir ${dirname(path)}`, {
    component: 'state',
    details: { path, pid: owner.pid, host: owner.host },
    permanent: true,
  });
}

/**
 * Records `owner` as the daemon of this data_dir. Refused (STATE_LOCKED) while another owner that
 * is still alive holds it; the record of a dead one (kill -9, a crash) is taken over.
 */
export function claimDataDir(state: StateDb, owner: ProcessOwner = currentOwner()): void {
  state.db
    .transaction(() => {
      const held = recordedOwner(state);
      if (held !== null && ownerKey(held) !== ownerKey(owner) && ownerAlive(held)) throw lockedError(state.path, held);
      state.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(LOCK_KEY, JSON.stringify(owner));
    })
    .immediate();
}

/** Removes the record when it names `owner` (a successor's record is left alone). Idempotent. */
export function releaseDataDir(state: StateDb, owner: ProcessOwner = currentOwner()): void {
  if (!state.db.open) return;
  state.db
    .transaction(() => {
      const held = recordedOwner(state);
      if (held !== null && ownerKey(held) === ownerKey(owner)) state.db.prepare('DELETE FROM meta WHERE key = ?').run(LOCK_KEY);
    })
    .immediate();
}
