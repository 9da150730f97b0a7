import { installCrashGuard } from '../../daemon/crash-guard.js';
import type { Job } from '../../queue/types.js';
import type { BackupResult } from '../../pipeline/run-backup.js';
import { apiEndpoint, loadRunConfig, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../output.js';

export interface BackupOptions extends GlobalOptions {
  wait?: boolean;
  once?: boolean;
}

function printResult(result: BackupResult): void {
  printLine(`backup ${result.name}: ${result.status}${result.error ? ` (${result.error.message})` : ''}`);
  for (const t of result.targets) {
    printLine(`  ${t.target}: ${t.status}${t.error ? ` (${t.error.message})` : ` ${t.artifact_key}`}`);
  }
}

/** `--once`: the whole backup in this process, no daemon (for cron and CI users). */
async function backupOnce(mandate: string, options: BackupOptions): Promise<number> {
  // The pipeline and the plugins load here only: `backup NAME` through the daemon needs none of them.
  const [{ config, path }, { createServices }] = await Promise.all([loadRunConfig(options), import('../../daemon/services.js')]);
  const services = createServices({ config, configFile: path });
  // A stray error fails the backup (reported like any failure), never as a raw stack trace.
  const uninstallGuard = installCrashGuard(services.logger);
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    await services.discovery.refresh();
    const result = await services.backup(mandate, controller.signal);
    if (options.json) printJson(JSON.parse(services.secrets.scrub(JSON.stringify(result))));
    else printResult(result);
    return result.status === 'succeeded' ? EXIT.OK : EXIT.FAILED;
  } finally {
    process.off('SIGINT', abort);
    process.off('SIGTERM', abort);
    await services.close();
    uninstallGuard();
  }
}

export async function backupCommand(mandate: string, options: BackupOptions): Promise<number> {
  if (options.once) return backupOnce(mandate, options);
  // Only here: node:http's module namespace loads undici (~50 ms), which --once never needs.
  const [{ callApi }, { followJob }] = await Promise.all([import('../client.js'), import('../follow.js')]);
  const socket = await apiEndpoint(options);
  let { job } = await callApi<{ job: Job }>(socket, 'POST', `/v1/mandates/${encodeURIComponent(mandate)}/backups`);
  if (!options.wait) {
    if (options.json) printJson(job);
    else printLine(`job ${job.id} ${job.state} for mandate ${job.mandate}`);
    return EXIT.OK;
  }
  // A backup job's result is its BackupResult.
  job = (await followJob(socket, job, options.json === true)) as Job;
  if (options.json) printJson(job);
  else if (job.result) printResult(job.result);
  else printLine(`job ${job.id} ${job.state}${job.error ? `: ${job.error.message}` : ''}`);
  return job.state === 'succeeded' ? EXIT.OK : EXIT.FAILED;
}
