import type { AnyJob, MandateStats } from '../../queue/types.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, printJson, printLine, table } from '../output.js';
import { formatMs, jobRows } from './jobs.js';

/** What `GET /v1/mandates/{name}` answers. */
export interface MandateDetail {
  mandate: Record<string, unknown> & { name: string };
  next_run: string | null;
  next_verification: string | null;
  stats: MandateStats;
  recent_jobs: AnyJob[];
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.map(String).join(', ') || '-';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function printStats(s: MandateStats): void {
  const rows: [string, string][] = [
    ['successes', String(s.successes)],
    ['failures', String(s.failures)],
    ['last success', s.last_success_at ?? '-'],
    ['last failure', s.last_failure_at ?? '-'],
    ['last error', s.last_error === null ? '-' : `${s.last_error.code}: ${s.last_error.message}`],
    ['duration', `last ${formatMs(s.last_duration_ms)}, average ${formatMs(s.avg_duration_ms)}`],
    ['size', `raw ${s.last_raw_bytes === null ? '-' : formatBytes(s.last_raw_bytes)}, stored ${s.last_stored_bytes === null ? '-' : formatBytes(s.last_stored_bytes)}`],
  ];
  printLine('stats:');
  for (const [name, value] of rows) printLine(`  ${`${name}:`.padEnd(15)}${value}`);
}

/** `backer mandates show NAME`: settings, next run and verification, stats kept across restarts, recent jobs. */
export async function mandatesShowCommand(name: string, options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const detail = await callApi<MandateDetail>(api, 'GET', `/v1/mandates/${encodeURIComponent(name)}`);
  if (options.json) {
    printJson(detail);
    return EXIT.OK;
  }
  const { name: mandateName, ...settings } = detail.mandate;
  printLine(`mandate ${mandateName}`);
  for (const [key, value] of Object.entries(settings)) printLine(`  ${`${key}:`.padEnd(15)}${text(value)}`);
  printLine(`  ${'next run:'.padEnd(15)}${detail.next_run ?? '-'}`);
  printLine(`  ${'next verify:'.padEnd(15)}${detail.next_verification ?? '-'}`);
  printStats(detail.stats);
  printLine();
  if (detail.recent_jobs.length === 0) printLine('no recent jobs');
  else {
    printLine('recent jobs:');
    printLine(table(jobRows(detail.recent_jobs)));
  }
  return EXIT.OK;
}
