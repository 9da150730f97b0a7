import type { ErrorCode } from '../errors.js';

/**
 * A mandate's health, most urgent first:
 * - `skipped`: its labels or config entry have problems; it is not run (`reason` names them);
 * - `failing`: its last backup attempt failed (after its retries), whether or not it ever succeeded;
 * - `stale`: no success within `max_age_ms` (the `max_age` label/key, else 1.5 × its interval);
 *   a mandate that never succeeded becomes stale once that long has passed since it was first seen;
 * - `never_succeeded`: no successful backup yet, no failure either (new, or waiting for its first run);
 * - `ok`: the last attempt succeeded, within max_age.
 */
export const MANDATE_STATUSES = ['ok', 'stale', 'failing', 'never_succeeded', 'skipped'] as const;
export type MandateStatus = (typeof MANDATE_STATUSES)[number];

/** What the status monitor knows of one mandate (API `GET /v1/mandates`, metrics, notifications, the web UI). */
export interface MandateHealth {
  mandate: string;
  status: MandateStatus;
  /** Why, in words: the error of the last attempt, "no successful backup for 2h 10m (max age 1h 30m)", the label problems. */
  reason: string | null;
  last_success_at: string | null;
  last_attempt_at: string | null;
  last_error: { code: ErrorCode; message: string } | null;
  /** From its cron (the longest gap between two fires in the next day's fires); null without a schedule. */
  expected_interval_ms: number | null;
  /** `max_age` as configured, else 1.5 × expected_interval_ms; null when neither is known. */
  max_age_ms: number | null;
  /** Now minus last_success_at; null before the first success. */
  age_ms: number | null;
  /** When this daemon's state first saw the mandate (the clock for a mandate that never succeeded). */
  first_seen_at: string;
  /** Raw (dump) bytes of the last successful backup. */
  last_raw_bytes: number | null;
  /** A backup job of this mandate is running now. */
  running: boolean;
}

/** What one target holds and whether it answered (API `GET /v1/targets`, metrics). */
export interface TargetUsage {
  target: string;
  type: string;
  /** Backups with a trusted manifest, and the stored bytes of their artifacts. */
  backups: number;
  bytes: number;
  /** Manifests that could not be trusted (problems of the listing). */
  problems: number;
  /** The last listing succeeded. */
  healthy: boolean;
  error: { code: ErrorCode; message: string } | null;
  /** When the figures were last read; null before the first listing. */
  checked_at: string | null;
}

/** The daemon's own readiness: `/readyz` and the `backer_ready` metric. */
export interface Readiness {
  ready: boolean;
  checks: { docker: CheckResult; state: CheckResult };
}

export interface CheckResult {
  /** `disabled`: Docker discovery is off (not a failure). */
  status: 'ok' | 'failed' | 'disabled';
  message: string | null;
}

/** Keeps every mandate's health up to date (src/status/monitor.ts): on job events, discovery changes and once a minute. */
export interface StatusMonitor {
  /** One entry per known mandate (skipped ones included), sorted by name. */
  current(): MandateHealth[];
  get(mandate: string): MandateHealth | undefined;
  /** Changes whenever get()'s answers may have changed (each computation): a key for caches of them. */
  version(): number;
  start(): void;
  close(): void;
}

/** Counts and bytes per target (src/status/target-usage.ts): read at start, after each job that writes or deletes, and every few minutes. */
export interface TargetUsageMonitor {
  current(): TargetUsage[];
  get(target: string): TargetUsage | undefined;
  /** Lists the target(s) again now. */
  refresh(target?: string): Promise<void>;
  start(): void;
  close(): Promise<void>;
}

export interface ReadinessProbe {
  check(): Promise<Readiness>;
}
