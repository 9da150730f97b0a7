import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Every metric Backer exports besides the process ones; the README's "Metrics" lists each name. */
export interface MetricSet {
  lastSuccess: Gauge<'mandate'>;
  lastAttempt: Gauge<'mandate'>;
  lastFailure: Gauge<'mandate'>;
  everSucceeded: Gauge<'mandate'>;
  expectedInterval: Gauge<'mandate'>;
  maxAge: Gauge<'mandate'>;
  firstSeen: Gauge<'mandate'>;
  size: Gauge<'mandate' | 'kind'>;
  duration: Histogram<'mandate'>;
  backupsTotal: Counter<'mandate' | 'result'>;
  stored: Gauge<'target'>;
  targetBytes: Gauge<'target'>;
  targetHealthy: Gauge<'target'>;
  queueJobs: Gauge<'state'>;
  jobWait: Histogram<'kind'>;
  verifyLastSuccess: Gauge<'mandate'>;
  verifyLastResult: Gauge<'mandate'>;
  restoreTotal: Counter<'mandate' | 'result'>;
  problems: Gauge<'mandate'>;
  status: Gauge<'mandate' | 'status'>;
  ready: Gauge;
  info: Gauge<'version'>;
}

/** Backups take seconds to hours. */
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 28_800];
/** Waits in the queue: nothing to hours behind a long backup. */
const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200];

export function defineMetrics(registry: Registry): MetricSet {
  const registers = [registry];
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> => new Gauge({ name, help, labelNames, registers });
  return {
    lastSuccess: gauge('backer_backup_last_success_timestamp_seconds', 'When the last successful backup of the mandate finished (Unix time).', ['mandate']),
    lastAttempt: gauge('backer_backup_last_attempt_timestamp_seconds', 'When the last backup attempt of the mandate finished, successful or not (Unix time).', ['mandate']),
    lastFailure: gauge('backer_backup_last_failure_timestamp_seconds', 'When the last failed backup of the mandate finished (Unix time).', ['mandate']),
    everSucceeded: gauge('backer_backup_ever_succeeded', '1 once the mandate has had a successful backup, 0 before.', ['mandate']),
    expectedInterval: gauge('backer_backup_expected_interval_seconds', "The longest gap between two runs of the mandate's schedule.", ['mandate']),
    maxAge: gauge('backer_backup_max_age_seconds', 'The age beyond which the last successful backup is stale (max_age, else 1.5 x the interval).', ['mandate']),
    firstSeen: gauge('backer_mandate_first_seen_timestamp_seconds', "When this daemon's state first saw the mandate (Unix time).", ['mandate']),
    size: gauge('backer_backup_size_bytes', 'Bytes of the last successful backup: kind="raw" the dump, kind="stored" the artifact after middleware.', ['mandate', 'kind']),
    duration: new Histogram({ name: 'backer_backup_duration_seconds', help: 'Duration of finished backup attempts.', labelNames: ['mandate'], buckets: DURATION_BUCKETS, registers }),
    backupsTotal: new Counter({ name: 'backer_backups_total', help: 'Backup jobs finished since the daemon started, by result.', labelNames: ['mandate', 'result'], registers }),
    stored: gauge('backer_backups_stored', 'Backups with a trusted manifest on the target.', ['target']),
    targetBytes: gauge('backer_target_bytes', 'Stored bytes of the backups on the target.', ['target']),
    targetHealthy: gauge('backer_target_healthy', '1 when the last listing of the target succeeded, else 0.', ['target']),
    queueJobs: gauge('backer_queue_jobs', 'Jobs in the queue by state (queued: ready to run, retrying: waiting for a retry, running).', ['state']),
    jobWait: new Histogram({ name: 'backer_job_wait_seconds', help: 'Time jobs waited in the queue before they started.', labelNames: ['kind'], buckets: WAIT_BUCKETS, registers }),
    verifyLastSuccess: gauge('backer_verify_last_success_timestamp_seconds', 'When the last successful verification (or drill) of the mandate finished (Unix time).', ['mandate']),
    verifyLastResult: gauge('backer_verify_last_result', 'Result of the last verification (or drill) of the mandate: 1 ok, 0 failed.', ['mandate']),
    restoreTotal: new Counter({ name: 'backer_restore_total', help: 'Restore jobs finished since the daemon started, by result.', labelNames: ['mandate', 'result'], registers }),
    problems: gauge('backer_mandate_problems', "Problems of the mandate's labels or config entry (a mandate with problems is skipped).", ['mandate']),
    status: gauge('backer_mandate_status', "1 for the mandate's current status (ok, stale, failing, never_succeeded, skipped), 0 for the others.", ['mandate', 'status']),
    ready: new Gauge({ name: 'backer_ready', help: '1 when the daemon is ready (Docker and the state database answer), else 0.', registers }),
    info: gauge('backer_info', 'Always 1; the version of the daemon as a label.', ['version']),
  };
}
