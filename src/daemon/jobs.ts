import { join } from 'node:path';
import { listBackups } from '../manifests/store.js';
import type { MandateSpec } from '../mandates/types.js';
import type { Target } from '../targets/types.js';
import { BackerError, describeError } from '../errors.js';
import { VERIFY_LEVELS, type VerifyLevel } from '../manifests/verification.js';
import type { JobRunContext } from '../queue/queue.js';
import type { AnyJob, JobOutcome } from '../queue/types.js';
import { restoreParamsSchema } from '../pipeline/restore-params.js';
import { runDrill } from '../pipeline/run-drill.js';
import { planRestoreJob, runRestore, type RestoreServices } from '../pipeline/run-restore.js';
import type { RestorePlanner } from '../api/jobs.js';
import { runVerify, type VerifyParams } from '../pipeline/run-verify.js';
import { artifactNote, removeLeftovers } from '../pipeline/leftovers.js';
import { runBackup, type BackupResult } from '../pipeline/run-backup.js';
import type { Services } from './services.js';

/**
 * The sizes of the mandate's newest backup: its raw dump (the ETA of the next one) and its
 * artifact (the next one's size hint: S3 targets size their parts from it). Null when none is readable.
 */
async function previousSizes(mandate: MandateSpec, targets: ReadonlyMap<string, Target>): Promise<{ raw: number | null; artifact: number } | null> {
  for (const name of mandate.targets) {
    const target = targets.get(name);
    if (!target) continue;
    const listing = await listBackups(target, mandate.name).catch(() => null);
    const newest = listing?.backups[0]?.manifest;
    if (newest) return { raw: newest.steps[0]?.size ?? null, artifact: newest.artifact.size };
  }
  return null;
}

function badParams(job: AnyJob, message: string): BackerError {
  return new BackerError('API_BAD_REQUEST', `job ${job.id} (${job.kind}): ${message}`, { component: 'jobs', permanent: true });
}

export function verifyParams(job: AnyJob): VerifyParams {
  const p = job.params ?? {};
  const level = (p.level ?? (job.kind === 'drill' ? 'drill' : 'decode')) as VerifyLevel;
  if (!VERIFY_LEVELS.includes(level)) throw badParams(job, `unknown level ${String(p.level)}`);
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return { level, backup: str(p.backup), target: str(p.target), subset: str(p.subset) };
}

/** What the API needs to answer restore requests at once (dry runs, refusals), without a job. */
export function createRestorePlanner(services: Services): RestorePlanner {
  const pipeline = services.pipeline;
  return {
    plan: (mandate, params) => planRestoreJob(mandate, params, { ...pipeline, backup: (m, s, o) => runBackup(m, pipeline, s, o) }, 'dry-run'),
    hasDatabases: (type) => pipeline.sources.get(type)?.databases === true,
  };
}

/**
 * A backup attempt. After a crash, the artifacts the dead attempt stored without a manifest go
 * first. A retry after a partial failure writes only to the targets that failed: the others
 * already hold this job's backup (kept in the result, beside the new attempt's targets).
 */
async function runBackupJob(services: Services, mandate: MandateSpec, job: AnyJob, context: JobRunContext): Promise<JobOutcome> {
  if (job.attempts > 1) await removeLeftovers(mandate, services.targets, context.history(), services.logger.child({ job: job.id }));
  const previous = job.attempts > 1 && job.result !== null && 'targets' in job.result ? (job.result as BackupResult) : null;
  const stored = previous?.targets.filter((t) => t.status === 'succeeded') ?? [];
  const targets = mandate.targets.filter((t) => !stored.some((s) => s.target === t));
  if (stored.length > 0) context.note(`retrying on ${targets.join(', ')} only: ${stored.map((s) => s.target).join(', ')} already hold${stored.length === 1 ? 's' : ''} ${previous?.name ?? ''}`);
  const sizes = await previousSizes(mandate, services.targets);
  const total = sizes?.raw ?? null;
  const result = await services.backup(job.mandate, context.signal, stored.length > 0 ? { targets } : {}, {
    onBytes: (bytes) => context.progress({ bytes, total }),
    ...(sizes ? { sizeHint: sizes.artifact } : {}),
    onArtifact: (name, key) => context.note(artifactNote(name, key)),
  });
  const merged: BackupResult = { ...result, targets: [...stored, ...result.targets] };
  return { status: result.status, error: result.error, result: merged, retryable: result.retryable };
}

/** One function per job kind; every kind runs inside the queue's per-mandate lock. */
export function createJobRunner(services: Services): (job: AnyJob, context: JobRunContext) => Promise<JobOutcome> {
  const pipeline = services.pipeline;
  const restoreServices: RestoreServices = {
    ...pipeline,
    backup: (mandate, signal, options) => runBackup(mandate, pipeline, signal, options),
  };
  const drillServices = { ...pipeline, scratchDir: join(services.config.data_dir, 'drills') };

  return async (job, context) => {
    const mandate = services.mandate(job.mandate);
    if (job.kind === 'backup') return runBackupJob(services, mandate, job, context);
    if (job.kind === 'restore') {
      const parsed = restoreParamsSchema.safeParse({ ...job.params, mandate: job.mandate });
      if (!parsed.success) throw badParams(job, describeError(parsed.error));
      return runRestore(mandate, parsed.data, restoreServices, { jobId: job.id, signal: context.signal, progress: (p) => context.progress(p), note: (m) => context.note(m) });
    }
    const params = verifyParams(job);
    return runVerify(mandate, params, { ...pipeline, drill: (m, backup, signal, onBytes) => runDrill(m, backup, drillServices, job.id, signal, onBytes) }, context);
  };
}
