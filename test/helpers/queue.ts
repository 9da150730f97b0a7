import type { JobRunContext } from '../../src/queue/queue.js';
import type { AnyJob, JobOutcome } from '../../src/queue/types.js';
import type { BackupResult } from '../../src/pipeline/run-backup.js';

/** A queue `run` for tests that only deal with backups: (mandate, signal) → BackupResult, like services.backup. */
export function backupRunner(run: (mandate: string, signal: AbortSignal) => Promise<BackupResult>): (job: AnyJob, context: JobRunContext) => Promise<JobOutcome> {
  return async (job, context) => {
    const result = await run(job.mandate, context.signal);
    return { status: result.status, error: result.error, result, retryable: result.retryable };
  };
}
