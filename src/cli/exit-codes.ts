import { isBackerError, type ErrorCode } from '../errors.js';

/** Exit codes of every command (also printed by --help). */
export const EXIT = {
  OK: 0,
  /** The backup/job failed, or `config check` found problems. */
  FAILED: 1,
  /** Bad usage, an invalid config file, or a mandate skipped for its problems. */
  USAGE: 2,
  /** The daemon is not reachable on its socket. */
  UNREACHABLE: 3,
  /** The mandate, job or backup does not exist. */
  NOT_FOUND: 4,
  /** A restore was refused before anything was touched (destination, tools, keys, or the backup's hashes); a state reset while a daemon runs. */
  REFUSED: 5,
  /** The API refused the token: missing or unknown (401), or its scope is too small (403). */
  UNAUTHORIZED: 6,
} as const;

export const EXIT_HELP = `
Exit codes:
  0  success
  1  the backup or job failed, or config check found problems
  2  bad usage or invalid configuration (also: the mandate is skipped for its problems)
  3  the daemon is not reachable on its API socket
  4  mandate, job or backup not found
  5  restore refused before anything was touched (destination, tools, keys, or the backup's hashes);
     state reset refused while a daemon uses the data_dir
  6  the API refused the token (--url): missing or unknown, or its scope is too small`;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  CONFIG_INVALID: EXIT.USAGE,
  CONFIG_NOT_FOUND: EXIT.USAGE,
  USAGE_INVALID: EXIT.USAGE,
  API_BAD_REQUEST: EXIT.USAGE,
  DAEMON_UNREACHABLE: EXIT.UNREACHABLE,
  MANDATE_SKIPPED: EXIT.USAGE,
  MANDATE_NOT_FOUND: EXIT.NOT_FOUND,
  JOB_NOT_FOUND: EXIT.NOT_FOUND,
  BACKUP_NOT_FOUND: EXIT.NOT_FOUND,
  TARGET_NOT_FOUND: EXIT.NOT_FOUND,
  RESTORE_REFUSED: EXIT.REFUSED,
  STATE_LOCKED: EXIT.REFUSED,
  API_UNAUTHORIZED: EXIT.UNAUTHORIZED,
  API_FORBIDDEN: EXIT.UNAUTHORIZED,
};

export function exitCodeFor(err: unknown): number {
  return isBackerError(err) ? (BY_CODE[err.code] ?? EXIT.FAILED) : EXIT.FAILED;
}
