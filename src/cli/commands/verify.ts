import type { VerifyResult } from '../../pipeline/run-verify.js';
import { describeCheck } from '../../pipeline/run-verify.js';
import type { AnyJob } from '../../queue/types.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { followJob } from '../follow.js';
import { printJson, printLine } from '../output.js';

export interface VerifyOptions extends GlobalOptions {
  target?: string;
  level?: string;
  subset?: string;
}

function printVerifications(job: AnyJob): void {
  const result = job.result as VerifyResult | null;
  if (!result) {
    printLine(`${job.kind} ${job.mandate}: ${job.state}${job.error ? `: ${job.error.message}` : ''}`);
    return;
  }
  if (result.verifications.length === 0) printLine(`${job.mandate}: ${job.error?.message ?? 'nothing to verify'}`);
  for (const v of result.verifications) {
    printLine(`${v.outcome === 'passed' ? 'ok  ' : 'FAIL'} ${v.backup} on ${v.target} (${v.level}, ${v.checks.length} checks, ${v.duration_ms} ms)`);
    for (const c of v.checks.filter((x) => !x.ok)) printLine(`       ${describeCheck(c)}`);
    if (v.error && v.checks.every((c) => c.ok)) printLine(`       ${v.error.message}`);
  }
}

/** Verifies through the daemon (under each mandate's lock) and waits for every job; exit 0 only if all passed. */
export async function verifyCommand(mandate: string | undefined, backup: string | undefined, options: VerifyOptions): Promise<number> {
  const socket = await apiEndpoint(options);
  const request = {
    ...(mandate === undefined ? {} : { mandate }),
    ...(backup === undefined ? {} : { backup }),
    ...(options.target === undefined ? {} : { target: options.target }),
    ...(options.level === undefined ? {} : { level: options.level }),
    ...(options.subset === undefined ? {} : { subset: options.subset }),
  };
  const { jobs } = await callApi<{ jobs: AnyJob[] }>(socket, 'POST', '/v1/verifications', request);
  const finished: AnyJob[] = [];
  for (const job of jobs) finished.push(await followJob(socket, job, options.json === true || jobs.length > 1));
  if (options.json) printJson({ jobs: finished });
  else for (const job of finished) printVerifications(job);
  return finished.every((j) => j.state === 'succeeded') ? EXIT.OK : EXIT.FAILED;
}
