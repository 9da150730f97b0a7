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
import { runBackup } from '../pipeline/run-backup.js';
import type { Services } from './services.js';

/** The raw size of the mandate's newest backup: the ETA of the next one. Null when none is readable. */
async function previousRawSize(mandate: MandateSpec, targets: ReadonlyMap<string, Target>): Promise<number | null> {
  for (const name of mandate.targets) {
    const target = targets.get(name);
    if (!target) continue;
    const listing = await listBackups(target, mandate.name).catch(() => null);
    const newest = listing?.backups[0]?.manifest;
    if (newest) return newest.steps[0]?.size ?? null;
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
    if (job.kind === 'backup') {
      const total = await previousRawSize(mandate, services.targets);
      const result = await services.backup(job.mandate, context.signal, {}, { onBytes: (bytes) => context.progress({ bytes, total }) });
      return { status: result.status, error: result.error, result };
    }
    if (job.kind === 'restore') {
      const parsed = restoreParamsSchema.safeParse({ ...job.params, mandate: job.mandate });
      if (!parsed.success) throw badParams(job, describeError(parsed.error));
      return runRestore(mandate, parsed.data, restoreServices, { jobId: job.id, signal: context.signal, progress: (p) => context.progress(p) });
    }
    const params = verifyParams(job);
    return runVerify(mandate, params, { ...pipeline, drill: (m, backup, signal) => runDrill(m, backup, drillServices, job.id, signal) }, context);
  };
}
