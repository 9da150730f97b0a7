import type { JobRunContext } from '../../src/queue/queue.js';
import type { AnyJob, JobOutcome } from '../../src/queue/types.js';
import type { VerifyLevel } from '../../src/manifests/verification.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';
import type { RestoreResult } from '../../src/pipeline/run-restore.js';
import type { VerifyResult } from '../../src/pipeline/run-verify.js';

/** A queue `run` for tests that only deal with backups: (mandate, signal) → BackupResult, like services.backup. */
export function backupRunner(run: (mandate: string, signal: AbortSignal) => Promise<BackupResult>): (job: AnyJob, context: JobRunContext) => Promise<JobOutcome> {
  return async (job, context) => {
    const result = await run(job.mandate, context.signal);
    return { status: result.status, error: result.error, result, retryable: result.retryable };
  };
}

/** A verification's result with no verification in it, for queue tests (the queue never reads a result). */
export function emptyVerifyResult(level: VerifyLevel = 'decode'): VerifyResult {
  return { kind: 'verify', level, verifications: [] };
}

/** A restore's result that planned nothing, for queue tests (the queue never reads a result). */
export function emptyRestoreResult(): RestoreResult {
  return { kind: 'restore', mandate: 'm', backup: 'b', target: 't', to: 'original', plan: [], stops: [], takes_safety_backup: false, artifact_bytes: 0, raw_bytes: 0, dry_run: false, safety_backup: null, rolled_back: false, rollback_error: null };
}
