import type { AnyJob } from '../queue/types.js';
import { callApi, type Endpoint } from './client.js';
import { formatBytes } from './output.js';

/**
 * Follows a job until it ends. On a terminal the progress is one bar redrawn in place (bytes,
 * rate, ETA from the total when known); otherwise a plain line every few seconds, for logs.
 */
export async function followJob(socket: Endpoint, first: AnyJob, quiet: boolean): Promise<AnyJob> {
  let job = first;
  const tty = process.stderr.isTTY && !quiet;
  const started = Date.now();
  let lastLine = 0;
  while (job.state === 'queued' || job.state === 'running') {
    ({ job } = await callApi<{ job: AnyJob }>(socket, 'GET', `/v1/jobs/${job.id}?wait=1`));
    if (quiet || job.progress === null) continue;
    const line = progressLine(job, (Date.now() - started) / 1000);
    if (tty) process.stderr.write(`\r${line}\u001b[K`);
    else if (Date.now() - lastLine > 5000) {
      process.stderr.write(`${line}\n`);
      lastLine = Date.now();
    }
  }
  if (tty && job.progress !== null) process.stderr.write('\n');
  return job;
}

export function progressLine(job: AnyJob, seconds: number): string {
  const { bytes, total } = job.progress ?? { bytes: 0, total: null };
  const rate = seconds > 0 ? bytes / seconds : 0;
  const speed = `${formatBytes(Math.round(rate))}/s`;
  if (total === null || total === 0) return `${job.kind} ${job.mandate}: ${formatBytes(bytes)} ${speed}`;
  const share = Math.min(1, bytes / total);
  const width = 30;
  const bar = '#'.repeat(Math.round(share * width)).padEnd(width, '.');
  const eta = rate > 0 ? Math.max(0, Math.round((total - bytes) / rate)) : null;
  return `${job.kind} ${job.mandate}: [${bar}] ${Math.round(share * 100)}% ${formatBytes(bytes)}/${formatBytes(total)} ${speed}${eta === null ? '' : ` ETA ${eta}s`}`;
}
