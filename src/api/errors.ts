import { BackerError, describeError, type ErrorCode } from '../errors.js';

/** The one place that maps error codes to HTTP statuses. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  MANDATE_NOT_FOUND: 404,
  // The mandate exists, but its labels or config entry have problems: fix them, then retry.
  MANDATE_SKIPPED: 409,
  JOB_NOT_FOUND: 404,
  BACKUP_NOT_FOUND: 404,
  FORGET_REFUSED: 409,
  TARGET_NOT_FOUND: 404,
  API_BAD_REQUEST: 400,
  // Over TCP: no bearer token, or one no `api.tokens` entry has.
  API_UNAUTHORIZED: 401,
  // The token's scope is too small for the route.
  API_FORBIDDEN: 403,
  USAGE_INVALID: 400,
  // A restore's preflight found a problem with the destination, a key, a tool: nothing was touched.
  RESTORE_REFUSED: 409,
  CONTAINER_NOT_FOUND: 404,
  CONTAINER_NOT_RUNNING: 409,
  TOOL_MISSING: 409,
  CONFIG_INVALID: 400,
  LABEL_INVALID: 400,
  DOCKER_UNAVAILABLE: 503,
  // Another daemon holds the data_dir's state database.
  STATE_LOCKED: 409,
};

export function toHttpError(err: unknown): { status: number; body: { error: { code: ErrorCode; message: string } } } {
  if (err instanceof BackerError) {
    return { status: STATUS[err.code] ?? 500, body: { error: { code: err.code, message: err.message } } };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: describeError(err) } } };
}
