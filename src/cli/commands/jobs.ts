import type { AnyJob, JobEvent } from '../../queue/types.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, table } from '../output.js';

export interface JobsListOptions extends GlobalOptions {
  state?: string;
  mandate?: string;
  kind?: string;
  limit?: string;
  offset?: string;
}

/** What `GET /v1/jobs` answers. */
export interface JobsPage {
  jobs: AnyJob[];
  total: number;
  limit: number;
  offset: number;
}

/** What `GET /v1/jobs/{id}` answers. */
export interface JobDetail {
  job: AnyJob;
  history: JobEvent[];
}

/** `1.2s`, `3m04s`: a wait or a duration, short. */
export function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return minutes < 60 ? `${minutes}m${String(seconds).padStart(2, '0')}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** The job rows of `jobs list` and `mandates show`. */
export function jobRows(jobs: readonly AnyJob[]): string[][] {
  return [
    ['ID', 'KIND', 'MANDATE', 'STATE', 'TRIGGER', 'ATTEMPTS', 'CREATED', 'WAIT', 'ERROR'],
    ...jobs.map((j) => [j.id, j.kind, j.mandate, j.state, j.trigger, String(j.attempts), j.created_at, formatMs(j.wait_ms), j.error?.message ?? '-']),
  ];
}

/** `backer jobs list`: the daemon's jobs, newest first, filtered and paged by the daemon. */
export async function jobsListCommand(options: JobsListOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const query = new URLSearchParams();
  for (const key of ['mandate', 'kind', 'state', 'limit', 'offset'] as const) {
    const value = options[key];
    if (value !== undefined) query.set(key, value);
  }
  const qs = query.toString();
  const page = await callApi<JobsPage>(api, 'GET', `/v1/jobs${qs === '' ? '' : `?${qs}`}`);
  if (options.json) {
    printJson(page);
    return EXIT.OK;
  }
  if (page.jobs.length === 0) printLine(page.total === 0 ? 'no jobs' : `no jobs at offset ${page.offset} (${page.total} in all)`);
  else {
    printLine(table(jobRows(page.jobs)));
    printLine(`${page.offset + 1}-${page.offset + page.jobs.length} of ${page.total} jobs`);
  }
  return EXIT.OK;
}

function printJob(job: AnyJob): void {
  printLine(`job ${job.id}`);
  const fields: [string, string][] = [
    ['kind', job.kind],
    ['mandate', job.mandate],
    ['state', job.state],
    ['trigger', job.trigger],
    ['priority', String(job.priority)],
    ['attempts', String(job.attempts)],
    ['created', job.created_at],
    ['not before', job.not_before ?? '-'],
    ['started', job.started_at ?? '-'],
    ['finished', job.finished_at ?? '-'],
    ['waited', formatMs(job.wait_ms)],
  ];
  if (job.error !== null) fields.push(['error', `${job.error.code}: ${job.error.message}`]);
  const result = job.result as { name?: unknown } | null;
  if (typeof result?.name === 'string') fields.push(['result', result.name]);
  if (job.params !== null) fields.push(['params', JSON.stringify(job.params)]);
  for (const [name, value] of fields) printLine(`  ${`${name}:`.padEnd(12)}${value}`);
}

/** `backer jobs show ID`: the job's fields and its history (attempt, time, event, message). */
export async function jobsShowCommand(id: string, options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const detail = await callApi<JobDetail>(api, 'GET', `/v1/jobs/${encodeURIComponent(id)}`);
  if (options.json) {
    printJson(detail);
    return EXIT.OK;
  }
  printJob(detail.job);
  printLine();
  if (detail.history.length === 0) printLine('no history');
  else printLine(table([['ATTEMPT', 'TIME', 'EVENT', 'MESSAGE'], ...detail.history.map((e) => [String(e.attempt), e.at, e.type, e.message ?? '-'])]));
  return EXIT.OK;
}

/** `backer jobs cancel ID`: a queued job ends at once, a running one is aborted (it ends `cancelled` shortly after). */
export async function jobsCancelCommand(id: string, options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const { job } = await callApi<{ job: AnyJob }>(api, 'POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  if (options.json) printJson({ job });
  else if (job.state === 'cancelled') printLine(`cancelled job ${job.id} (${job.kind} ${job.mandate})`);
  else if (job.state === 'running') printLine(`cancelling job ${job.id} (${job.kind} ${job.mandate}): it stops at its next step`);
  else printLine(`job ${job.id} (${job.kind} ${job.mandate}) had already ended: ${job.state}`);
  return EXIT.OK;
}
