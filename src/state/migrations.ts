import type { Database } from 'better-sqlite3';

/** One step of the schema: run once, in a transaction that also sets `PRAGMA user_version`. */
export interface Migration {
  version: number;
  name: string;
  up(db: Database): void;
}

const v1: Migration = {
  version: 1,
  name: 'jobs, job events, mandate stats, schedule fires, meta',
  up(db) {
    db.exec(`
      CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        mandate TEXT NOT NULL,
        params TEXT,
        progress TEXT,
        trigger TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        not_before TEXT,
        wait_ms INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        error TEXT,
        result TEXT,
        lease_owner TEXT,
        lease_until TEXT
      );
      CREATE INDEX jobs_state ON jobs (state);
      CREATE INDEX jobs_mandate_created ON jobs (mandate, created_at);
      CREATE INDEX jobs_created ON jobs (created_at, seq);
      CREATE INDEX jobs_finished ON jobs (finished_at);
      CREATE TABLE job_events (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        type TEXT NOT NULL,
        message TEXT,
        PRIMARY KEY (job_id, seq)
      );
      CREATE TABLE mandate_stats (
        mandate TEXT PRIMARY KEY,
        last_success_at TEXT,
        last_failure_at TEXT,
        last_error TEXT,
        successes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        last_duration_ms INTEGER,
        avg_duration_ms INTEGER,
        last_raw_bytes INTEGER,
        last_stored_bytes INTEGER
      );
      CREATE TABLE schedule_fires (
        mandate TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (mandate, kind, at)
      );
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `);
  },
};

/** The status monitor (src/status/seen-store.ts): when each mandate was first seen, its last announced status. */
const v2: Migration = {
  version: 2,
  name: 'mandate status: first seen, last status',
  up(db) {
    db.exec(`
      CREATE TABLE mandate_seen (
        mandate TEXT PRIMARY KEY,
        first_seen_at TEXT NOT NULL,
        last_status TEXT,
        status_changed_at TEXT
      );
    `);
  },
};

/**
 * Notifications (src/notify/dedup-store.ts): the problems (backup_failed, stale, verification_failed)
 * each destination was told about per mandate, so a restart neither repeats nor forgets them.
 */
const v3: Migration = {
  version: 3,
  name: 'notifications: open problems per destination and mandate',
  up(db) {
    db.exec(`
      CREATE TABLE notify_open (
        destination TEXT NOT NULL,
        mandate TEXT NOT NULL,
        event TEXT NOT NULL,
        since TEXT NOT NULL,
        last_sent_at TEXT,
        notification TEXT NOT NULL,
        PRIMARY KEY (destination, mandate, event)
      );
    `);
  },
};

/** Ordered by version; a version is never changed once released, only followed by a new one. */
export const MIGRATIONS: readonly Migration[] = [v1, v2, v3];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Runs every migration newer than the database's user_version, each in its own transaction. The
 * version is read inside the (immediate) transaction: two processes opening a new file at once
 * never run a migration twice.
 */
export function migrate(db: Database): number[] {
  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    const ran = db
      .transaction(() => {
        if ((db.pragma('user_version', { simple: true }) as number) >= migration.version) return false;
        migration.up(db);
        db.pragma(`user_version = ${migration.version}`);
        return true;
      })
      .immediate();
    if (ran) applied.push(migration.version);
  }
  return applied;
}
