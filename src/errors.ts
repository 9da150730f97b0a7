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
  | 'CHECK_FAILED'
  | 'TARGET_NOT_FOUND'
  | 'MANIFEST_INVALID'
  | 'BACKUP_NOT_FOUND'
  | 'FORGET_REFUSED'
  | 'JOB_NOT_FOUND'
  | 'JOB_CANCELLED'
  | 'JOB_STALLED'
  | 'JOB_INTERRUPTED'
  | 'DAEMON_UNREACHABLE'
  | 'API_BAD_REQUEST'
  | 'API_UNAUTHORIZED'
  | 'API_FORBIDDEN'
  | 'STATE_INVALID'
  | 'STATE_LOCKED'
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

// ---------------------------------------------------------------------------------------------
// Retries: which failures the queue tries again (queue.retries, with backoff: src/queue/retry.ts)
// ---------------------------------------------------------------------------------------------

/**
 * How each code is retried. `permanent`: never (the same input fails the same way: bad
 * credentials, unknown database, missing tool, bad label or config, not found, refused,
 * cancelled, broken state). `transient`: always (Docker not reachable, the container restarting).
 * `cause`: decided by the cause chain (retryableCause): network errors and AWS 5xx/throttling are
 * transient, anything else is permanent. A `Record` over ErrorCode: a new code does not compile
 * without its class.
 */
export const RETRY_CLASS: Record<ErrorCode, 'transient' | 'permanent' | 'cause'> = {
  CONFIG_INVALID: 'permanent',
  CONFIG_NOT_FOUND: 'permanent',
  USAGE_INVALID: 'permanent',
  LABEL_INVALID: 'permanent',
  MANDATE_NOT_FOUND: 'permanent',
  MANDATE_SKIPPED: 'permanent',
  SECRET_UNRESOLVED: 'permanent',
  OPTION_REFUSED: 'permanent',
  CONTAINER_NOT_FOUND: 'permanent',
  // Raised for a stopped or restarting container: it may be back by the next attempt.
  CONTAINER_NOT_RUNNING: 'transient',
  DOCKER_UNAVAILABLE: 'transient',
  // A dump tool's failure without a network cause is its answer (wrong password, unknown database): permanent.
  DUMP_FAILED: 'cause',
  DUMP_TRUNCATED: 'cause',
  TOOL_MISSING: 'permanent',
  MIDDLEWARE_FAILED: 'cause',
  TARGET_WRITE_FAILED: 'cause',
  TARGET_READ_FAILED: 'cause',
  RESTORE_REFUSED: 'permanent',
  // A restore that failed half-way has touched the destination: never repeated behind the user's back.
  RESTORE_FAILED: 'permanent',
  VERIFY_FAILED: 'permanent',
  DRILL_FAILED: 'cause',
  // `backer mandates test`: a check's answer (bad credentials, unwritable target), never retried.
  CHECK_FAILED: 'permanent',
  TARGET_NOT_FOUND: 'permanent',
  MANIFEST_INVALID: 'permanent',
  BACKUP_NOT_FOUND: 'permanent',
  FORGET_REFUSED: 'permanent',
  JOB_NOT_FOUND: 'permanent',
  JOB_CANCELLED: 'permanent',
  DAEMON_UNREACHABLE: 'transient',
  API_BAD_REQUEST: 'permanent',
  API_UNAUTHORIZED: 'permanent',
  API_FORBIDDEN: 'permanent',
  STATE_INVALID: 'permanent',
  STATE_LOCKED: 'permanent',
  // The stall watchdog stopped a hung job: a hung dump would most likely hang again.
  JOB_STALLED: 'permanent',
  // A job cut by a daemon that went away: recovery re-queues backups at start, never the retry loop.
  JOB_INTERRUPTED: 'permanent',
  INTERNAL: 'cause',
};

/**
 * Node's errno codes of a network that may come back. ENOTFOUND is not among them: the resolver
 * answered that the name does not exist (mostly a typo in an endpoint); a resolver that could not
 * answer says EAI_AGAIN.
 */
export const TRANSIENT_ERRNO: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETDOWN',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** AWS SDK error names that mean "try again later", whatever their status. */
const TRANSIENT_AWS_NAMES: ReadonlySet<string> = new Set([
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'SlowDown',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'InternalError',
  'ServiceUnavailable',
]);

type Verdict = 'transient' | 'permanent' | undefined;

function field(value: object, key: string): unknown {
  return (value as Record<string, unknown>)[key];
}

/** What one link of a cause chain says by itself; undefined: look further down. */
function linkVerdict(link: object): Verdict {
  if (link instanceof BackerError) {
    if (link.permanent) return 'permanent';
    const cls = RETRY_CLASS[link.code];
    return cls === 'cause' ? undefined : cls;
  }
  if (field(link, 'name') === 'AbortError') return 'permanent';
  const code = field(link, 'code');
  if (typeof code === 'string' && TRANSIENT_ERRNO.has(code)) return 'transient';
  const name = field(link, 'name');
  if (typeof name === 'string' && TRANSIENT_AWS_NAMES.has(name)) return 'transient';
  if (field(link, '$retryable') !== undefined) return 'transient';
  const metadata = field(link, '$metadata');
  const status = typeof metadata === 'object' && metadata !== null ? field(metadata, 'httpStatusCode') : undefined;
  if (typeof status === 'number') return status >= 500 || status === 429 ? 'transient' : 'permanent';
  return undefined;
}

/**
 * Whether the queue tries `err` again. A BackerError with `permanent: true` never; otherwise its
 * code's RETRY_CLASS; a `cause` code (and any other thrown value) by its cause chain, depth
 * first through `cause` and AggregateError's `errors`: a network errno (TRANSIENT_ERRNO), an
 * AWS SDK error with `$retryable`, HTTP status ≥ 500 or 429, or a throttling/timeout name is
 * transient; an AWS 4xx (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, NoSuchBucket)
 * and a permanent BackerError are permanent; nothing recognisable is permanent.
 */
export function retryable(err: unknown): boolean {
  return chainVerdict(err, 0) === 'transient';
}

function chainVerdict(err: unknown, depth: number): Verdict {
  if (typeof err !== 'object' || err === null || depth > 8) return undefined;
  const own = linkVerdict(err);
  if (own !== undefined) return own;
  const causes: unknown[] = [field(err, 'cause')];
  const errors = field(err, 'errors');
  if (Array.isArray(errors)) causes.push(...(errors as unknown[]));
  for (const cause of causes) {
    const verdict = chainVerdict(cause, depth + 1);
    if (verdict !== undefined) return verdict;
  }
  return undefined;
}
