/**
 * Every error Backer raises on purpose carries a stable code, the component that raised it,
 * the offending input (never a secret) and the underlying cause. Only the CLI entry maps codes
 * to exit codes, only the API error handler maps them to HTTP statuses.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'USAGE_INVALID'
  | 'LABEL_INVALID'
  | 'MANDATE_NOT_FOUND'
  | 'MANDATE_SKIPPED'
  | 'SECRET_UNRESOLVED'
  | 'OPTION_REFUSED'
  | 'CONTAINER_NOT_FOUND'
  | 'CONTAINER_NOT_RUNNING'
  | 'DOCKER_UNAVAILABLE'
  | 'DUMP_FAILED'
  | 'DUMP_TRUNCATED'
  | 'TOOL_MISSING'
  | 'MIDDLEWARE_FAILED'
  | 'TARGET_WRITE_FAILED'
  | 'TARGET_READ_FAILED'
  | 'RESTORE_REFUSED'
  | 'RESTORE_FAILED'
  | 'VERIFY_FAILED'
  | 'DRILL_FAILED'
  | 'TARGET_NOT_FOUND'
  | 'MANIFEST_INVALID'
  | 'BACKUP_NOT_FOUND'
  | 'FORGET_REFUSED'
  | 'JOB_NOT_FOUND'
  | 'JOB_CANCELLED'
  | 'DAEMON_UNREACHABLE'
  | 'API_BAD_REQUEST'
  | 'INTERNAL';

export interface BackerErrorOptions {
  component: string;
  /** Non-secret context: container, label, config path, key, ... */
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Permanent failures are never retried by the queue. */
  permanent?: boolean;
}

export class BackerError extends Error {
  readonly code: ErrorCode;
  readonly component: string;
  readonly details: Record<string, unknown>;
  readonly permanent: boolean;

  constructor(code: ErrorCode, message: string, options: BackerErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackerError';
    this.code = code;
    this.component = options.component;
    this.details = options.details ?? {};
    this.permanent = options.permanent ?? false;
  }

  toJSON(): { code: ErrorCode; message: string; component: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, component: this.component, details: this.details };
  }
}

export function isBackerError(err: unknown, code?: ErrorCode): err is BackerError {
  return err instanceof BackerError && (code === undefined || err.code === code);
}

/** A one-line description of any thrown value, including the chain of causes. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      if (!parts.includes(current.message)) parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(typeof current === 'string' ? current : JSON.stringify(current));
      break;
    }
  }
  return parts.join(': ');
}

export function errorCode(err: unknown): ErrorCode {
  return err instanceof BackerError ? err.code : 'INTERNAL';
}
