import { BackerError } from '../../errors.js';
import type { RestoreResult } from '../../pipeline/run-restore.js';
import type { AnyJob } from '../../queue/types.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import { followJob } from '../follow.js';
import { printJson, printLine } from '../output.js';

export interface RestoreOptions extends GlobalOptions {
  target?: string;
  to?: string;
  database?: string[];
  dryRun?: boolean;
  yes?: boolean;
  wait?: boolean;
  verifyFirst?: boolean;
  safetyBackup?: boolean;
  rollback?: boolean;
}

function printPlan(plan: RestoreResult): void {
  printLine(`restore plan for ${plan.mandate}: backup ${plan.backup} from ${plan.target} to ${plan.to}`);
  for (const [i, step] of plan.plan.entries()) printLine(`  ${i + 1}. ${step}`);
}

function printOutcome(job: AnyJob): void {
  const result = job.result as RestoreResult | null;
  printLine(`restore job ${job.id}: ${job.state}${job.error ? `: ${job.error.message}` : ''}`);
  if (result?.safety_backup) printLine(`  safety backup: ${result.safety_backup}${result.rolled_back ? ' (restored: the restore was rolled back)' : ''}`);
}

/**
 * A restore that failed before its plan was complete touched nothing: exit 5 (or 4 for an
 * unknown backup), so that scripts can tell it from a restore that failed while applying.
 */
function exitFor(job: AnyJob): number {
  if (job.state === 'succeeded') return EXIT.OK;
  if (job.result === null && job.error !== null) {
    const code = exitCodeFor(new BackerError(job.error.code, job.error.message, { component: 'cli' }));
    return code === EXIT.FAILED ? EXIT.REFUSED : code;
  }
  return EXIT.FAILED;
}

export async function restoreCommand(mandate: string, backup: string | undefined, options: RestoreOptions): Promise<number> {
  const socket = await apiEndpoint(options);
  const request = {
    mandate,
    backup: backup ?? 'latest',
    ...(options.target === undefined ? {} : { target: options.target }),
    to: options.to ?? 'original',
    databases: options.database ?? [],
    dry_run: options.dryRun === true,
    yes: options.yes === true,
    verify_first: options.verifyFirst !== false,
    safety_backup: options.safetyBackup !== false,
    rollback: options.rollback !== false,
  };
  const answer = await callApi<{ job?: AnyJob; plan?: RestoreResult }>(socket, 'POST', '/v1/restores', request);
  if (answer.plan) {
    if (options.json) printJson(answer.plan);
    else printPlan(answer.plan);
    return EXIT.OK;
  }
  let job = answer.job as AnyJob;
  if (!options.wait) {
    if (options.json) printJson(job);
    else printLine(`job ${job.id} ${job.state}: restore of ${mandate}`);
    return EXIT.OK;
  }
  job = await followJob(socket, job, options.json === true);
  if (options.json) printJson(job);
  else printOutcome(job);
  return exitFor(job);
}
