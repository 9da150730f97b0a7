import type { QueueStats } from '../../queue/queue.js';
import { callApi } from '../client.js';
import { apiEndpoint, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, table } from '../output.js';
import { formatMs } from './jobs.js';

/** `backer queue stats`: what runs and waits now, how long jobs waited, failures, overloaded mandates. */
export async function queueStatsCommand(options: GlobalOptions): Promise<number> {
  const api = await apiEndpoint(options);
  const stats = await callApi<QueueStats>(api, 'GET', '/v1/queue/stats');
  if (options.json) {
    printJson(stats);
    return EXIT.OK;
  }
  printLine(`running:       ${stats.running} (concurrency ${stats.concurrency})`);
  printLine(`queued:        ${stats.queued}`);
  printLine(`retrying:      ${stats.retrying}`);
  printLine(`wait p50/p95:  ${formatMs(stats.wait_ms_p50)} / ${formatMs(stats.wait_ms_p95)} (jobs started in the last 24 h)`);
  printLine(`failures 24h:  ${stats.failures_24h}`);
  if (stats.overloaded.length === 0) printLine('overloaded:    none');
  else {
    printLine('overloaded:    jobs waited longer than their interval');
    printLine(table([['MANDATE', 'WAITED', 'INTERVAL'], ...stats.overloaded.map((o) => [o.mandate, formatMs(o.waited_ms), formatMs(o.interval_ms)])]));
  }
  return EXIT.OK;
}
