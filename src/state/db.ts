import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BackerError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { migrate, SCHEMA_VERSION } from './migrations.js';

/** The daemon's state database (jobs, their events, per-mandate stats, schedule fires, the lock). */
export interface StateDb {
  path: string;
  db: Database.Database;
  /** Idempotent. */
  close(): void;
}

export const STATE_FILE = 'state.db';

export function stateDbPath(dataDir: string): string {
  return join(dataDir, STATE_FILE);
}

const RESET_HINT = 'move it away with `backer state reset` (it keeps the old file and rebuilds the stats from the targets\' manifests)';

function invalid(path: string, message: string, cause?: unknown): BackerError {
  return new BackerError('STATE_INVALID', message, { component: 'state', details: { path }, cause, permanent: true });
}

/** Creates the file with mode 0600 (SQLite gives its -wal and -shm files the same mode). */
function createPrivate(path: string): void {
  const fd = openSync(path, 'a', 0o600);
  closeSync(fd);
  chmodSync(path, 0o600);
}

/** Refuses a schema newer than this Backer and a damaged file, before anything is written. */
function checkFile(db: Database.Database, path: string): void {
  let version: number;
  let check: string[];
  try {
    version = db.pragma('user_version', { simple: true }) as number;
    check = (db.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (err) {
    throw invalid(path, `state.db at ${path} is not a readable Backer state database; ${RESET_HINT}`, err);
  }
  if (version > SCHEMA_VERSION) {
    throw invalid(
      path,
      `state.db at ${path} has schema version ${version}; this Backer knows up to ${SCHEMA_VERSION}: run the newer Backer, or move the file away (\`backer state reset\`)`,
    );
  }
  if (check.length !== 1 || check[0] !== 'ok') {
    throw invalid(path, `state.db at ${path} is damaged (quick_check: ${check.slice(0, 3).join('; ')}); ${RESET_HINT}`);
  }
}

/**
 * Opens (creating it when needed) `<data_dir>/state.db` and brings its schema up to date.
 *
 * WAL with `synchronous = NORMAL`: a committed transaction survives a crash or `kill -9` of the
 * process; a power cut may lose the last transactions, but never corrupts the database.
 */
export function openStateDb(dataDir: string, logger: Logger): StateDb {
  const path = stateDbPath(dataDir);
  let db: Database.Database;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    createPrivate(path);
    db = new Database(path, { timeout: 5000 });
  } catch (err) {
    throw invalid(path, `cannot open state.db at ${path}`, err);
  }
  try {
    checkFile(db, path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const applied = migrate(db);
    if (applied.length > 0) logger.info({ path, applied, version: SCHEMA_VERSION }, 'state database migrated');
  } catch (err) {
    db.close();
    if (err instanceof BackerError) throw err;
    throw invalid(path, `state.db at ${path} could not be prepared; ${RESET_HINT}`, err);
  }
  return {
    path,
    db,
    close() {
      if (db.open) db.close();
    },
  };
}
